package wechatpay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestMerchantSideFailuresAlert: an answer only the merchant's operator can
// put right (this host's clock off, so every request is SIGN_ERROR; a
// appid not bound to the mchid; a balance too low for refunds; answers
// signed with a key paygate does not hold) fails every payment or refund
// until someone acts. Each raises an ALERT naming the code, where they
// were logged at most as a warning of the caller's, like any refusal or
// outage. WeChat Pay's own passing trouble and its word about an order
// raise none.
func TestMerchantSideFailuresAlert(t *testing.T) {
	ctx := context.Background()
	paid := func(t *testing.T, r *rig, no string) {
		t.Helper()
		if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: no, Description: "d", Total: 100}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.sim.Pay(ctx, no); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		opts      wxsim.Options
		edit      func(*wechatpay.Config)
		run       func(t *testing.T, r *rig) error
		wantKind  error
		wantAlert string            // "": no alert
		wantCall  string            // the last call's op and outcome, as paygate_wechatpay_requests_total labels them
		wantAttrs map[string]string // the alert's, beside its code
	}{
		{
			name: "clock skew SIGN_ERROR",
			opts: wxsim.Options{Now: func() time.Time { return time.Now().Add(10 * time.Minute) }},
			run: func(t *testing.T, r *rig) error {
				_, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGalertskew01", Description: "d", Total: 100})
				return err
			},
			wantKind: wechatpay.ErrRejected, wantAlert: "SIGN_ERROR",
			wantCall: `op="prepay",outcome="refused"`,
		},
		{
			name: "APPID_MCHID_NOT_MATCH",
			opts: wxsim.Options{AppIDs: []string{"wx1111111111111111"}},
			edit: func(c *wechatpay.Config) { c.AppID = "wx0000000000000000" },
			run: func(t *testing.T, r *rig) error {
				_, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGalertmch01", Description: "d", Total: 100})
				return err
			},
			wantKind: wechatpay.ErrRejected, wantAlert: "APPID_MCHID_NOT_MATCH",
			wantCall: `op="prepay",outcome="refused"`,
		},
		{
			name: "NOT_ENOUGH",
			run: func(t *testing.T, r *rig) error {
				paid(t, r, "PGalertbal01")
				r.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultNotEnough})
				_, err := r.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: "PGalertbal01", OutRefundNo: "RFalertbal01", Refund: 100, Total: 100})
				return err
			},
			wantKind: wechatpay.ErrRejected, wantAlert: "NOT_ENOUGH",
			wantCall: `op="refund",outcome="refused"`,
		},
		{
			// The payer's account is closed: WeChat Pay refunds nothing,
			// and a person must refund them by other means, told which
			// order and refund.
			name: "USER_ACCOUNT_ABNORMAL",
			run: func(t *testing.T, r *rig) error {
				paid(t, r, "PGalertacct01")
				r.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultUserAccountAbnormal})
				_, err := r.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: "PGalertacct01", OutRefundNo: "RFalertacct01", Refund: 100, Total: 100})
				return err
			},
			wantKind: wechatpay.ErrRejected, wantAlert: "USER_ACCOUNT_ABNORMAL",
			wantCall:  `op="refund",outcome="refused"`,
			wantAttrs: map[string]string{"out_trade_no": "PGalertacct01", "no": "RFalertacct01"},
		},
		{
			name: "answer signed with an unknown key",
			run: func(t *testing.T, r *rig) error {
				paid(t, r, "PGalertsig01")
				r.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultBadResponseSignature})
				_, err := r.client.QueryOrder(ctx, "PGalertsig01")
				return err
			},
			wantKind: wechatpay.ErrUnverified, wantAlert: "verif",
			wantCall: `op="query",outcome="unverified"`,
		},
		{
			name: "SYSTEM_ERROR throughout",
			run: func(t *testing.T, r *rig) error {
				r.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultSystemError, Times: 3})
				_, err := r.client.QueryOrder(ctx, "PGalertsys01")
				return err
			},
			wantKind: wechatpay.ErrTemporary,
			wantCall: `op="query",outcome="unavailable"`,
		},
		{
			name: "ORDER_NOT_EXIST",
			run: func(t *testing.T, r *rig) error {
				_, err := r.client.QueryOrder(ctx, "PGalertnone01")
				return err
			},
			wantKind: wechatpay.ErrNotFound,
			wantCall: `op="query",outcome="not_found"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logtest.Buffer{}
			reg := prometheus.NewRegistry()
			r := newRig(t, tt.opts, "", func(c *wechatpay.Config) {
				c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
				c.Registerer = reg
				if tt.edit != nil {
					tt.edit(c)
				}
			})
			if err := tt.run(t, r); !errors.Is(err, tt.wantKind) {
				t.Fatalf("got %v; want %v", err, tt.wantKind)
			}
			var alerts []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true {
					alerts = append(alerts, rec)
				}
			}
			// The on-call who alerts on /metrics sees it there too, not
			// only in a log line: one count under the code, every other
			// code's series present at 0 so increase() sees the first.
			metrics := scrapeMetrics(t, reg)
			for _, code := range []string{"SIGN_ERROR", "MCH_NOT_EXISTS", "APPID_MCHID_NOT_MATCH", "NO_AUTH", "NOT_ENOUGH", "USER_ACCOUNT_ABNORMAL", "bad_signature", "not_wechat_pay_404", "not_wechat_pay_answer"} {
				want := 0
				if tt.wantAlert == code || (tt.wantAlert == "verif" && code == "bad_signature") {
					want = 1
				}
				line := fmt.Sprintf("paygate_wechatpay_merchant_errors_total{code=%q} %d\n", code, want)
				if !strings.Contains(metrics, line) {
					t.Errorf("/metrics lacks %q:\n%s", line, metrics)
				}
			}
			// Every call is counted by op and outcome, so an outage of
			// WeChat Pay (unavailable after its retries) is a rate an
			// on-call can alert on, not only tool calls failing.
			if line := "paygate_wechatpay_requests_total{" + tt.wantCall + "} 1\n"; !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %q:\n%s", line, metrics)
			}
			if tt.wantAlert == "" {
				if len(alerts) != 0 {
					t.Errorf("alerts %v; want none", alerts)
				}
				return
			}
			if len(alerts) != 1 {
				t.Fatalf("%d alerts; want 1 naming %s; logs:\n%s", len(alerts), tt.wantAlert, logs.String())
			}
			a := alerts[0]
			if a["level"] != "ERROR" || !strings.HasPrefix(a["msg"].(string), "ALERT: ") ||
				!strings.Contains(a["code"].(string)+" "+a["msg"].(string), tt.wantAlert) {
				t.Errorf("alert %v; want an ERROR ALERT naming %s", a, tt.wantAlert)
			}
			for k, v := range tt.wantAttrs {
				if a[k] != v {
					t.Errorf("alert's %s %v; want %s", k, a[k], v)
				}
			}
		})
	}
}

// scrapeMetrics reads reg's exposition through the real /metrics handler.
func scrapeMetrics(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
