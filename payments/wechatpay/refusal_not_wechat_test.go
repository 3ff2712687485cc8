package wechatpay_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestRefusalNotFromWeChatPayAlerts: something on the way to WeChat Pay
// (an egress gateway that wants credentials, a WAF, an api_base naming
// another host) answers every call with its own 4xx page: no WeChat Pay
// error code, no signature. WeChat Pay puts its code in every refusal, so
// it is not WeChat Pay's, and every order fails on it until someone fixes
// the route. It went as a plain refusal with no ALERT and no count in
// paygate_wechatpay_merchant_errors_total, as a 2xx page or a bare 404
// from the same raise; WeChat Pay's own refusal with a code does not
// count as one.
func TestRefusalNotFromWeChatPayAlerts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, body string
		status     int
		notWeChat  bool
	}{
		{name: "403 page", status: http.StatusForbidden, body: "<html><body><h1>403 Forbidden</h1></body></html>", notWeChat: true},
		{name: "407 page", status: http.StatusProxyAuthRequired, body: "<html><body>Proxy authentication required</body></html>", notWeChat: true},
		{name: "400 empty", status: http.StatusBadRequest, notWeChat: true},
		{name: "wechat pay's PARAM_ERROR", status: http.StatusBadRequest, body: `{"code":"PARAM_ERROR","message":"bad"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := newSink(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(tc.body, "{") {
					w.Header().Set("Content-Type", "application/json")
				} else if tc.body != "" {
					w.Header().Set("Content-Type", "text/html")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			logs := &logtest.Buffer{}
			reg := prometheus.NewRegistry()
			r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) {
				c.APIBase = front.URL
				c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
				c.Registerer = reg
			})
			_, err := r.client.QueryOrder(ctx, "PGnotwx403q01")
			if !errors.Is(err, wechatpay.ErrRejected) {
				t.Fatalf("query: %v; want rejected", err)
			}
			want, wantAlerts := "0", 0
			if tc.notWeChat {
				want, wantAlerts = "1", 1
			}
			if line := `paygate_wechatpay_merchant_errors_total{code="not_wechat_pay_answer"} ` + want + "\n"; !strings.Contains(scrapeMetrics(t, reg), line) {
				t.Errorf("/metrics lacks %q", line)
			}
			alerts := alertLines(t, logs.String())
			if len(alerts) != wantAlerts {
				t.Fatalf("%d alerts; want %d: %v", len(alerts), wantAlerts, alerts)
			}
			if wantAlerts == 1 && (!strings.Contains(alerts[0]["msg"].(string), "api_base") || alerts[0]["http_status"] != float64(tc.status) || alerts[0]["op"] != "query") {
				t.Errorf("alert %v; want one naming api_base, the status and the op", alerts[0])
			}
		})
	}
}
