package config

import "testing"

// TestDurationPastGoRange: a duration longer than time.Duration holds
// (about 292 years: 3000000h, 1000000000s) was refused as "not a duration
// (use e.g. "500ms", "30s", "10m")", which it is, written just so; 2562047h,
// one hour less, was told it is above the longest duration paygate takes.
// Both say the same.
func TestDurationPastGoRange(t *testing.T) {
	const above = `is above the longest duration paygate takes, 87600h (10 years)`
	tests := []struct{ src, want string }{
		{"audit:\n  retain_text: 3000000h\n", `c.yaml:2: audit.retain_text: "3000000h" ` + above},
		{"payments:\n  dedupe_window: 99999999999999999999s\n", `c.yaml:2: payments.dedupe_window: "99999999999999999999s" ` + above},
		{"payments:\n  dedupe_window: 1h99999999999999999999m\n", `c.yaml:2: payments.dedupe_window: "1h99999999999999999999m" ` + above},
		// Below zero as far: negative, as -1h is.
		{"audit:\n  retain_text: -3000000h\n", `c.yaml:2: audit.retain_text: duration "-3000000h" is negative`},
		// Not a duration: as before.
		{"payments:\n  dedupe_window: 10 min\n", `c.yaml:2: payments.dedupe_window: "10 min" is not a duration (use e.g. "500ms", "30s", "10m")`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}
