package wechatpay_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestSignatureProbeInAnAnswer: WeChat Pay signs an API answer from time to
// time with its signature probe ("WECHATPAY/SIGNTEST/…"), as it does
// notifications, to check that the merchant verifies answers. The request
// was carried out; only its answer is not to be trusted. Read as a bad
// signature, each probe raised an ALERT telling the on-call to check the
// WeChat Pay public key or platform certificates, counted a merchant
// error, and left the call's outcome unknown (an order left creating, a
// refund pending) although asking again by the same number answers it. A
// probe is refused, raises no alert, and the call is asked again under the
// same number.
func TestSignatureProbeInAnAnswer(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		op   string // the simulator's op the probe answers, and the metric's
		run  func(t *testing.T, r *rig) error
		// after checks the simulator: the request was carried out once.
		after func(t *testing.T, r *rig)
	}{
		{
			name: "prepay",
			op:   "prepay",
			run: func(t *testing.T, r *rig) error {
				res, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGprobe00001", Description: "d", Total: 100})
				if err == nil && res.CodeURL == "" {
					t.Errorf("prepay: %+v; want a code_url", res)
				}
				return err
			},
			after: func(t *testing.T, r *rig) {
				if n := r.sim.OrderCount(); n != 1 {
					t.Errorf("orders at the simulator: %d; want 1", n)
				}
			},
		},
		{
			name: "query",
			op:   "query",
			run: func(t *testing.T, r *rig) error {
				if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGprobe00002", Description: "d", Total: 100}); err != nil {
					t.Fatal(err)
				}
				tx, err := r.client.QueryOrder(ctx, "PGprobe00002")
				if err == nil && tx.TradeState != wechatpay.TradeNotPay {
					t.Errorf("query: %+v; want NOTPAY", tx)
				}
				return err
			},
		},
		{
			name: "refund",
			op:   "refund",
			run: func(t *testing.T, r *rig) error {
				if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGprobe00003", Description: "d", Total: 100}); err != nil {
					t.Fatal(err)
				}
				if _, err := r.sim.Pay(ctx, "PGprobe00003"); err != nil {
					t.Fatal(err)
				}
				rf, err := r.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: "PGprobe00003", OutRefundNo: "RFprobe00003", Refund: 100, Total: 100})
				if err == nil && (rf.OutRefundNo != "RFprobe00003" || rf.Status != wechatpay.RefundProcessing) {
					t.Errorf("refund: %+v; want RFprobe00003 PROCESSING", rf)
				}
				return err
			},
			after: func(t *testing.T, r *rig) {
				if n := r.sim.RefundCount("PGprobe00003"); n != 1 {
					t.Errorf("refunds at the simulator: %d; want 1", n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logtest.Buffer{}
			reg := prometheus.NewRegistry()
			r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) {
				c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
				c.Registerer = reg
			})
			r.sim.InjectFault(wxsim.Fault{Op: tt.op, Kind: wxsim.FaultSignatureProbe})
			if err := tt.run(t, r); err != nil {
				t.Fatalf("%s after a probed answer: %v; want its outcome, asked again by the same number", tt.name, err)
			}
			if tt.after != nil {
				tt.after(t, r)
			}
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true {
					t.Errorf("alert on wechat pay's signature probe: %s", line)
				}
			}
			metrics := scrapeMetrics(t, reg)
			if line := `paygate_wechatpay_merchant_errors_total{code="bad_signature"} 0` + "\n"; !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %q: a probe is no merchant error:\n%s", line, metrics)
			}
		})
	}
}
