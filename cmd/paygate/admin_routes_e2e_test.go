package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// TestEveryAdminAnswerHasARequestID: every route of the admin API, whoever
// mounts it (proxy, the webhooks, the simulator), and the CSRF guard's
// refusal in front of them all answer with an X-Request-Id and are counted
// in paygate_requests_total under their route label, refused or not.
func TestEveryAdminAnswerHasARequestID(t *testing.T) {
	_, adminURL, a, _ := consoleApp(t)
	if a.sim == nil {
		t.Fatal("the console app runs no simulator; the simulator routes would go untested")
	}
	id := regexp.MustCompile(`^req_[0-9a-f]{24}$`)
	for _, tc := range []struct {
		method, path string
		label        string
		noToken      bool   // without the admin token: a 401
		noCSRF       bool   // without the CSRF header: the guard's 403
		origin       string // an Origin header
	}{
		{method: "GET", path: "/admin/api/orders", label: "admin_orders"},
		{method: "GET", path: "/admin/api/orders/PGNONE", label: "admin_orders"},
		{method: "GET", path: "/admin/api/approvals", label: "admin_approvals"},
		{method: "POST", path: "/admin/api/approvals/PGNONE/approve", label: "admin_approvals"},
		{method: "POST", path: "/admin/api/approvals/PGNONE/reject", label: "admin_approvals"},
		{method: "GET", path: "/admin/api/refunds", label: "admin_refunds"},
		{method: "GET", path: "/admin/api/audit/head", label: "admin_audit"},
		{method: "GET", path: "/admin/api/audit", label: "admin_audit"},
		{method: "DELETE", path: "/admin/api/audit/texts/oNobody", label: "admin_audit"},
		{method: "GET", path: "/admin/api/stats", label: "admin_stats"},
		{method: "GET", path: "/admin/api/webhooks", label: "admin_webhooks"},
		{method: "GET", path: "/admin/api/webhooks", label: "admin_webhooks", noToken: true},
		{method: "POST", path: "/admin/api/orders/PGNONE/webhook", label: "admin_webhooks"},
		{method: "POST", path: "/admin/api/webhooks/resume", label: "admin_webhooks"},
		{method: "POST", path: "/admin/api/orders/PGNONE/resolve", label: "admin_orders"},
		{method: "POST", path: "/admin/api/orders/PGNONE/resolve", label: "admin_csrf", noCSRF: true},
		{method: "POST", path: "/admin/api/simulator/orders/PGNONE/pay", label: "admin_simulator"},
		{method: "POST", path: "/admin/api/simulator/refunds/RFNONE/complete", label: "admin_simulator"},
		{method: "POST", path: "/admin/api/simulator/orders/PGNONE/pay", label: "admin_simulator", noToken: true},
		{method: "GET", path: "/admin/api/nothing", label: "admin"},
		{method: "POST", path: "/admin/api/orders", label: "admin"},
		{method: "POST", path: "/admin/api/approvals/PGNONE/approve", label: "admin_csrf", noCSRF: true},
		{method: "POST", path: "/admin/api/simulator/orders/PGNONE/pay", label: "admin_csrf", origin: "https://evil.example"},
	} {
		name := tc.method + " " + tc.path
		if tc.noToken {
			name += " without the token"
		}
		if tc.noCSRF || tc.origin != "" {
			name += " refused by the guard"
		}
		t.Run(name, func(t *testing.T) {
			h := map[string]string{"Authorization": "Bearer " + consoleToken, console.CSRFHeader: "1", "Origin": tc.origin}
			if tc.noToken {
				h["Authorization"] = ""
			}
			if tc.noCSRF {
				h[console.CSRFHeader] = ""
			}
			before := scrape(t, adminURL)
			resp, b := adminDo(t, tc.method, adminURL+tc.path, h)
			if got := resp.Header.Get("X-Request-Id"); !id.MatchString(got) {
				t.Errorf("%d %s: X-Request-Id %q; want req_ and 24 hex digits", resp.StatusCode, b, got)
			}
			switch {
			case tc.noCSRF || tc.origin != "":
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%d %s; want the guard's 403", resp.StatusCode, b)
				}
			case tc.noToken:
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%d %s; want 401", resp.StatusCode, b)
				}
			}
			labels := map[string]string{"route": tc.label, "status": strconv.Itoa(resp.StatusCode)}
			after := scrape(t, adminURL)
			if d := metricSum(t, after, "paygate_requests_total", labels) - metricSum(t, before, "paygate_requests_total", labels); d != 1 {
				t.Errorf("paygate_requests_total%v went up by %v; want 1", labels, d)
			}
		})
	}
}

// TestAdminOffSaysSo: with no admin token configured the admin API is off,
// and every route of it says so, whatever the request carries: 503 with the
// code admin_disabled and how to turn it on (the console shows it instead of
// "That token was refused"), never the route's work: an order waiting for
// a manager stays waiting, and the simulator pays nothing.
func TestAdminOffSaysSo(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	_, a := paymentApp(t, up.URL, "  rules: {approval_above: \"1.00\"}\n")
	if a.cfg.Admin.Token != "" {
		t.Fatal("the app has an admin token")
	}
	ctx := context.Background()
	res, err := a.payments.CreateOrder(ctx, payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"})
	if err != nil || res.Order.Status != store.StatusApprovalRequired {
		t.Fatalf("order: %+v %v; want one waiting for approval", res, err)
	}
	no := res.Order.OrderNo
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	for _, route := range []string{
		"GET /admin/api/audit/head", "GET /admin/api/orders", "GET /admin/api/stats", "GET /admin/api/webhooks",
		"GET /admin/api/nothing", "POST /admin/api/approvals/" + no + "/approve",
		"POST /admin/api/simulator/orders/" + no + "/pay", "DELETE /admin/api/audit/texts/" + testOpenID,
	} {
		for _, auth := range []string{"", "Bearer ", "Bearer " + testAdminToken} {
			method, path, _ := strings.Cut(route, " ")
			t.Run(route+" "+auth, func(t *testing.T) {
				resp, b := adminDo(t, method, admin.URL+path, map[string]string{"Authorization": auth, console.CSRFHeader: "1"})
				body := gjson.ParseBytes(b)
				if resp.StatusCode != http.StatusServiceUnavailable || body.Get("code").Str != proxy.AdminDisabled ||
					!strings.Contains(body.Get("error").Str, "admin.token") || resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("%d %s (X-Request-Id %q); want 503 with the code %s naming admin.token, and a request id",
						resp.StatusCode, b, resp.Header.Get("X-Request-Id"), proxy.AdminDisabled)
				}
			})
		}
	}
	if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusApprovalRequired {
		t.Errorf("order after the calls: %+v %v; want it still waiting for approval", o, err)
	}
}

// adminDo sends method u with the headers of h that are not empty, and
// returns the answer with its body read.
func adminDo(t *testing.T, method, u string, h map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// TestConsoleSaysAdminIsOff: with no admin token configured, the console's
// sign-in page says that the admin API is off and how to turn it on, with the
// form disabled, instead of refusing every token typed into it.
func TestConsoleSaysAdminIsOff(t *testing.T) {
	b := newBrowser(t)
	up := newScriptedProvider(t, purchaseScript)
	_, a := paymentApp(t, up.URL, "")
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	b.do(t, "open the console", chromedp.Navigate(admin.URL+"/"),
		waitFor("the notice", `document.getElementById("signin-error").textContent.includes("admin API is off")`))
	if got := b.text(t, "#signin-error"); !strings.Contains(got, "admin.token") || !strings.Contains(got, "PAYGATE_ADMIN_TOKEN") {
		t.Errorf("notice %q; want it to name admin.token and PAYGATE_ADMIN_TOKEN", got)
	}
	if got := evalJS[string](t, b, `JSON.stringify([document.getElementById("token").disabled, document.getElementById("signin-submit").disabled, document.getElementById("app").hidden])`); got != `[true,true,true]` {
		t.Errorf("[input disabled, button disabled, app hidden] = %s; want all true", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("page faults: %v", f)
	}
}

// TestAdminOperatorRoutesRefuseOtherMethodsAsMain: /healthz, /readyz and
// /metrics on the admin listener are "the same as on main" (README), a
// wrong method included: a 405 method_not_allowed JSON error with
// Allow: GET, HEAD, counted under route operator. The admin listener
// mounted them for GET only, so another method got ServeMux's plain-text
// "Method Not Allowed", which a probe's or a script's JSON parsing cannot
// read and which named nothing.
func TestAdminOperatorRoutesRefuseOtherMethodsAsMain(t *testing.T) {
	mainURL, adminURL, _, _ := consoleApp(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{"POST", "PUT", "DELETE"} {
			t.Run(method+" "+path, func(t *testing.T) {
				h := map[string]string{console.CSRFHeader: "1"} // past the guard, to the route
				want, wantBody := adminDo(t, method, mainURL+path, h)
				got, gotBody := adminDo(t, method, adminURL+path, h)
				if got.StatusCode != http.StatusMethodNotAllowed || got.Header.Get("Allow") != "GET, HEAD" ||
					got.Header.Get("Content-Type") != "application/json" || gjson.GetBytes(gotBody, "error.code").Str != "method_not_allowed" {
					t.Errorf("admin listener: %d Allow=%q (%s) %s; want main's %d Allow=%q (%s) %s", got.StatusCode, got.Header.Get("Allow"),
						got.Header.Get("Content-Type"), strings.TrimSpace(string(gotBody)),
						want.StatusCode, want.Header.Get("Allow"), want.Header.Get("Content-Type"), strings.TrimSpace(string(wantBody)))
				}
			})
		}
	}
}
