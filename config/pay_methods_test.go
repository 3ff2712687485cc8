package config

import (
	"strings"
	"testing"
)

// TestPayMethods: payments.pay_methods and clients[].pay_methods name the
// WeChat Pay methods offered, each a product the merchant activates at
// WeChat Pay. Left out, both (jsapi first, the default method); a written
// empty list, an unknown method or one listed twice is an error at its
// line; a client's list, when written, replaces the payments one for it.
func TestPayMethods(t *testing.T) {
	const client = "clients:\n  - name: bot\n    key: sk-bot-0123\n"
	tests := []struct {
		name, yaml string
		want       string // the error's start; "" when it loads
		global     []string
		own        []string
	}{
		{"left out", client, "", []string{"jsapi", "native"}, nil},
		{"jsapi only", "payments:\n  pay_methods: [jsapi]\n" + client, "", []string{"jsapi"}, nil},
		{"native first", "payments:\n  pay_methods: [native, jsapi]\n" + client, "", []string{"native", "jsapi"}, nil},
		{"no value", "payments:\n  pay_methods:\n" + client, "", []string{"jsapi", "native"}, nil},
		{"a client's own", "payments:\n  pay_methods: [jsapi]\n" + client + "    pay_methods: [native]\n", "", []string{"jsapi"}, []string{"native"}},
		{"empty", "payments:\n  pay_methods: []\n" + client, "c.yaml:2: payments.pay_methods: an empty list, which would offer no way to pay", nil, nil},
		{"unknown", "payments:\n  pay_methods: [jsapi, h5]\n" + client, `c.yaml:2: payments.pay_methods[1]: "h5": "jsapi" (pay inside WeChat) or "native" (a QR code to scan)`, nil, nil},
		{"upper case", "payments:\n  pay_methods:\n    - JSAPI\n" + client, `c.yaml:3: payments.pay_methods[0]: "JSAPI": "jsapi"`, nil, nil},
		{"repeated", "payments:\n  pay_methods:\n    - native\n    - native\n" + client, `c.yaml:4: payments.pay_methods[1]: "native" is listed twice`, nil, nil},
		{"a client's empty", client + "    pay_methods: []\n", "c.yaml:4: clients[0].pay_methods: an empty list", nil, nil},
		{"a client's unknown", client + "    pay_methods: [jsapi, qr]\n", `c.yaml:4: clients[0].pay_methods[1]: "qr"`, nil, nil},
		{"a client's repeated", client + "    pay_methods: [jsapi, jsapi]\n", `c.yaml:4: clients[0].pay_methods[1]: "jsapi" is listed twice`, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), "c.yaml", envMap(nil))
			switch {
			case tc.want != "" && err == nil:
				t.Fatalf("loaded with pay_methods %q, client's %q; want %s", cfg.Payments.PayMethods, cfg.Clients[0].PayMethods, tc.want)
			case tc.want != "" && !strings.HasPrefix(err.Error(), tc.want):
				t.Fatalf("got %q; want it to start with %q", err, tc.want)
			case tc.want != "":
				return
			case err != nil:
				t.Fatalf("got %v; want it to load", err)
			}
			if got := cfg.Payments.PayMethods; strings.Join(got, ",") != strings.Join(tc.global, ",") {
				t.Errorf("payments.pay_methods %q; want %q", got, tc.global)
			}
			if got := cfg.Clients[0].PayMethods; strings.Join(got, ",") != strings.Join(tc.own, ",") {
				t.Errorf("clients[0].pay_methods %q; want %q", got, tc.own)
			}
		})
	}
}
