package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// adminHostsApp serves the binary's admin listener with server.pprof, the
// admin token, server.admin_hosts [paygate-admin.example.com] and an order
// held for a manager; it returns the listener's URL, the app and the held
// order's number.
func adminHostsApp(t *testing.T) (string, *app, string) {
	t.Helper()
	up := newScriptedProvider(t, purchaseScript)
	_, a := paymentApp(t, up.URL, "  rules: {approval_above: \"1.00\"}\n"+
		"server: {pprof: true, admin_hosts: [paygate-admin.example.com]}\n"+
		"admin: {token: "+testAdminToken+"}\n")
	res, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"})
	if err != nil || res.Order.Status != store.StatusApprovalRequired {
		t.Fatalf("order: %+v %v; want one waiting for approval", res, err)
	}
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	return admin.URL, a, res.Order.OrderNo
}

// TestAdminListenerRefusesOtherHosts: a page on
// http://rebind.attacker.example:8081 whose name the attacker re-points at
// 127.0.0.1 (DNS rebinding) is same-origin with the admin listener in the
// operator's browser: Origin and Host both carry the attacker's name. So the
// admin listener answers only the names it is reached by (an IP literal,
// localhost on loopback or every interface, server.admin_hosts): any other
// Host is a 421 with the admin API's JSON error, a request id and a count
// under route admin_host, on every path of the listener, before anything
// is read or decided. The held order is untouched, and approving it under
// a listed name works.
func TestAdminListenerRefusesOtherHosts(t *testing.T) {
	adminURL, a, no := adminHostsApp(t)
	ctx := context.Background()
	token := "Bearer " + testAdminToken
	routes := []struct {
		method, path string
		auth         string
		okStatus     int // answered under a name the listener answers to; 0: not tried (it decides)
	}{
		{"GET", "/metrics", "", http.StatusOK},
		{"GET", "/readyz", "", http.StatusOK},
		{"GET", "/healthz", "", http.StatusOK},
		{"GET", "/", "", http.StatusOK},
		{"GET", console.AssetPrefix + "js/main.js", "", http.StatusOK},
		{"GET", "/admin/api/orders", token, http.StatusOK},
		{"GET", "/admin/api/audit/head", token, http.StatusOK},
		{"GET", "/admin/api/webhooks", token, http.StatusOK},
		{"GET", "/admin/api/nothing", token, http.StatusNotFound},
		{"GET", "/debug/pprof/", token, http.StatusOK},
		{"POST", "/admin/api/approvals/" + no + "/approve", token, 0},
		{"POST", "/admin/api/approvals/" + no + "/reject", token, 0},
		{"DELETE", "/admin/api/audit/texts/" + testOpenID, token, 0},
	}
	refusedHosts := []string{"rebind.attacker.example:8081", "rebind.attacker.example", "localhost.attacker.example:8081"}
	before := scrape(t, adminURL)
	for _, host := range refusedHosts {
		for _, rt := range routes {
			t.Run("refused "+host+" "+rt.method+" "+rt.path, func(t *testing.T) {
				req, err := http.NewRequest(rt.method, adminURL+rt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = host
				// As the rebound page's fetch sends it: same-origin by
				// the browser's account, with the guard's header and a
				// token it guessed.
				req.Header.Set("Origin", "http://"+host)
				req.Header.Set("Sec-Fetch-Site", "same-origin")
				req.Header.Set(console.CSRFHeader, "1")
				if rt.auth != "" {
					req.Header.Set("Authorization", rt.auth)
				}
				resp, b := doRead(t, req)
				if resp.StatusCode != http.StatusMisdirectedRequest || gjson.GetBytes(b, "error").Str == "" ||
					resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("%d %.200s (%s, X-Request-Id %q); want the 421 admin JSON error with a request id",
						resp.StatusCode, b, resp.Header.Get("Content-Type"), resp.Header.Get("X-Request-Id"))
				}
			})
		}
	}
	labels := map[string]string{"route": "admin_host", "status": "421"}
	if d := metricSum(t, scrape(t, adminURL), "paygate_requests_total", labels) - metricSum(t, before, "paygate_requests_total", labels); d != float64(len(refusedHosts)*len(routes)) {
		t.Errorf("paygate_requests_total%v went up by %v; want %d", labels, d, len(refusedHosts)*len(routes))
	}
	if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusApprovalRequired {
		t.Fatalf("order after the refused calls: %+v %v; want it still waiting for approval", o, err)
	}

	for _, host := range []string{"", "localhost:8081", "LOCALHOST", "[::1]:8081", "192.0.2.7", "paygate-admin.example.com", "Paygate-Admin.example.com:443"} {
		for _, rt := range routes {
			if rt.okStatus == 0 {
				continue
			}
			t.Run("answered "+host+" "+rt.method+" "+rt.path, func(t *testing.T) {
				req, err := http.NewRequest(rt.method, adminURL+rt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if host != "" {
					req.Host = host
				}
				if rt.auth != "" {
					req.Header.Set("Authorization", rt.auth)
				}
				if resp, b := doRead(t, req); resp.StatusCode != rt.okStatus {
					t.Errorf("%d %.200s; want %d", resp.StatusCode, b, rt.okStatus)
				}
			})
		}
	}
	// The console under the listed name, behind its ingress: the guard
	// sees Origin and Host alike, and the decision is made.
	req, err := http.NewRequest("POST", adminURL+"/admin/api/approvals/"+no+"/approve", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "paygate-admin.example.com"
	req.Header.Set("Origin", "https://paygate-admin.example.com")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set(console.CSRFHeader, "1")
	req.Header.Set("Authorization", token)
	if resp, b := doRead(t, req); resp.StatusCode != http.StatusOK || gjson.GetBytes(b, "order.status").Str != string(store.StatusAwaitingPayment) {
		t.Errorf("approve under the listed name: %d %s; want 200 and the order awaiting payment", resp.StatusCode, b)
	}
}

// doRead sends req and returns the answer with its body read.
func doRead(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
