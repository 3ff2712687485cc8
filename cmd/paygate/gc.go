package main

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// GC defaults for serve, applied only where the operator has not set GOGC or
// GOMEMLIMIT (the runtime reads those itself).
//
// paygate's live heap is small (a few MiB plus the requests in flight), and
// at the default GOGC=100 the collector runs every few hundred requests and
// costs about a sixth of the CPU under load (BENCHMARKS.md). GOGC=400 lets
// the heap grow to five times the live data between collections, which
// measured +15% throughput at 32 clients for +7 MiB at 128 open streams.
// The soft memory limit keeps that from growing without bound when the live
// heap is large: near the limit the collector runs as often as it must. In a
// container with a memory limit below what the default assumes, the soft
// limit is three quarters of the container's, so the collector works harder
// before the kernel's OOM killer would.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 192 << 20
)

// cgroupLimitFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupLimitFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// gcSettings returns what serve sets: a GC percent and a memory limit, each
// -1 where the environment already decides. readFile reads the cgroup
// limit files (os.ReadFile outside tests).
func gcSettings(getenv func(string) string, readFile func(string) ([]byte, error)) (percent int, limit int64) {
	percent, limit = -1, -1
	if getenv("GOGC") == "" {
		percent = defaultGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		limit = defaultMemoryLimit
		if c := containerLimit(readFile); c > 0 && c/4*3 < limit {
			limit = c / 4 * 3
		}
	}
	return percent, limit
}

// containerLimit is the cgroup memory limit in bytes, or 0 when there is
// none ("max", an unlimited v1 value, or no cgroup files).
func containerLimit(readFile func(string) ([]byte, error)) int64 {
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

// heapProfileRate is what serve sets runtime.MemProfileRate to, -1 where
// it leaves it: 0, no allocation sampled, unless server.pprof serves the
// heap and allocs profiles or the operator set the rate
// (GODEBUG=memprofilerate=N). Each sample unwinds the allocating stack;
// at the runtime's default of one per 512 KiB allocated, a chat request
// (about 18 KB of allocations) paid for one every 28 or so, 0.9% of
// paygate's CPU at 32 non-stream clients (runtime.mProf_Malloc), for a
// profile that nothing served.
func heapProfileRate(pprof bool, getenv func(string) string) int {
	if pprof || strings.Contains(getenv("GODEBUG"), "memprofilerate=") {
		return -1
	}
	return 0
}

func applyGCDefaults(getenv func(string) string) {
	percent, limit := gcSettings(getenv, os.ReadFile)
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
}

// memoryLimit is the memory serve must stay under, from which the proxy
// derives its budget of request bodies in flight
// (server.max_body_bytes_in_flight): the container's limit, or the
// GOMEMLIMIT the operator set when that is lower (softLimit: the
// runtime's, read from it), and 0 when there is neither. paygate's own
// soft limit (defaultMemoryLimit) is the collector's target, not a line
// anything kills the process at, and is not one.
func memoryLimit(getenv func(string) string, readFile func(string) ([]byte, error), softLimit int64) int64 {
	limit := containerLimit(readFile)
	if getenv("GOMEMLIMIT") != "" && softLimit > 0 && softLimit < math.MaxInt64 && (limit == 0 || softLimit < limit) {
		limit = softLimit
	}
	return limit
}
