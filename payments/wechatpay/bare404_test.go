package wechatpay_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestBare404IsNotNotFound: WeChat Pay says a missing order or refund with
// HTTP 404 and its own code in a JSON body ({"code":"ORDER_NOT_EXIST"},
// {"code":"RESOURCE_NOT_EXISTS"}). A 404 without that code comes from
// something else on the way (an egress proxy, a gateway, an api_base
// naming another host) that never asked WeChat Pay, and was read as "no
// such order": the reconciler expired or closed orders the payer may have
// paid, and sent refunds again. Such a 404 is an unknown outcome,
// retried, counted unavailable, and raised as an ALERT naming the route
// to check; WeChat Pay's own not-found stays ErrNotFound.
func TestBare404IsNotNotFound(t *testing.T) {
	ctx := context.Background()
	ops := []struct {
		op   string
		call func(c *wechatpay.Client) error
	}{
		{"query", func(c *wechatpay.Client) error { _, err := c.QueryOrder(ctx, "PGbare404q01"); return err }},
		{"close", func(c *wechatpay.Client) error { return c.CloseOrder(ctx, "PGbare404c01") }},
		{"refund-query", func(c *wechatpay.Client) error { _, err := c.QueryRefund(ctx, "RFbare404r01"); return err }},
	}
	bodies := []struct {
		name, contentType, body string
		wechat                  bool // WeChat Pay's own not-found answer
	}{
		{name: "html page", contentType: "text/html", body: "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>"},
		{name: "empty body"},
		{name: "gateway json", contentType: "application/json", body: `{"timestamp":"2026-12-05T15:00:00Z","status":404,"error":"Not Found","path":"/v3/pay/transactions"}`},
		{name: "json with a numeric code", contentType: "application/json", body: `{"code":404,"message":"Not Found"}`},
		// A code WeChat Pay's order and refund APIs never answer (its
		// transfer APIs' NOT_FOUND; gateways that name statuses): it is
		// not their "no such order".
		{name: "json with code NOT_FOUND", contentType: "application/json", body: `{"code":"NOT_FOUND","message":"no Route matched"}`},
		{name: "wechat pay's own", contentType: "application/json", wechat: true},
	}
	for _, b := range bodies {
		for _, op := range ops {
			t.Run(b.name+"/"+op.op, func(t *testing.T) {
				var hits atomic.Int32
				front := newSink(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					body := b.body
					if b.wechat {
						code := "ORDER_NOT_EXIST"
						if strings.HasPrefix(r.URL.Path, "/v3/refund/") {
							code = "RESOURCE_NOT_EXISTS"
						}
						body = `{"code":"` + code + `","message":"not found"}`
					}
					if b.contentType != "" {
						w.Header().Set("Content-Type", b.contentType)
					}
					w.WriteHeader(http.StatusNotFound)
					_, _ = w.Write([]byte(body))
				}))
				logs := &logtest.Buffer{}
				reg := prometheus.NewRegistry()
				r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) {
					c.APIBase = front.URL
					c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
					c.Registerer = reg
				})
				err := op.call(r.client)
				metrics := scrapeMetrics(t, reg)
				alerts := alertLines(t, logs.String())
				if b.wechat {
					if !errors.Is(err, wechatpay.ErrNotFound) {
						t.Fatalf("got %v; want ErrNotFound", err)
					}
					if n := hits.Load(); n != 1 {
						t.Errorf("%d requests; want 1 (not found is final)", n)
					}
					if len(alerts) != 0 {
						t.Errorf("alerts %v; want none", alerts)
					}
					return
				}
				if errors.Is(err, wechatpay.ErrNotFound) || !errors.Is(err, wechatpay.ErrTemporary) {
					t.Fatalf("got %v; want ErrTemporary, not ErrNotFound: nothing at WeChat Pay said the %s is missing", err, op.op)
				}
				if n := hits.Load(); n != int32(wechatpay.DefaultMaxAttempts) {
					t.Errorf("%d requests; want %d (retried under the same number)", n, wechatpay.DefaultMaxAttempts)
				}
				for _, line := range []string{
					`paygate_wechatpay_requests_total{op="` + op.op + `",outcome="unavailable"} 1` + "\n",
					`paygate_wechatpay_merchant_errors_total{code="not_wechat_pay_404"} 1` + "\n",
				} {
					if !strings.Contains(metrics, line) {
						t.Errorf("/metrics lacks %q:\n%s", line, metrics)
					}
				}
				if len(alerts) != 1 {
					t.Fatalf("%d alerts; want 1; logs:\n%s", len(alerts), logs.String())
				}
				a := alerts[0]
				if a["level"] != "ERROR" || a["op"] != op.op || a["http_status"] != float64(404) ||
					!strings.Contains(a["msg"].(string), "api_base") {
					t.Errorf("alert %v; want an ERROR naming the op, the 404 and api_base", a)
				}
			})
		}
	}
}

// alertLines returns the log records marked "alert": true.
func alertLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true {
			out = append(out, rec)
		}
	}
	return out
}
