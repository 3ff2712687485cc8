package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// signedAt is the t= of signature header sig.
func signedAt(sig string) int64 {
	for _, p := range strings.Split(sig, ",") {
		if v, ok := strings.CutPrefix(p, "t="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// summary names each arrival's type, id, status and signature check.
func summary(as []arrival) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "[%s %s %d %v] ", a.typ, a.id, a.status, a.verifyErr)
	}
	return b.String()
}

// TestRestartWithANewURLSendsThePendingEventsThere: webhooks.url changed
// while paygate was down an hour, with an order.paid the old endpoint
// refused and the order's refund.succeeded committed behind it. After the
// restart both go to the new endpoint alone, in the order's order, the
// order.paid with the id and body the old endpoint saw, each signed when
// it is sent (a signature of its first attempt, an hour old, is refused by
// every receiver that checks the timestamp as the README says).
func TestRestartWithANewURLSendsThePendingEventsThere(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			var oldHits atomic.Int32
			var mu sync.Mutex
			var oldBody []byte
			old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				oldBody = b
				mu.Unlock()
				oldHits.Add(1)
				w.WriteHeader(http.StatusInternalServerError)
			}))
			defer old.Close()
			rc := newReceiver(t, clk.Now, nil)
			st := testdrivers.Open(t, driver, nil)
			ob := orders{t, st}
			o := ob.create("PGNEWURL"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			drain(t, newRelay(t, st, old.URL, clk.Now, nil))
			if n := oldHits.Load(); n != 1 {
				t.Fatalf("the old endpoint got %d POSTs; want the order.paid once", n)
			}
			ob.refund(o, "rf_newurl", 1000)

			clk.Advance(time.Hour)
			drain(t, newRelay(t, st, rc.URL, clk.Now, nil))
			got := rc.arrivals()
			if len(got) != 2 || got[0].typ != webhook.TypeOrderPaid || got[1].typ != webhook.TypeRefundSucceeded {
				t.Fatalf("the new endpoint got %s; want the order.paid, then the refund.succeeded", summary(got))
			}
			mu.Lock()
			if !bytes.Equal(got[0].body, oldBody) {
				t.Errorf("the new endpoint's order.paid %s; want the body the old one got, %s", got[0].body, oldBody)
			}
			mu.Unlock()
			for _, a := range got {
				if a.verifyErr != nil || signedAt(a.sig) != clk.Now().Unix() {
					t.Errorf("%s signed %q (%v); want it signed when sent, t=%d", a.typ, a.sig, a.verifyErr, clk.Now().Unix())
				}
			}
			if n := oldHits.Load(); n != 1 {
				t.Errorf("the old endpoint got %d POSTs; want none after the restart", n)
			}
			if _, pending := head(t, st, webhook.QueuePrefix+o.OrderNo); pending {
				t.Error("an event is still pending")
			}
		})
	}
}

// TestResendLongAfterTheGiveUpIsSignedWhenSent: an order.paid given up and
// sent again by an operator's resend two hours later goes out under its
// own id and body, with a signature made at the resend's delivery, which
// the merchant's timestamp check accepts.
func TestResendLongAfterTheGiveUpIsSignedWhenSent(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			rc, up := downReceiver(t, clk.Now)
			st := testdrivers.Open(t, driver, nil)
			o, r := paidAndGivenUp(t, st, rc, clk, "PGRESENDLATE"+driver)
			lost := rc.arrivals()[0]

			clk.Advance(2 * time.Hour)
			up.Store(true)
			if a := postResend(t, r, o.OrderNo, ""); a.code != http.StatusAccepted || a.EventID != lost.id {
				t.Fatalf("resend: %+v; want 202 naming %s", a, lost.id)
			}
			before := len(rc.arrivals())
			drain(t, r)
			got := rc.arrivals()[before:]
			if len(got) != 1 || got[0].id != lost.id || !bytes.Equal(got[0].body, lost.body) {
				t.Fatalf("after the resend: %s; want %s once, its body unchanged", summary(got), lost.id)
			}
			if got[0].status != http.StatusOK || got[0].verifyErr != nil || signedAt(got[0].sig) != clk.Now().Unix() {
				t.Errorf("resent %q: status %d, %v; want it signed when sent, t=%d, and accepted", got[0].sig, got[0].status, got[0].verifyErr, clk.Now().Unix())
			}
		})
	}
}
