package config

import "testing"

// TestWholeNumberPastItsRange: a whole number too large for its key was
// refused in yaml's words, "cannot unmarshal !!float `9999999...` into
// int64": a float, where a whole number was written, its digits cut. It
// is now named whole, with the largest number the key holds.
func TestWholeNumberPastItsRange(t *testing.T) {
	tests := []struct{ src, want string }{
		{"server:\n  max_body_bytes: 99999999999999999999\n",
			`c.yaml:2: server.max_body_bytes: 99999999999999999999 is above the largest number this key holds, 9223372036854775807`},
		{"payments:\n  rules:\n    max_orders_per_user_per_day: -99999999999999999999\n",
			`c.yaml:3: payments.rules.max_orders_per_user_per_day: -99999999999999999999 is below the smallest number this key holds, -9223372036854775808`},
		{"failover:\n  max_attempts: 9.223372036854775807e18\n",
			`c.yaml:2: failover.max_attempts: 9.223372036854775807e18 is above the largest number this key holds, 9223372036854775807`},
		// In range: validated as before.
		{"failover:\n  max_attempts: 9223372036854775807\n", ""},
		{"server:\n  max_body_bytes: -1\n", `c.yaml:2: server.max_body_bytes: must be positive`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if tc.want == "" {
				if err != nil {
					t.Errorf("got %v; want it to load", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
}
