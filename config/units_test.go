package config

import "testing"

// TestSizeWithAUnitSaysWhatToDo: server.max_body_bytes is a number of
// bytes. Written with a unit, as other servers' body limits are (8MB,
// 16MiB, 512k), it was refused with yaml's "cannot unmarshal !!str `8MB`
// into int64", which named neither the unit nor the number to write.
func TestSizeWithAUnitSaysWhatToDo(t *testing.T) {
	cases := []struct{ value, want string }{
		{"8MB", `c.yaml:2: server.max_body_bytes: "8MB" has a unit, which this key does not read: write the number of bytes (8 MiB is 8388608)`},
		{"16MiB", `c.yaml:2: server.max_body_bytes: "16MiB" has a unit, which this key does not read: write the number of bytes (16 MiB is 16777216)`},
		{"512k", `c.yaml:2: server.max_body_bytes: "512k" has a unit, which this key does not read: write the number of bytes (512 KiB is 524288)`},
		{"\"1 GB\"", `c.yaml:2: server.max_body_bytes: "1 GB" has a unit, which this key does not read: write the number of bytes (1 GiB is 1073741824)`},
		{"4096B", `c.yaml:2: server.max_body_bytes: "4096B" has a unit, which this key does not read: write the number of bytes (4096)`},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			_, err := Parse([]byte("server:\n  max_body_bytes: "+c.value+"\n"), "c.yaml", envMap(nil))
			if err == nil || err.Error() != c.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
	// A count is no size: a unit there is still yaml's error.
	if _, err := Parse([]byte("failover:\n  max_attempts: 4MB\n"), "c.yaml", envMap(nil)); err == nil || err.Error() != "c.yaml:2: failover.max_attempts: cannot unmarshal !!str `4MB` into int" {
		t.Errorf("a count with a unit: got %v; want yaml's error", err)
	}
}

// TestDurationInDaysSaysWhatToDo: a duration is Go's (h, m, s, ms), which
// has no day. Retentions and TTLs are thought of in days, and the config's
// own example writes audit.retain_text: 4320h "# 180 days"; 180d, like a
// number without a unit, got only "is not a duration (use e.g. "500ms",
// "30s", "10m")", no closer to the 4320h to write.
func TestDurationInDaysSaysWhatToDo(t *testing.T) {
	cases := []struct{ value, want string }{
		{"180d", `c.yaml:2: audit.retain_text: "180d": a duration has no days: write hours (180d is 4320h)`},
		{"7days", `c.yaml:2: audit.retain_text: "7days": a duration has no days: write hours (7days is 168h)`},
		{"2w", `c.yaml:2: audit.retain_text: "2w": a duration has no weeks: write hours (2w is 336h)`},
		{"30", `c.yaml:2: audit.retain_text: "30" has no unit: write one, e.g. "30s", "30m" or "30h"`},
		{"1.5", `c.yaml:2: audit.retain_text: "1.5" has no unit: write one, e.g. "1.5s", "1.5m" or "1.5h"`},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			_, err := Parse([]byte("audit:\n  retain_text: "+c.value+"\n"), "c.yaml", envMap(nil))
			if err == nil || err.Error() != c.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
}
