package payments_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestSweepKeepsOrdersOnA404NotFromWeChatPay: an egress proxy or gateway
// in front of WeChat Pay (or an api_base naming another host) answering
// HTTP 404 with its own page said nothing about the order, yet the sweep
// read it as "order not found" and expired orders the payer had paid at
// WeChat Pay (one awaiting payment, one a crash left in creating, whose
// day's count it gave back too); their payment notification then sent
// them to needs_review. Each stays as it was, the failure shows in the
// sweep's log, paygate_reconcile_total and the client's metrics and ALERT,
// and once the route answers again the sweep finds them paid.
func TestSweepKeepsOrdersOnA404NotFromWeChatPay(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			var broken atomic.Bool
			clientLogs := &logtest.Buffer{}
			clientReg := prometheus.NewRegistry()
			e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", client: func(c *wechatpay.Config) {
				target, err := url.Parse(c.APIBase)
				if err != nil {
					t.Fatal(err)
				}
				proxy := httputil.NewSingleHostReverseProxy(target)
				gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if broken.Load() {
						w.Header().Set("Content-Type", "text/html")
						w.WriteHeader(http.StatusNotFound)
						_, _ = w.Write([]byte("<html><body><h1>404 Not Found</h1>nginx</body></html>"))
						return
					}
					proxy.ServeHTTP(w, r)
				}))
				t.Cleanup(gw.Close)
				c.APIBase = gw.URL
				c.Logger = slog.New(slog.NewJSONHandler(clientLogs, nil))
				c.Registerer = clientReg
			}})

			awaiting := e.create("oUser-bare404-a", 1)
			creating := e.creatingOrder(payments.NewOrderNo(time.Now()), "oUser-bare404-b", time.Minute)
			e.prepayAtWeChat(creating)
			for _, no := range []string{awaiting.OrderNo, creating.OrderNo} {
				if _, err := e.sim.Pay(ctx, no); err != nil {
					t.Fatal(err)
				}
			}
			e.clock.Advance(payments.DefaultOrderTTL + time.Hour) // both past their deadlines

			broken.Store(true)
			st, err := e.svc.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Errors != 2 || st.Changed != 0 {
				t.Errorf("sweep: %+v; want 2 errors, nothing changed", st)
			}
			for no, want := range map[string]store.OrderStatus{awaiting.OrderNo: store.StatusAwaitingPayment, creating.OrderNo: store.StatusCreating} {
				if got := e.order(no).Status; got != want {
					t.Errorf("order %s after a 404 not from WeChat Pay: %s; want %s as it was (paid at WeChat Pay)", no, got, want)
				}
				if tx, _ := e.sim.Order(no); tx.TradeState != wechatpay.TradeSuccess {
					t.Errorf("order %s at WeChat Pay: %s; want SUCCESS", no, tx.TradeState)
				}
			}
			for _, label := range []map[string]string{{"action": "sweep", "outcome": "error"}, {"action": "resolve_creating", "outcome": "error"}} {
				if n := e.counter("paygate_reconcile_total", label); n != 1 {
					t.Errorf("paygate_reconcile_total%v = %v; want 1", label, n)
				}
			}
			if n := e.counter("paygate_reconcile_total", map[string]string{"outcome": "not_found"}); n != 0 {
				t.Errorf("paygate_reconcile_total{outcome=not_found} = %v; want 0", n)
			}
			if !strings.Contains(e.logs.String(), "sweep: order not reconciled") || !strings.Contains(e.logs.String(), "http 404") {
				t.Errorf("the sweep's log does not name the 404:\n%s", e.logs.String())
			}
			metrics, err := clientReg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var unavailable, alerts float64
			for _, mf := range metrics {
				for _, m := range mf.GetMetric() {
					labels := map[string]string{}
					for _, lp := range m.GetLabel() {
						labels[lp.GetName()] = lp.GetValue()
					}
					switch {
					case mf.GetName() == "paygate_wechatpay_requests_total" && labels["op"] == "query" && labels["outcome"] == "unavailable":
						unavailable += m.GetCounter().GetValue()
					case mf.GetName() == "paygate_wechatpay_merchant_errors_total" && labels["code"] == "not_wechat_pay_404":
						alerts += m.GetCounter().GetValue()
					}
				}
			}
			if unavailable != 2 || alerts != 2 {
				t.Errorf("client metrics: %v queries unavailable, %v not_wechat_pay_404; want 2 and 2", unavailable, alerts)
			}
			if !strings.Contains(clientLogs.String(), `"alert":true`) {
				t.Errorf("no ALERT in the client's log:\n%s", clientLogs.String())
			}

			// The route fixed, the next sweep finds both paid.
			broken.Store(false)
			if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 0 {
				t.Fatalf("sweep after the fix: %+v, %v", st, err)
			}
			for _, no := range []string{awaiting.OrderNo, creating.OrderNo} {
				if got := e.order(no).Status; got != store.StatusPaid {
					t.Errorf("order %s after the route was fixed: %s; want paid", no, got)
				}
			}
		})
	}
}
