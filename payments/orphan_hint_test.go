package payments_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestOrphanOfOwnNumberSaysTheStoreLostIt: a payment WeChat Pay reports
// for an order number paygate made (PG and the time), which the store does
// not have, is an order the store lost: restored from an older copy (the
// order made after the copy, still payable, paid), or moved. The ALERT said
// only "unknown order", as for a number paygate never made, and a merchant
// who restored a backup without holding new orders (README, Restoring a
// backup) was not told why, while the same purchase could be paid twice.
// It now names the time the order was made and the likely cause; an order
// number of another shape keeps the plain alert.
func TestOrphanOfOwnNumberSaysTheStoreLostIt(t *testing.T) {
	made := time.Now().Add(-30 * time.Minute).UTC().Truncate(time.Second)
	own := payments.NewOrderNo(made)
	for _, tc := range []struct {
		no   string
		hint bool
	}{{own, true}, {"MERCHANT-ORDER-0001", false}} {
		t.Run(tc.no, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			tx := e.paidTx(&store.Order{OrderNo: tc.no, AppID: e.sim.AppID(), User: "oOrphanHintPayer", AmountFen: 4999})
			n := e.buildPayment(tx, nil)
			if status, body := e.post(n.Header, n.Body); status != http.StatusNoContent {
				t.Fatalf("payment notification: %d %s; want 204", status, body)
			}
			var alert map[string]any
			for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec["out_trade_no"] == tc.no && strings.Contains(rec["msg"].(string), "unknown order") {
					alert = rec
				}
			}
			if alert == nil {
				t.Fatalf("no orphan alert for %s; log:\n%s", tc.no, e.logs.String())
			}
			hint, _ := alert["hint"].(string)
			if tc.hint && (alert["made_at"] != made.Format(time.RFC3339) || !strings.Contains(hint, "Restoring a backup")) {
				t.Errorf("orphan alert of paygate's own number %s: %v; want made_at %s and the hint to Restoring a backup", tc.no, alert, made.Format(time.RFC3339))
			}
			if !tc.hint && (hint != "" || alert["made_at"] != nil) {
				t.Errorf("orphan alert of a number paygate never made: %v; want no hint", alert)
			}
		})
	}
}
