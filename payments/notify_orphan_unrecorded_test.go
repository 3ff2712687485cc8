package payments_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestNotifyOrphanNotRecordedSaysWhy: a verified notification of an order
// paygate does not know whose orphan record the store did not confirm is
// answered 500 FAIL (WeChat Pay retries), and a log line names the order
// and the store's error, for a refund's word as for a payment's. The
// refund's answered its 500 with no line saying why: the operator saw
// WeChat Pay's retries fail, and the metric's store reason, and never the
// store's error.
func TestNotifyOrphanNotRecordedSaysWhy(t *testing.T) {
	tests := []struct {
		name string
		post func(e *env, o *store.Order) (int, string)
	}{
		{name: "payment", post: func(e *env, o *store.Order) (int, string) {
			n := e.buildPayment(e.paidTx(o), nil)
			return e.post(n.Header, n.Body)
		}},
		{name: "refund", post: func(e *env, o *store.Order) (int, string) {
			return e.postRefund(o, "4200001234"+strings.Repeat("7", 18), refundWord{"RFplatform0001", wechatpay.RefundSuccess, 100})
		}},
	}
	for _, driver := range drivers(t) {
		for i, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
					o.Store = &reviewWriteUnacked{fullStore: o.Store.(fullStore)}
				}})
				ghost := &store.Order{OrderNo: fmt.Sprintf("PGghostUnrecorded%04d", i), AppID: e.sim.AppID(), User: "oGhost", AmountFen: 777}
				if status, body := tt.post(e, ghost); status != http.StatusInternalServerError || !strings.Contains(body, `"code":"FAIL"`) {
					t.Fatalf("got %d %q; want 500 FAIL (WeChat Pay retries)", status, body)
				}
				said := false
				for _, line := range strings.Split(e.logs.String(), "\n") {
					var rec map[string]any
					if json.Unmarshal([]byte(line), &rec) == nil && rec["level"] == "ERROR" && rec["order_no"] == ghost.OrderNo &&
						strings.Contains(fmt.Sprint(rec["err"]), "not replicated in time") {
						said = true
					}
				}
				if !said {
					t.Errorf("no ERROR line names order %s and the store's error; log:\n%s", ghost.OrderNo, e.logs.String())
				}
			})
		}
	}
}
