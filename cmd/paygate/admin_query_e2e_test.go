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

// TestAdminRoutesRefuseAQueryTheyDoNotTake: the admin routes that take no
// query parameter refuse one (400, the admin API's JSON error, nothing
// done), as the lists and the decisions do. The provider list and reset,
// the audit head and the simulator's steps ignored it: a
// POST …/simulator/orders/PG…/pay?dry_run=1 paid the order for real (the
// merchant told order.paid), a …/providers/NAME/reset?dry_run=1 ended the
// cool-down for real, and GET /admin/api/providers?name=NAME answered
// every provider as if filtered. A query Go cannot parse (a ";", a bad
// escape) is refused too: it read as no parameter, and
// …/pay?dry_run=1; paid the order. Without the parameter each works.
func TestAdminRoutesRefuseAQueryTheyDoNotTake(t *testing.T) {
	url, adminURL, a, _ := consoleApp(t)
	ctx := context.Background()
	no, _ := orderFor(t, url, "oUser-admin-query", "premium monthly please")
	token := "Bearer " + consoleToken
	call := func(method, path string) (int, gjson.Result) {
		t.Helper()
		req, err := http.NewRequest(method, adminURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", token)
		if method != http.MethodGet {
			req.Header.Set(console.CSRFHeader, "1")
		}
		resp, b := doRead(t, req)
		return resp.StatusCode, gjson.ParseBytes(b)
	}
	for _, tc := range []struct {
		method, path string
		want         int // without the query
	}{
		{"GET", "/admin/api/providers", http.StatusOK},
		{"POST", "/admin/api/providers/fake/reset", http.StatusOK},
		{"GET", "/admin/api/audit/head", http.StatusOK},
		{"POST", "/admin/api/webhooks/resume", http.StatusOK},
		{"POST", "/admin/api/simulator/refunds/RFNONE/complete", http.StatusNotFound},
		{"POST", "/admin/api/simulator/orders/" + no + "/pay", http.StatusOK},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			for _, q := range []string{"?dry_run=1", "?name=fake", "?x", "?dry_run=1;", "?dry_run=%zz", "?dry%_run=1"} {
				status, body := call(tc.method, tc.path+q)
				if status != http.StatusBadRequest || body.Get("error").Str == "" {
					t.Errorf("%s: %d %s; want a 400 with an error", q, status, body.Raw)
				}
			}
			if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status == store.StatusPaid {
				t.Fatalf("order %s: %+v %v; want it unpaid", no, o, err)
			}
			if status, body := call(tc.method, tc.path); status != tc.want {
				t.Errorf("without a query: %d %s; want %d", status, body.Raw, tc.want)
			}
		})
	}
	if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusPaid {
		t.Fatalf("order %s: %+v %v; want it paid by the last step", no, o, err)
	}
}

// TestAdminWebhooksOffRefusesAQuery: GET /admin/api/webhooks takes no
// query parameter, and one is a 400 naming it (README), webhooks on or
// off. Off (no webhooks.url), it answered {"enabled":false} to any, so a
// script asking ?order_no=PG… was told nothing about the parameter.
func TestAdminWebhooksOffRefusesAQuery(t *testing.T) {
	adminURL, a, _ := adminHostsApp(t)
	if a.webhooks != nil {
		t.Fatal("the app has merchant webhooks")
	}
	get := func(path string) (int, gjson.Result) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, adminURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, b := doRead(t, req)
		return resp.StatusCode, gjson.ParseBytes(b)
	}
	if status, body := get("/admin/api/webhooks?order_no=PG1"); status != http.StatusBadRequest || !strings.Contains(body.Get("error").Str, "order_no") {
		t.Errorf("?order_no=PG1: %d %s; want a 400 naming it", status, body.Raw)
	}
	for _, q := range []string{"?order_no=PG1;", "?order_no=%zz"} {
		if status, body := get("/admin/api/webhooks" + q); status != http.StatusBadRequest || body.Get("error").Str == "" {
			t.Errorf("%s: %d %s; want a 400 with an error", q, status, body.Raw)
		}
	}
	if status, body := get("/admin/api/webhooks"); status != http.StatusOK || body.Get("enabled").Raw != "false" {
		t.Errorf("without a query: %d %s; want 200 {\"enabled\":false}", status, body.Raw)
	}
}
