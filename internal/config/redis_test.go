package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedisSettings(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "redis-password")
	if err := os.WriteFile(pw, []byte("hunter2-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "qingcloud_grpc:\n  redis_url: redis://redis:6379/1\n  redis_fallback_share: 0.25\n")
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		want  Redis
		src   string // Source of redis_url
		inErr string
	}{
		{name: "unset: alone", want: Redis{}},
		{name: "flag", args: []string{"-redis-url", "rediss://:s3cret@cache:6380"}, want: Redis{URL: "rediss://:s3cret@cache:6380"}, src: "-redis-url"},
		{name: "variable", env: map[string]string{"QINGCLOUD_GRPC_REDIS_URL": "redis://r:6379", "QINGCLOUD_GRPC_REDIS_FALLBACK_SHARE": "1"},
			want: Redis{URL: "redis://r:6379", FallbackShare: 1}, src: "QINGCLOUD_GRPC_REDIS_URL"},
		{name: "file", args: []string{"-config", file}, want: Redis{URL: "redis://redis:6379/1", FallbackShare: 0.25}, src: file + ":2: qingcloud_grpc.redis_url"},
		{name: "password file", args: []string{"-redis-url", "redis://r:6379", "-redis-password-file", pw},
			want: Redis{URL: "redis://r:6379", Password: "hunter2-from-file"}, src: "-redis-url"},
		{name: "bad scheme", args: []string{"-redis-url", "http://:hunter2@r:6379"}, inErr: "-redis-url: Redis URL http://:xxxxx@r:6379: scheme"},
		{name: "bad option", args: []string{"-redis-url", "redis://:hunter2@r:6379?bogus=1"}, inErr: "-redis-url: Redis URL redis://:xxxxx@r:6379?bogus=1"},
		{name: "share out of range", env: map[string]string{"QINGCLOUD_GRPC_REDIS_URL": "redis://r", "QINGCLOUD_GRPC_REDIS_FALLBACK_SHARE": "1.5"},
			inErr: "QINGCLOUD_GRPC_REDIS_FALLBACK_SHARE: fallback share \"1.5\" must be a number in (0, 1]"},
		{name: "password file without URL", args: []string{"-redis-password-file", pw}, inErr: "no Redis URL is set"},
		{name: "missing password file", args: []string{"-redis-url", "redis://r", "-redis-password-file", filepath.Join(dir, "nope")}, inErr: "-redis-password-file: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if tt.inErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.inErr) {
					t.Fatalf("Load = %v; want an error containing %q", err, tt.inErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Redis != tt.want {
				t.Fatalf("Redis = %+v, want %+v", c.Redis, tt.want)
			}
			if tt.src != "" && c.Source(SettingRedisURL) != tt.src {
				t.Fatalf("Source(redis_url) = %q, want %q", c.Source(SettingRedisURL), tt.src)
			}
		})
	}
}
