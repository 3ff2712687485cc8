package webhook_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestHandlerRefusesAFilter: GET /admin/api/webhooks takes no query
// parameter, so one (a merchant's script asking ?order_no=PG… whether its
// order's event is still pending, ?type=order.paid) is a 400 naming it, as
// the other admin routes answer, not every order's heads and dead letters
// answered as if filtered by it, whose first an operator reads as that
// order's.
func TestHandlerRefusesAFilter(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	ob := orders{t, st}
	ob.create("PFILTERA", store.StatusApprovalRequired)
	ob.create("PFILTERB", store.StatusApprovalRequired)
	r := newRelay(t, st, "http://127.0.0.1:1/hook", time.Now, nil)
	for _, tc := range []struct {
		query, name string
		code        int
	}{
		{"", "", http.StatusOK},
		{"?order_no=PFILTERB", "order_no", http.StatusBadRequest},
		{"?type=order.paid", "type", http.StatusBadRequest},
		{"?limit=1", "limit", http.StatusBadRequest},
	} {
		t.Run(tc.query, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/api/webhooks"+tc.query, nil))
			if rec.Code != tc.code || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s %s; want %d, application/json", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tc.code)
			}
			if tc.code == http.StatusOK {
				var st webhook.Stats
				if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.PendingOrders != 2 {
					t.Errorf("%s (%v); want both orders' pending events", rec.Body, err)
				}
				return
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !strings.Contains(body.Error, `"`+tc.name+`"`) {
				t.Errorf("body %s (%v); want {\"error\": …} naming %q", rec.Body, err, tc.name)
			}
		})
	}
}
