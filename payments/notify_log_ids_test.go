package payments_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestNotifyLinesCarryRequestAndNotificationIDs: the lines a WeChat Pay
// notification writes, in the handler and deep in the order's transition,
// carry a request_id, one per delivery, as every other request's lines do,
// so an operator can gather them; and the lines of a verified notification
// name WeChat Pay's notification id as notification_id, the key the audit
// record and the other lines use, so they tie to the order's audit. They
// carried no request id, and the notification's id under a bare "id". A
// line about one of paygate's orders names it order_no, as the order's
// other lines do (a notification without SUCCESS named it out_trade_no);
// a rejection names its sender's address remote_addr, as the admin API's
// lines do (it said remote).
func TestNotifyLinesCarryRequestAndNotificationIDs(t *testing.T) {
	logs := &logtest.Buffer{}
	notPaid := "" // the order the not paid case's notification is about
	e := newEnv(t, envOptions{service: func(o *payments.Options) { o.Logger = logging.New(logs, slog.LevelDebug, nil) }})
	tests := []struct {
		name     string
		make     func() (http.Header, []byte)
		verified bool // the notification is WeChat Pay's: its id is named
		order    bool // a line names the paygate order (notPaid) as order_no
	}{
		{"tampered body", func() (http.Header, []byte) {
			n := e.buildPayment(e.paidTx(e.create("oUser-logid-tamper", 1)), nil)
			return n.Header, []byte(strings.Replace(string(n.Body), `"summary":"`, `"summary":"x`, 1))
		}, false, false},
		{"amount mismatch", func() (http.Header, []byte) {
			tx := e.paidTx(e.create("oUser-logid-review", 1))
			tx.Amount.Total = 1
			n := e.buildPayment(tx, nil)
			return n.Header, n.Body
		}, true, false},
		{"not paid", func() (http.Header, []byte) {
			tx := e.paidTx(e.create("oUser-logid-notpay", 1))
			tx.TradeState, notPaid = "NOTPAY", tx.OutTradeNo
			n := e.buildPayment(tx, nil)
			return n.Header, n.Body
		}, true, true},
		{"unknown order", func() (http.Header, []byte) {
			ghost := &store.Order{OrderNo: "PGghostlogid00000001", AppID: e.sim.AppID(), User: "oGhost", AmountFen: 777}
			n := e.buildPayment(e.paidTx(ghost), func(*wxsim.NotificationSpec) {})
			return n.Header, n.Body
		}, true, false},
	}
	seen := map[string]string{} // request id -> case
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := tt.make()
			var note struct{ ID string }
			if err := json.Unmarshal(body, &note); err != nil || note.ID == "" {
				t.Fatalf("notification without an id: %s", body)
			}
			before := len(logs.String())
			e.post(h, body)
			lines := strings.Split(strings.TrimSpace(logs.String()[before:]), "\n")
			if len(lines) == 0 || lines[0] == "" {
				t.Fatal("the notification wrote no line")
			}
			reqID, named, ordered, addressed := "", false, false, false
			for _, line := range lines {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("not JSON: %s", line)
				}
				id, _ := rec["request_id"].(string)
				switch {
				case !strings.HasPrefix(id, "req_"):
					t.Errorf("line without a request_id: %s", line)
				case reqID == "":
					reqID = id
				case id != reqID:
					t.Errorf("request_id %s; want %s, the delivery's one: %s", id, reqID, line)
				}
				if _, bare := rec["id"]; bare {
					t.Errorf("line names an id without saying which: %s", line)
				}
				if _, short := rec["remote"]; short {
					t.Errorf("line names the sender's address remote, where the admin API's lines say remote_addr: %s", line)
				}
				addressed = addressed || rec["remote_addr"] != nil
				named = named || rec["notification_id"] == note.ID
				ordered = ordered || tt.order && rec["order_no"] == notPaid
			}
			if tt.order && !ordered {
				t.Errorf("no line names order_no %s:\n%s", notPaid, strings.Join(lines, "\n"))
			}
			if !tt.verified && !addressed {
				t.Errorf("the rejection names no remote_addr:\n%s", strings.Join(lines, "\n"))
			}
			if tt.verified && !named {
				t.Errorf("no line names notification_id %s:\n%s", note.ID, strings.Join(lines, "\n"))
			}
			if other, dup := seen[reqID]; dup && reqID != "" {
				t.Errorf("request_id %s also given to %s", reqID, other)
			}
			seen[reqID] = tt.name
		})
	}
}
