package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestAdminWebhookTimesAreUTC: GET /admin/api/webhooks, and the events
// POSTed to the merchant, give their times in UTC, as every other admin and user API time is (an order's created_at, a
// refund's confirmed_at, a webhook's own created_at), whatever the zone of
// the host's clock: paygate runs on hosts in UTC, in Beijing or anywhere.
// The clock here reads New York time, as time.Now does on a host with
// TZ=America/New_York.
func TestAdminWebhookTimesAreUTC(t *testing.T) {
	ny := time.FixedZone("EST", -5*3600)
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			now := func() time.Time { return clk.Now().In(ny) }
			fail := true
			rc := newReceiver(t, now, func(a arrival, _ int) int {
				if fail && a.orderNo != "PGZONEOK"+driver {
					return http.StatusBadGateway
				}
				return http.StatusNoContent
			})
			st := testdrivers.NewPlace(t, driver, nil).Open()
			create := func(no string) {
				at := now()
				o := store.Order{
					OrderNo: no, Client: "shop-bot", AppID: "wxapp1", User: "oUser-" + no, SKU: "premium-monthly",
					Description: "Premium", Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi",
					Status: store.StatusAwaitingPayment, CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(30 * time.Minute).Truncate(time.Second),
				}
				if err := st.CreateOrder(context.Background(), &o, webhook.Events(payments.Transition{After: o, Cause: "create"})...); err != nil {
					t.Fatal(err)
				}
				before := o
				o.Status, o.UpdatedAt, o.PaidAt, o.TransactionID = store.StatusPaid, now(), now(), "4200"+no
				tr := payments.Transition{Before: before, After: o, Cause: "notification"}
				if err := st.UpdateOrder(context.Background(), &o, before.Status, webhook.Events(tr)...); err != nil {
					t.Fatal(err)
				}
			}
			create("PGZONEOK" + driver)
			create("PGZONEDEAD" + driver)
			r := newRelay(t, st, rc.URL, now, shortWindow)
			runFor(t, r, clk, 6*time.Second) // the first delivered, the second given up
			create("PGZONEHEAD" + driver)
			drain(t, r) // its first attempt fails: a head with next_at and failed_at

			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/api/webhooks", nil))
			body := rec.Body.String()
			paths := []string{"last_delivered_at", "oldest_pending_at", "heads.0.created_at", "heads.0.next_at",
				"heads.0.failed_at", "dead_letters.0.created_at", "dead_letters.0.given_up_at"}
			utc := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)
			for _, p := range paths {
				v := gjson.Get(body, p)
				if !v.Exists() || !utc.MatchString(v.Str) {
					t.Errorf("%s = %s; want an RFC 3339 time in UTC (…Z)", p, v.Raw)
				}
			}
			if t.Failed() {
				t.Logf("GET /admin/api/webhooks: %s", body)
			}
			// The events themselves (SPEC 2.6: created_at, and the order's
			// times as every surface shows them).
			for _, a := range rc.arrivals() {
				for _, p := range []string{"created_at", "data.order.created_at", "data.order.expires_at", "data.order.paid_at"} {
					if v := gjson.GetBytes(a.body, p); !utc.MatchString(v.Str) {
						t.Errorf("event %s: %s = %s; want an RFC 3339 time in UTC (…Z)", a.id, p, v.Raw)
					}
				}
			}
		})
	}
}

// TestResumeAnswersPausedUntilInUTC: POST /admin/api/webhooks/resume
// names the end of the pause it ended in UTC, as GET /admin/api/webhooks
// names it, whatever the zone of the host's clock (New York here).
func TestResumeAnswersPausedUntilInUTC(t *testing.T) {
	ny := time.FixedZone("EST", -5*3600)
	clk := newClock()
	now := func() time.Time { return clk.Now().In(ny) }
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer merchant.Close()
	st := testdrivers.Open(t, "embedded", now)
	orders{t, st}.create("PGZONERESUME", store.StatusApprovalRequired)
	r := newRelay(t, st, merchant.URL, now, nil)
	drain(t, r) // the 503 pauses the endpoint for an hour

	rec := httptest.NewRecorder()
	r.ResumeHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/api/webhooks/resume", nil))
	utc := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)
	if v := gjson.Get(rec.Body.String(), "paused_until"); rec.Code != http.StatusOK || !utc.MatchString(v.Str) {
		t.Errorf("resume answered %d %s; want paused_until an RFC 3339 time in UTC (…Z)", rec.Code, rec.Body)
	}
}
