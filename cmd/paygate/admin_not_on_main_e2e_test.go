package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// TestAdminSurfaceIsNotOnTheBotsListener: the admin API, the console and
// the profiler are served on the admin listener only (SPEC 2.5). On the
// bots' listener, which a bot (and whoever holds a bot's key, or none) can
// reach, every one of them is a 404, the admin token and the CSRF header
// notwithstanding: a decision sent there approves nothing, a list shows no
// order or OpenID, and the console's page is not served. And no answer of
// either listener grants another origin the admin API (CORS): a preflight
// from another site gets no Access-Control-Allow-* header, so a page there
// cannot send the token. Nothing covered either: an admin route mounted on
// the main mux too (a refactor sharing one mux) would have left every
// listener test green.
func TestAdminSurfaceIsNotOnTheBotsListener(t *testing.T) {
	mainURL, adminURL, a, _ := consoleApp(t)
	user := "oUser-admin-not-on-main"
	no, typ := orderFor(t, mainURL, user, "two years please")
	if typ != "approval_required" {
		t.Fatalf("action %s; want approval_required for 998.00", typ)
	}
	admin := map[string]string{"Authorization": "Bearer " + consoleToken, console.CSRFHeader: "1"}
	for _, tc := range []struct{ method, path string }{
		{"POST", "/admin/api/approvals/" + no + "/approve"},
		{"POST", "/admin/api/approvals/" + no + "/reject"},
		{"POST", "/admin/api/orders/" + no + "/resolve"},
		{"POST", "/admin/api/orders/" + no + "/webhook"},
		{"POST", "/admin/api/simulator/orders/" + no + "/pay"},
		{"GET", "/admin/api/orders"},
		{"GET", "/admin/api/orders/" + no},
		{"GET", "/admin/api/approvals"},
		{"GET", "/admin/api/refunds"},
		{"GET", "/admin/api/audit"},
		{"GET", "/admin/api/audit/head"},
		{"DELETE", "/admin/api/audit/texts/" + user + "?client=bot"},
		{"GET", "/admin/api/webhooks"},
		{"GET", "/admin/api/stats"},
		{"GET", "/admin/api/providers"},
		{"POST", "/admin/api/providers/fake/reset"},
		{"GET", "/"},
		{"GET", console.AssetPrefix + "js/api.js"},
		{"GET", "/debug/pprof/"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := adminDo(t, tc.method, mainURL+tc.path, admin)
			// The bots' API's own 404 for a path outside it: no admin
			// handler (nor the console's file server) saw the request.
			if resp.StatusCode != http.StatusNotFound || gjson.GetBytes(body, "error.code").Str != "unknown_url" {
				t.Errorf("bots' listener: %d %s; want the bots' API's 404 unknown_url", resp.StatusCode, strings.TrimSpace(string(body)))
			}
		})
	}
	if o, err := a.store.GetOrder(context.Background(), no); err != nil || o.Status != store.StatusApprovalRequired {
		t.Errorf("after decisions sent to the bots' listener: %+v %v; want still approval_required", o, err)
	}

	preflight := map[string]string{"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization, content-type, " + strings.ToLower(console.CSRFHeader)}
	for _, base := range []string{mainURL, adminURL} {
		for _, path := range []string{"/admin/api/approvals/" + no + "/approve", "/admin/api/orders"} {
			t.Run("preflight "+base+path, func(t *testing.T) {
				resp, _ := adminDo(t, "OPTIONS", base+path, preflight)
				for k := range resp.Header {
					if strings.HasPrefix(http.CanonicalHeaderKey(k), "Access-Control-Allow-") {
						t.Errorf("%d: %s: %q; want no CORS grant", resp.StatusCode, k, resp.Header.Values(k))
					}
				}
				if resp.StatusCode/100 == 2 {
					t.Errorf("preflight answered %d; want a refusal", resp.StatusCode)
				}
			})
		}
	}
}
