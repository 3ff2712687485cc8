package webhook_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestResendSendsTheGivenUpOrderPaidOfARefundedOrder: an order.paid given
// up while the merchant was down, on an order then partly refunded, is the
// only word the merchant gets that the order was paid (a refund.succeeded
// tells it to revoke, not to deliver), so a resend of the order queues it
// again, under its own id and ahead of the refunds, and clears it only
// then. The resend announced the refunds alone and cleared the order.paid
// with the order's other dead letters: the merchant never delivered the
// goods the payer still paid for, and nothing was listed to resend. A
// forced resend (the one offered when the refund was delivered) cleared it
// too. With the refund's event still retried, that event is set back
// behind it, so that the merchant ends on the order's state; with it
// delivered, the order.paid is not sent alone (the goods of an order
// refunded in full delivered), and stays listed.
func TestResendSendsTheGivenUpOrderPaidOfARefundedOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refund string // "given up" with the order.paid, "retried" still, or "delivered"
		query  string
		code   int
		want   []string // the types the merchant accepts after the resend, in order
	}{
		{"refund given up too", "given up", "", http.StatusAccepted, []string{webhook.TypeOrderPaid, webhook.TypeRefundSucceeded}},
		{"refund still retried", "retried", "", http.StatusOK, []string{webhook.TypeOrderPaid, webhook.TypeRefundSucceeded}},
		// Alone, after the refund, it would have the merchant deliver
		// as if nothing was refunded: kept for a forced resend.
		{"refund delivered", "delivered", "", http.StatusConflict, nil},
		{"refund delivered, forced", "delivered", "?force=true", http.StatusAccepted, []string{webhook.TypeOrderPaid, webhook.TypeRefundSucceeded}},
	} {
		for _, driver := range drivers(t) {
			t.Run(tc.name+"/"+driver, func(t *testing.T) {
				clk := newClock()
				rc, up := downReceiver(t, clk.Now)
				st := testdrivers.Open(t, driver, nil)
				no := "PGPAIDREFUNDED" + strings.ReplaceAll(tc.refund+tc.query, " ", "") + driver
				no = strings.NewReplacer("?", "", "=", "").Replace(no)
				o, r := paidAndGivenUp(t, st, rc, clk, no)
				paidID := ""
				for _, a := range rc.arrivals() {
					if a.typ == webhook.TypeOrderPaid {
						paidID = a.id
					}
				}
				if tc.refund == "delivered" {
					up.Store(true)
				}
				orders{t, st}.refund(o, "rf_first", 1000)
				if tc.refund == "retried" {
					drain(t, r) // refused once; retried
				} else {
					runFor(t, r, clk, 8*time.Second)
				}
				up.Store(true)
				before := len(rc.accepted())

				a := postResend(t, r, no, tc.query)
				if a.code != tc.code {
					t.Fatalf("resend%s: %+v; want %d", tc.query, a, tc.code)
				}
				if tc.code == http.StatusConflict {
					runFor(t, r, clk, 2*time.Second)
					if got := rc.accepted()[before:]; len(got) != 0 {
						t.Errorf("the merchant accepted %d events after a refused resend; want none", len(got))
					}
					if v := getAdminView(t, r); len(v.DeadLetters) != 1 || v.DeadLetters[0].EventID != paidID {
						t.Errorf("dead letters after a refused resend: %+v; want the order.paid %s kept", v.DeadLetters, paidID)
					}
					return
				}
				if a := postResend(t, r, no, ""); a.code != http.StatusOK || !a.AlreadyPending || a.Type != webhook.TypeOrderPaid {
					t.Fatalf("resend while the order.paid waits: %+v; want 200 naming it", a)
				}
				runFor(t, r, clk, 2*time.Second)
				var got []string
				acc := rc.accepted()[before:]
				for _, x := range acc {
					got = append(got, x.typ)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("the merchant accepted %v after the resend; want %v", got, tc.want)
				}
				if acc[0].id != paidID {
					t.Errorf("order.paid resent as %s; want the given-up %s, under its own id", acc[0].id, paidID)
				}
				if v := getAdminView(t, r); len(v.DeadLetters) != 0 {
					t.Errorf("dead letters after the resend: %+v; want none", v.DeadLetters)
				}
			})
		}
	}
}
