package payments_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// reviewNoteUnacked applies the first write that notes WeChat Pay's word on
// an order already in needs_review (an update that keeps it there) and
// reports the store unavailable, as the Redis driver does when WAIT sees
// too few replicas in time: applied, and the order carries its new version.
type reviewNoteUnacked struct {
	fullStore
	mu   sync.Mutex
	done bool
}

func (p *reviewNoteUnacked) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	p.mu.Lock()
	first := !p.done && expect == store.StatusNeedsReview && o.Status == store.StatusNeedsReview
	if first {
		p.done = true
	}
	p.mu.Unlock()
	if err := p.fullStore.UpdateOrder(ctx, o, expect, ev...); err != nil || !first {
		return err
	}
	return errUnreplicated
}

// TestUnackedReviewAlertOmitsThePayer: the payment notification of an
// unknown order whose refund was recorded first (an orphan in review)
// brings WeChat Pay's word on who paid, which the review reason keeps for
// the person who reviews it (", payer <openid>"). When the store applied
// that note without confirming it, WeChat Pay's retry finds it written and
// raises the alert the first answer never logged, with the review reason:
// that line printed the payer's OpenID, the end user's identifier that
// paygate keeps out of its logs. The alert still names the order and why
// it is in review, without the payer; the stored reason keeps it.
func TestUnackedReviewAlertOmitsThePayer(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Store = &reviewNoteUnacked{fullStore: o.Store.(fullStore)}
			}})
			const no, txid, payer = "PGghostAlertPayer0001", "420000123466666666666666666666", "oGhostPayerAlertOpenID0001"
			rn := orphanRefundNote(t, e, no, txid, "50300000000000000000000066666", "RFghostAlertPayer01")
			if status, body := e.post(rn.Header, rn.Body); status != http.StatusNoContent {
				t.Fatalf("refund notification: %d %s; want 204", status, body)
			}

			tx := e.paidTx(&store.Order{OrderNo: no, AppID: e.sim.AppID(), User: payer, AmountFen: 4999})
			tx.TransactionID, tx.SuccessTime = txid, time.Now().Add(-time.Minute).Truncate(time.Second).Format(time.RFC3339)
			pn := e.buildPayment(tx, nil)
			if status, body := e.post(pn.Header, pn.Body); status != http.StatusInternalServerError {
				t.Fatalf("payment notification: %d %s; want 500 (WeChat Pay retries)", status, body)
			}
			if status, body := e.post(pn.Header, pn.Body); status != http.StatusNoContent { // WeChat Pay's retry
				t.Fatalf("retry of the payment notification: %d %s; want 204", status, body)
			}
			if got := e.order(no); !strings.Contains(got.ReviewReason, "paid_while_in_review") || !strings.Contains(got.ReviewReason, payer) {
				t.Fatalf("stored review reason %q; want the payment noted with its payer %s", got.ReviewReason, payer)
			}

			alerts := 0
			for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
				if strings.Contains(line, payer) {
					t.Errorf("a log line holds the payer's OpenID %s: %s", payer, line)
				}
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) != nil || rec["alert"] != true || rec["order_no"] != no ||
					!strings.Contains(rec["msg"].(string), "found applied after the store did not confirm it") {
					continue
				}
				alerts++
				if r, _ := rec["review_reason"].(string); !strings.Contains(r, "paid_while_in_review") || !strings.Contains(r, "transaction "+txid) {
					t.Errorf("alert's review_reason %q; want why the order is in review (paid_while_in_review, transaction %s)", r, txid)
				}
			}
			if alerts != 1 {
				t.Errorf("%d alerts of the unconfirmed note on %s; want 1. Log:\n%s", alerts, no, e.logs.String())
			}
		})
	}
}
