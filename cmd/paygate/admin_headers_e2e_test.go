package main

import (
	"net/http"
	"strings"
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

// TestAdminAnswersCannotBeFramedOrRun: every answer of the admin listener
// other than the console's page and assets (the admin API's JSON with
// orders, OpenIDs and the conversation texts of the audit, its errors and
// refusals, the metrics, the profiler's HTML index) carries a
// Content-Security-Policy that runs nothing, loads nothing and cannot be
// framed, X-Frame-Options: DENY for browsers without frame-ancestors, and
// Referrer-Policy: no-referrer. Only the console's own answers did: an
// answer opened in a browser tab, or put in a frame of another site (a
// clickjacking page over the profiler, an error that echoes the path a
// page chose), was under no policy at all. The console's page keeps its own
// policy, which runs its own scripts.
func TestAdminAnswersCannotBeFramedOrRun(t *testing.T) {
	adminURL, _, no := adminHostsApp(t)
	token := "Bearer " + testAdminToken
	for _, tc := range []struct {
		method, path string
		h            map[string]string
		status       int
	}{
		{"GET", "/admin/api/orders", map[string]string{"Authorization": token}, http.StatusOK},
		{"GET", "/admin/api/orders/" + no, map[string]string{"Authorization": token}, http.StatusOK},
		{"GET", "/admin/api/audit?text=1", map[string]string{"Authorization": token}, http.StatusOK},
		{"GET", "/admin/api/orders", nil, http.StatusUnauthorized},
		{"GET", "/admin/api/%3Cscript%3Ealert(1)%3C%2Fscript%3E", map[string]string{"Authorization": token}, http.StatusNotFound},
		{"POST", "/admin/api/orders", map[string]string{"Authorization": token, console.CSRFHeader: "1"}, http.StatusMethodNotAllowed},
		{"POST", "/admin/api/approvals/" + no + "/approve", map[string]string{"Authorization": token}, http.StatusForbidden},
		{"GET", "/metrics", nil, http.StatusOK},
		{"GET", "/metrics", map[string]string{"Host": "rebind.attacker.example:8081"}, http.StatusMisdirectedRequest},
		{"GET", "/debug/pprof/", map[string]string{"Authorization": token}, http.StatusOK},
		{"GET", "/nothing", nil, http.StatusNotFound},
		{"GET", console.AssetPrefix + "nothing.js", nil, http.StatusNotFound},
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
			resp, body := doRead(t, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s; want %d", resp.StatusCode, body, tc.status)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "sandbox"} {
				if !strings.Contains(csp, d) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
				}
			}
			if strings.Contains(csp, "script-src") {
				t.Errorf("Content-Security-Policy %q lets a script run", csp)
			}
			if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
				t.Errorf("X-Frame-Options %q; want DENY", got)
			}
			if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy %q; want no-referrer", got)
			}
		})
	}
	// The console's page and assets keep the policy that runs the
	// console's own scripts, and nothing else.
	for _, p := range []string{"/", console.AssetPrefix + "js/main.js"} {
		req, err := http.NewRequest("GET", adminURL+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := doRead(t, req)
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "sandbox") {
			t.Errorf("GET %s: Content-Security-Policy %q; want the console's own", p, csp)
		}
	}
}
