package wechatpay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestMerchantAlertPaced: this host's clock is off, so WeChat Pay answers
// every request SIGN_ERROR, and the sweep queries each of its pending
// orders in turn. The first ALERT reaches the operator at once; the same
// cause's repeats within a minute are left out of the log (each still
// counted in paygate_wechatpay_merchant_errors_total), and the next one
// past the minute says how many were. It was one ALERT line per order
// per sweep: 1,000 pending orders wrote 1,000 identical ALERTs a pass.
// Another cause (an answer that does not verify) is not held by the
// first's, and USER_ACCOUNT_ABNORMAL, which names the one refund a
// person must make by other means, is never held.
func TestMerchantAlertPaced(t *testing.T) {
	ctx := context.Background()
	logs := &logtest.Buffer{}
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	skew := time.Duration(0)
	r := newRig(t, wxsim.Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }}, "", func(c *wechatpay.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		c.Registerer = reg
		c.Now = clock
	})
	paid := func(no string) {
		t.Helper()
		if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: no, Description: "d", Total: 100}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.sim.Pay(ctx, no); err != nil {
			t.Fatal(err)
		}
	}
	paid("PGpacedacct01")
	paid("PGpacedacct02")
	paid("PGpacedsig01")

	mu.Lock()
	skew = 10 * time.Minute
	mu.Unlock()
	for i := range 5 {
		if _, err := r.client.QueryOrder(ctx, fmt.Sprintf("PGpacedskew%02d", i)); !errors.Is(err, wechatpay.ErrRejected) {
			t.Fatalf("query %d: %v; want rejected (SIGN_ERROR)", i, err)
		}
	}
	mu.Lock()
	skew = 0
	mu.Unlock()
	r.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultBadResponseSignature})
	if _, err := r.client.QueryOrder(ctx, "PGpacedsig01"); !errors.Is(err, wechatpay.ErrUnverified) {
		t.Fatalf("query: %v; want unverified", err)
	}
	for _, no := range []string{"PGpacedacct01", "PGpacedacct02"} {
		r.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultUserAccountAbnormal})
		if _, err := r.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: no, OutRefundNo: "RF" + no[2:], Refund: 100, Total: 100}); !errors.Is(err, wechatpay.ErrRejected) {
			t.Fatalf("refund of %s: %v; want rejected", no, err)
		}
	}
	mu.Lock()
	now = now.Add(time.Minute)
	skew = 10 * time.Minute
	mu.Unlock()
	if _, err := r.client.QueryOrder(ctx, "PGpacedskew99"); !errors.Is(err, wechatpay.ErrRejected) {
		t.Fatalf("query: %v; want rejected (SIGN_ERROR)", err)
	}

	var got []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["alert"] != true {
			continue
		}
		code, _ := rec["code"].(string)
		if code == "" {
			code = "bad_signature"
		}
		got = append(got, fmt.Sprintf("%s %v %v", code, rec["no"], rec["suppressed"]))
	}
	want := []string{
		"SIGN_ERROR PGpacedskew00 <nil>",
		"bad_signature PGpacedsig01 <nil>",
		"USER_ACCOUNT_ABNORMAL RFpacedacct01 <nil>",
		"USER_ACCOUNT_ABNORMAL RFpacedacct02 <nil>",
		"SIGN_ERROR PGpacedskew99 4",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := scrapeMetrics(t, reg); !strings.Contains(m, `paygate_wechatpay_merchant_errors_total{code="SIGN_ERROR"} 6`+"\n") {
		t.Errorf("SIGN_ERROR not counted 6 times:\n%s", m)
	}
}
