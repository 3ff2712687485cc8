package main

import (
	"net/http"
	"testing"

	"github.com/paygate/paygate/proxy/console"
)

// TestAdminAnswersAreNeitherStoredNorSniffed: every answer of the admin
// listener (the admin API's JSON: orders, OpenIDs, the audit; its errors
// and refusals; the metrics and health) says Cache-Control: no-store, so
// that no browser or proxy keeps a copy, and X-Content-Type-Options:
// nosniff, so that none is read as anything but what it says. The
// console's static page and assets, which hold no data, keep their own
// no-cache (revalidated each time).
func TestAdminAnswersAreNeitherStoredNorSniffed(t *testing.T) {
	_, adminURL, _, _ := consoleApp(t)
	token := "Bearer " + consoleToken
	for _, tc := range []struct {
		method, path string
		h            map[string]string
		cache        string
	}{
		{"GET", "/admin/api/orders", map[string]string{"Authorization": token}, "no-store"},
		{"GET", "/admin/api/approvals", map[string]string{"Authorization": token}, "no-store"},
		{"GET", "/admin/api/refunds", map[string]string{"Authorization": token}, "no-store"},
		{"GET", "/admin/api/audit", map[string]string{"Authorization": token}, "no-store"},
		{"GET", "/admin/api/audit/head", map[string]string{"Authorization": token}, "no-store"},
		{"GET", "/admin/api/stats", map[string]string{"Authorization": token}, "no-store"},
		{"GET", "/admin/api/webhooks", map[string]string{"Authorization": token}, "no-store"},
		{"GET", "/admin/api/orders", nil, "no-store"},                                                                                      // 401
		{"GET", "/admin/api/nothing", map[string]string{"Authorization": token}, "no-store"},                                               // 404
		{"POST", "/admin/api/orders", map[string]string{"Authorization": token, console.CSRFHeader: "1"}, "no-store"},                      // 405
		{"POST", "/admin/api/approvals/PGNONE/approve", map[string]string{"Authorization": token}, "no-store"},                             // the guard's 403
		{"POST", "/admin/api/simulator/orders/PGNONE/pay", map[string]string{"Authorization": token, console.CSRFHeader: "1"}, "no-store"}, // 404
		{"GET", "/metrics", nil, "no-store"},
		{"GET", "/readyz", nil, "no-store"},
		{"GET", "/healthz", nil, "no-store"},
		{"GET", "/metrics", map[string]string{"Host": "rebind.attacker.example:8081"}, "no-store"}, // 421
		{"GET", "/", nil, "no-cache"},
		{"GET", console.AssetPrefix + "console.css", nil, "no-cache"},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.h["Host"], func(t *testing.T) {
			req, err := http.NewRequest(tc.method, adminURL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.h {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			resp, _ := doRead(t, req)
			if got := resp.Header.Get("Cache-Control"); got != tc.cache {
				t.Errorf("%d: Cache-Control %q; want %q", resp.StatusCode, got, tc.cache)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%d: X-Content-Type-Options %q; want nosniff", resp.StatusCode, got)
			}
		})
	}
}
