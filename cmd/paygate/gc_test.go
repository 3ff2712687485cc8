package main

import (
	"errors"
	"math"
	"testing"
)

func TestGCSettings(t *testing.T) {
	noCgroup := func(string) ([]byte, error) { return nil, errors.New("no such file") }
	cgroup := func(v2, v1 string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			switch {
			case name == cgroupLimitFiles[0] && v2 != "":
				return []byte(v2 + "\n"), nil
			case name == cgroupLimitFiles[1] && v1 != "":
				return []byte(v1 + "\n"), nil
			}
			return nil, errors.New("no such file")
		}
	}
	for _, tc := range []struct {
		name        string
		env         map[string]string
		read        func(string) ([]byte, error)
		wantPercent int
		wantLimit   int64
	}{
		{"nothing set", nil, noCgroup, defaultGCPercent, defaultMemoryLimit},
		{"GOGC set", map[string]string{"GOGC": "100"}, noCgroup, -1, defaultMemoryLimit},
		{"GOGC off", map[string]string{"GOGC": "off"}, noCgroup, -1, defaultMemoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, cgroup("134217728", ""), defaultGCPercent, -1},
		{"both set", map[string]string{"GOGC": "200", "GOMEMLIMIT": "64MiB"}, noCgroup, -1, -1},
		{"cgroup v2 unlimited", nil, cgroup("max", ""), defaultGCPercent, defaultMemoryLimit},
		{"cgroup v2 128 MiB", nil, cgroup("134217728", ""), defaultGCPercent, 96 << 20},
		{"cgroup v2 1 GiB: the default is lower", nil, cgroup("1073741824", ""), defaultGCPercent, defaultMemoryLimit},
		{"cgroup v1 128 MiB", nil, cgroup("", "134217728"), defaultGCPercent, 96 << 20},
		{"cgroup v1 unlimited", nil, cgroup("", "9223372036854771712"), defaultGCPercent, defaultMemoryLimit},
		{"garbage", nil, cgroup("lots", ""), defaultGCPercent, defaultMemoryLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, l := gcSettings(func(k string) string { return tc.env[k] }, tc.read)
			if p != tc.wantPercent || l != tc.wantLimit {
				t.Fatalf("gcSettings = %d, %d; want %d, %d", p, l, tc.wantPercent, tc.wantLimit)
			}
		})
	}
}

// TestMemoryLimit: the budget of request bodies in flight is derived from
// the limit the kernel kills at (a container's) or the one the operator
// set (GOMEMLIMIT), the lower of the two, and from none of paygate's own
// choosing: its default soft limit is the collector's target only.
func TestMemoryLimit(t *testing.T) {
	noCgroup := func(string) ([]byte, error) { return nil, errors.New("no such file") }
	cgroup := func(v string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if name == cgroupLimitFiles[0] {
				return []byte(v + "\n"), nil
			}
			return nil, errors.New("no such file")
		}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		read func(string) ([]byte, error)
		soft int64
		want int64
	}{
		{"nothing set", nil, noCgroup, defaultMemoryLimit, 0},
		{"container", nil, cgroup("268435456"), 192 << 20, 256 << 20},
		{"container unlimited", nil, cgroup("max"), defaultMemoryLimit, 0},
		{"GOMEMLIMIT", map[string]string{"GOMEMLIMIT": "512MiB"}, noCgroup, 512 << 20, 512 << 20},
		{"GOMEMLIMIT off", map[string]string{"GOMEMLIMIT": "off"}, noCgroup, math.MaxInt64, 0},
		{"GOMEMLIMIT below the container's", map[string]string{"GOMEMLIMIT": "128MiB"}, cgroup("268435456"), 128 << 20, 128 << 20},
		{"GOMEMLIMIT above the container's", map[string]string{"GOMEMLIMIT": "1GiB"}, cgroup("268435456"), 1 << 30, 256 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := memoryLimit(func(k string) string { return tc.env[k] }, tc.read, tc.soft); got != tc.want {
				t.Fatalf("memoryLimit = %d; want %d", got, tc.want)
			}
		})
	}
}

// TestHeapProfileRate: allocations are sampled for the heap profile only
// where something reads it (server.pprof) or the operator asked for a rate,
// because each sample costs the request that allocates a stack unwind.
func TestHeapProfileRate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pprof   bool
		godebug string
		want    int
	}{
		{"pprof off", false, "", 0},
		{"pprof off, other GODEBUG settings", false, "madvdontneed=1", 0},
		{"pprof on: the runtime's rate", true, "", -1},
		{"rate set by the operator", false, "gctrace=1,memprofilerate=1", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"GODEBUG": tc.godebug}
			if got := heapProfileRate(tc.pprof, func(k string) string { return env[k] }); got != tc.want {
				t.Fatalf("heapProfileRate(%v, GODEBUG=%q) = %d; want %d", tc.pprof, tc.godebug, got, tc.want)
			}
		})
	}
}
