package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/fulldisk"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestFullDiskPurchases: the embedded store's disk fills up while paygate
// serves purchases (a real tmpfs, full to its last block). bbolt goes on
// recording in the pages it freed until a write needs one the disk has
// not got. WeChat Pay's notification of a payment made then is answered
// SUCCESS only once recorded, else 500 {"code":"FAIL"} for WeChat Pay to
// retry, the order not paid, no order.paid told; a purchase's tool result
// tells the model payments are temporarily unavailable (as a full Redis's
// does), not that the payment "could not be started". Once the disk has
// room the same process records again: the notification's retry (the
// same id) is recorded and answered success, the order paid once (one
// order.paid audit record, one order.paid webhook event), and every order
// WeChat Pay holds is one paygate finds.
func TestFullDiskPurchases(t *testing.T) {
	disk := fulldisk.Mount(t, "2m")
	cs := newCrashSim(t)
	up := newScriptedProvider(t, buyScript())
	m := newMerchant(t, nil)
	// Only notifications record payments here: an order read past
	// query_after (5s by default, passed on a slow host before the
	// notifications of the first orders) asks WeChat Pay, and the query's
	// write found room the notification's had not: the order read back
	// paid, rightly, after the notification's 500 (with query_after 1ms,
	// 1 run in 1). query_gap_e2e_test.go and state_e2e_test.go test that
	// path.
	n := newCrashNode(t, cs, `store: {path: "`+filepath.Join(disk.Dir, "p.db")+`"}`, up.URL, m.URL,
		"  reconcile: {query_after: 1h, sweep_interval: 1h}\n")
	n.start()
	type made struct{ user, no string }
	var orders []made
	buy := func(user string) (status, no string, result gjson.Result) {
		t.Helper()
		st, ans, err := n.chat(user, "premium please")
		if err != nil || st != http.StatusOK {
			t.Fatalf("turn of %s: %d %v %s; want 200", user, st, err, ans.Raw)
		}
		reqs := up.requests()
		result = gjson.Parse(gjson.Get(reqs[len(reqs)-1], `messages.#(role=="tool").content`).Str)
		if no = result.Get("order_no").Str; no != "" && result.Get("status").Str != "failed" && !slices.Contains(orders, made{user, no}) {
			orders = append(orders, made{user, no})
		}
		return result.Get("status").Str, no, result
	}
	status := func(o made) string {
		t.Helper()
		_, body := n.get("/v1/paygate/orders/"+o.no, o.user)
		return gjson.Get(body, "status").Str
	}
	// paidRecords counts each order's order.paid audit records.
	paidRecords := func() map[string]int {
		t.Helper()
		got := map[string]int{}
		for _, r := range gjson.Get(n.adminGet("/admin/api/audit?limit=500"), "records").Array() {
			if r.Get("body.action").Str == "order.paid" {
				got[r.Get("body.order_no").Str]++
			}
		}
		return got
	}
	// retry is WeChat Pay's retry of its notification id of order no's
	// payment: the same id, signed anew.
	retry := func(no, id string) (int, string) {
		t.Helper()
		tx, _ := cs.Order(no)
		note, err := cs.BuildNotification(wxsim.NotificationSpec{
			ID: id, EventType: wechatpay.EventTransactionSuccess, Summary: "支付成功", OriginalType: "transaction", Resource: tx,
		})
		if err != nil {
			t.Fatal(err)
		}
		st, body, _ := n.notifyPaid(t, cs, no, note)
		return st, body
	}

	// Orders made while the disk has room: the first paid then, the
	// others once it is full.
	const before = 60
	for i := range before {
		if st, _, res := buy(fmt.Sprintf("oUser-full-%d", i)); st != "awaiting_payment" {
			t.Fatalf("purchase %d before the disk filled: %s", i, res.Raw)
		}
	}
	paid := orders[0]
	if d, err := cs.Pay(t.Context(), paid.no); err != nil || !d.Acked {
		t.Fatalf("pay %s before the fill: %+v %v", paid.no, d, err)
	}
	disk.Fill()
	// Idle on the full disk: bbolt's freed pages would take a write probe.
	if st, body := n.get("/readyz", ""); st != http.StatusServiceUnavailable || !strings.Contains(body, "store writes fail") {
		t.Errorf("/readyz on the full disk: %d %s; want 503 store writes fail", st, body)
	}

	// The payers pay the others on the full disk, one after another:
	// WeChat Pay's notification of each, and its retry, is answered
	// success only for a payment paygate recorded (bbolt records in the
	// pages it freed), else 500 FAIL, the order not paid. Each payment
	// recorded takes more room, until one cannot be recorded.
	recorded := []made{paid}
	var unrecorded made
	noteID := "" // WeChat Pay's id of unrecorded's notification
	notes := 0
	for _, o := range orders[1:] {
		d, err := cs.Pay(t.Context(), o.no)
		if err != nil {
			t.Fatal(err)
		}
		notes++
		s := status(o)
		if d.Acked {
			if s != "paid" {
				t.Errorf("notification of %s answered %d (success) on a full disk, the order %q; want paid, or 500 FAIL", o.no, d.LastStatus, s)
			}
			recorded = append(recorded, o)
			continue
		}
		if d.LastStatus != http.StatusInternalServerError || s != "awaiting_payment" {
			t.Errorf("notification of %s on a full disk: %d %s, the order %q; want 500, awaiting payment", o.no, d.LastStatus, d.Err, s)
		}
		st, body := retry(o.no, d.ID)
		notes++
		s = status(o)
		if st == http.StatusNoContent {
			if s != "paid" {
				t.Errorf("retry of %s's notification answered 204 on a full disk, the order %q; want paid, or 500 FAIL", o.no, s)
			}
			recorded = append(recorded, o)
			continue
		}
		if st != http.StatusInternalServerError || gjson.Get(body, "code").Str != "FAIL" || s != "awaiting_payment" {
			t.Errorf("retry of %s's notification on a full disk: %d %s, the order %q; want 500 FAIL, awaiting payment", o.no, st, body, s)
		}
		unrecorded, noteID = o, d.ID
		break
	}
	t.Logf("%d notifications on the full disk, %d payments recorded on it, then %s's not", notes, len(recorded)-1, unrecorded.no)
	if noteID == "" {
		t.Fatalf("%d notifications on the full disk, every payment recorded; want one that could not be", notes)
	}
	if c := paidRecords()[unrecorded.no]; c != 0 {
		t.Errorf("order %s unrecorded on the full disk: %d order.paid audit records; want none", unrecorded.no, c)
	}

	refused := ""
	for i := before; i <= 300 && refused == ""; i++ {
		user := fmt.Sprintf("oUser-full-%d", i)
		st, _, res := buy(user)
		switch {
		case st == "awaiting_payment":
		case (st == "failed" || st == "pending") && strings.Contains(res.Get("error").Str+res.Get("message").Str, "temporarily unavailable"):
			refused = user
			t.Logf("purchase %d on the full disk: %s", i, res.Raw)
		default:
			t.Fatalf("purchase %d on a full disk: %s; want it made, or payments said temporarily unavailable", i, res.Raw)
		}
	}
	if refused == "" {
		t.Fatalf("%d purchases recorded on a full disk; want one refused", len(orders)-before)
	}

	disk.Free()
	// The user refused asks again, and another user buys: both made at
	// once, by the same process.
	for _, user := range []string{refused, "oUser-full-after"} {
		if st, _, res := buy(user); st != "awaiting_payment" {
			t.Errorf("purchase of %s once the disk has room: %s; want it made, no restart", user, res.Raw)
		}
	}
	for i := range 2 { // WeChat Pay's retry, and another
		if st, body := retry(unrecorded.no, noteID); st != http.StatusNoContent {
			t.Errorf("retry %d of %s's notification once the disk has room: %d %s; want 204 (recorded)", i+1, unrecorded.no, st, body)
		}
	}
	if s := status(unrecorded); s != "paid" {
		t.Errorf("order %s after its notification's retry: %q; want paid", unrecorded.no, s)
	}
	recorded = append(recorded, unrecorded)
	// Each payment paid once: one order.paid audit record, one order.paid
	// event told the merchant.
	awaitCondition(t, "every payment in the audit and told the merchant", 30*time.Second, func() bool {
		told := map[string]bool{}
		for _, a := range m.processed() {
			if a.env.Type == "order.paid" {
				told[gjson.GetBytes(a.body, "data.order.order_no").Str] = true
			}
		}
		audited := paidRecords()
		for _, o := range recorded {
			if !told[o.no] || audited[o.no] == 0 {
				return false
			}
		}
		return true
	})
	audited, told := paidRecords(), map[string]int{}
	for _, a := range m.processed() {
		if a.env.Type == "order.paid" {
			told[gjson.GetBytes(a.body, "data.order.order_no").Str]++
		}
	}
	for _, o := range recorded {
		if audited[o.no] != 1 || told[o.no] != 1 {
			t.Errorf("order %s: %d order.paid audit records, %d order.paid events told; want 1 and 1", o.no, audited[o.no], told[o.no])
		}
	}
	if st, body := n.get("/readyz", ""); st != http.StatusOK {
		t.Errorf("/readyz once the disk has room, writes recorded: %d %s; want 200", st, body)
	}
	for _, o := range orders {
		if st, body := n.get("/v1/paygate/orders/"+o.no, o.user); st != http.StatusOK {
			t.Errorf("order %s of %s: %d %s; want paygate to find it", o.no, o.user, st, body)
		}
	}
	for _, r := range cs.Requests() {
		if !strings.HasPrefix(r.Op, "prepay") {
			continue
		}
		if o := gjson.Parse(n.adminGet("/admin/api/orders/" + r.OutTradeNo)); o.Get("order.order_no").Str != r.OutTradeNo {
			t.Errorf("order %s WeChat Pay holds: paygate answers %s; want it found", r.OutTradeNo, o.Raw)
		}
	}
	if got := cs.OrderCount(); got != len(orders) {
		t.Errorf("WeChat Pay holds %d orders; paygate answered %d", got, len(orders))
	}
}
