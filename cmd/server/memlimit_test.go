package main

import (
	"errors"
	"testing"
)

func TestSoftMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := m[p]; ok {
				return []byte(v), nil
			}
			return nil, errors.New("no such file")
		}
	}
	const v2, v1 = "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  int64
	}{
		{"no cgroup", nil, nil, 0},
		{"cgroup v2 limit", nil, map[string]string{v2: "536870912\n"}, 483183820},
		{"cgroup v2 unlimited", nil, map[string]string{v2: "max\n"}, 0},
		{"cgroup v1 limit", nil, map[string]string{v1: "1073741824"}, 966367641},
		{"cgroup v1 unlimited", nil, map[string]string{v1: "9223372036854771712"}, 0},
		{"garbage", nil, map[string]string{v2: "lots"}, 0},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "200MiB"}, map[string]string{v2: "536870912"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := softMemoryLimit(func(k string) string { return tt.env[k] }, files(tt.files))
			if got != tt.want {
				t.Fatalf("softMemoryLimit = %d, want %d", got, tt.want)
			}
		})
	}
}
