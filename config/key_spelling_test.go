package config

import "testing"

// TestUnknownKeySuggestsAnotherSpelling: a key written in another case or
// with other separators (MAX-BODY-BYTES, maxOrdersPerUserPerDay, the way
// other tools' configs or environment variables spell it) was refused with
// no suggestion, as more than two edits from the key it means; it names
// that key, as a typo does.
func TestUnknownKeySuggestsAnotherSpelling(t *testing.T) {
	tests := []struct{ src, want string }{
		{"server:\n  MAX-BODY-BYTES: 1\n", `c.yaml:2: server.MAX-BODY-BYTES: unknown key (did you mean "max_body_bytes"?)`},
		{"payments:\n  rules:\n    max-orders-per-user-per-day: 3\n",
			`c.yaml:3: payments.rules.max-orders-per-user-per-day: unknown key (did you mean "max_orders_per_user_per_day"?)`},
		{"payments:\n  rules:\n    maxOrdersPerUserPerDay: 3\n",
			`c.yaml:3: payments.rules.maxOrdersPerUserPerDay: unknown key (did you mean "max_orders_per_user_per_day"?)`},
		{"providers:\n  - name: p\n    BASE_URL: https://x.example/v1\n", `c.yaml:3: providers[0].BASE_URL: unknown key (did you mean "base_url"?)`},
		// A typo is suggested as before; a key like none is not.
		{"serverr:\n  listen: x\n", `c.yaml:1: serverr: unknown key (did you mean "server"?)`},
		{"server:\n  colour: blue\n", `c.yaml:2: server.colour: unknown key`},
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
