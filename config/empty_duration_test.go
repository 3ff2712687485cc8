package config

import "testing"

// TestEmptyDurationIsRefused: a duration written as empty text ("", or
// quoted spaces: a template that rendered nothing) read as 0, where a
// number and a price refuse empty text. For the keys whose 0 is kept, that
// was a choice nobody wrote: retain_text: "" erased every conversation
// text already kept within a minute of the start, settled_after: "" hid
// every settled order. It is refused at its line; a key with no value
// (key:, ~, an empty ${VAR}) still takes its default.
func TestEmptyDurationIsRefused(t *testing.T) {
	tests := []struct{ src, want string }{
		{"audit:\n  retain_text: \"\"\n", `c.yaml:2: audit.retain_text: empty: write a duration such as "30s", or leave the key out for its default`},
		{"payments:\n  state_injection:\n    settled_after: '  '\n", `c.yaml:3: payments.state_injection.settled_after: empty: write a duration such as "30s", or leave the key out for its default`},
		{"server:\n  shutdown_timeout: \"\"\n", `c.yaml:2: server.shutdown_timeout: empty: write a duration such as "30s", or leave the key out for its default`},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil {
				t.Fatalf("accepted: retain_text=%v settled_after=%v; want %s",
					cfg.Audit.RetainText.D(), cfg.Payments.StateInjection.SettledAfter.D(), tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("got %q; want %q", err, tc.want)
			}
		})
	}
	for _, src := range []string{"audit:\n  retain_text:\n", "audit:\n  retain_text: ~\n", "audit:\n  retain_text: \"${RETAIN}\"\n"} {
		cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := cfg.Audit.RetainText.D(); got != 4320*60*60*1e9 {
			t.Errorf("%q: retain_text %v; want the default, 4320h", src, got)
		}
	}
}
