package config

import "testing"

// TestUnknownKeyNamesItsSection: a key written in the wrong section (a
// catalog at the top level, listen outside server, max_attempts under
// payments) was refused as unknown, with no word that paygate has it,
// elsewhere: the error names where it is read.
func TestUnknownKeyNamesItsSection(t *testing.T) {
	tests := []struct{ src, want string }{
		{"catalog:\n  - {sku: a, name: A, price: \"1.00\"}\n", `c.yaml:1: catalog: unknown key (did you mean payments.catalog?)`},
		{"listen: 127.0.0.1:9\n", `c.yaml:1: listen: unknown key (did you mean server.listen?)`},
		{"payments:\n  wechatpay:\n    notify-url: https://x.example/n\n  notify_url: https://x.example/n\n",
			"c.yaml:3: payments.wechatpay.notify-url: unknown key (did you mean \"notify_url\"?)\n" +
				"c.yaml:4: payments.notify_url: unknown key (did you mean payments.wechatpay.notify_url?)"},
		{"payments:\n  max_attempts: 3\n",
			`c.yaml:2: payments.max_attempts: unknown key (did you mean failover.max_attempts or failover.recovery.max_attempts?)`},
		{"providers:\n  - name: p\n    base_url: https://x.example/v1\n    connect: 5s\n",
			`c.yaml:4: providers[0].connect: unknown key (did you mean providers[].timeouts.connect?)`},
		// A key paygate has nowhere: no suggestion.
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
