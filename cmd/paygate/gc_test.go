package main

import "testing"

func TestGCSettingsYieldToTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"nothing set", nil, defaultGCPercent, defaultMemoryLimit},
		{"GOGC set", map[string]string{"GOGC": "100"}, -1, defaultMemoryLimit},
		{"GOGC off", map[string]string{"GOGC": "off"}, -1, defaultMemoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, defaultGCPercent, -1},
		{"both set", map[string]string{"GOGC": "200", "GOMEMLIMIT": "64MiB"}, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, l := gcSettings(func(k string) string { return tc.env[k] })
			if p != tc.wantPercent || l != tc.wantLimit {
				t.Fatalf("gcSettings = %d, %d; want %d, %d", p, l, tc.wantPercent, tc.wantLimit)
			}
		})
	}
}
