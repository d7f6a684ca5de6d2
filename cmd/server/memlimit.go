package main

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memLimitShare is the part of a container's memory limit given to Go as its soft memory limit: the
// rest is headroom for memory the runtime does not count (goroutine stacks are counted; cgo, page
// cache and fragmentation are not).
const memLimitShare = 0.9

// cgroupLimitFiles are where a container's memory limit is found: cgroup v2, then v1.
var cgroupLimitFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// containerMemoryLimit returns the memory limit of the cgroup the process runs in, or 0 when there is
// none (no file, "max", or v1's "unlimited" near-MaxInt64 value).
func containerMemoryLimit(readFile func(string) ([]byte, error)) int64 {
	for _, f := range cgroupLimitFiles {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0
		}
		return n
	}
	return 0
}

// softMemoryLimit picks Go's soft memory limit: none when GOMEMLIMIT is set (the runtime already
// applied it) or the process has no container limit; else memLimitShare of the container's limit, so
// the GC collects harder before the kernel's OOM killer would step in.
func softMemoryLimit(getenv func(string) string, readFile func(string) ([]byte, error)) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := containerMemoryLimit(readFile)
	if limit == 0 {
		return 0
	}
	return int64(float64(limit) * memLimitShare)
}

// applySoftMemoryLimit sets the limit softMemoryLimit picks for this process and returns it (0: none).
// It reads the process's real environment, as the Go runtime does for GOMEMLIMIT.
func applySoftMemoryLimit() int64 {
	n := softMemoryLimit(os.Getenv, os.ReadFile)
	if n > 0 {
		debug.SetMemoryLimit(n)
	}
	return n
}
