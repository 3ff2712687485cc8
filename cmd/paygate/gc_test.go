package main

import (
	"errors"
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
