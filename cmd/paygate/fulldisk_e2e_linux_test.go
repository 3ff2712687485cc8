package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/fulldisk"
)

// TestFullDiskPurchases: the embedded store's disk fills up while paygate
// serves purchases (a real tmpfs, full to its last block). bbolt goes on
// recording in the pages it freed until a write needs one the disk has
// not got; that purchase's tool result tells the model payments are
// temporarily unavailable (as a full Redis's does), not that the payment
// "could not be started"; a WeChat Pay notification is answered SUCCESS
// only once recorded, else 500 FAIL for WeChat Pay to retry. Once the
// disk has room the same process records again, and every order WeChat
// Pay holds is one paygate finds.
func TestFullDiskPurchases(t *testing.T) {
	disk := fulldisk.Mount(t, "2m")
	cs := newCrashSim(t)
	up := newScriptedProvider(t, buyScript())
	n := newCrashNode(t, cs, `store: {path: "`+filepath.Join(disk.Dir, "p.db")+`"}`, up.URL, "", "")
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
	if st, _, res := buy("oUser-full-0"); st != "awaiting_payment" {
		t.Fatalf("purchase before the disk filled: %s", res.Raw)
	}
	paid := orders[0]
	if _, err := cs.Pay(t.Context(), paid.no); err != nil { // its own delivery: recorded before the fill
		t.Fatal(err)
	}
	disk.Fill()

	refused := ""
	for i := 1; i <= 300 && refused == ""; i++ {
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
		t.Fatalf("%d purchases recorded on a full disk; want one refused", len(orders))
	}

	// WeChat Pay's notifications of the orders made on the full disk:
	// SUCCESS only for a payment paygate recorded, else 500 FAIL (retried).
	var unrecorded []made
	for _, o := range orders[1:] {
		if o.user == refused {
			continue // asked again once the disk has room
		}
		if tx, ok := cs.Order(o.no); !ok || tx.TradeState != "NOTPAY" {
			continue
		}
		d, err := cs.Pay(t.Context(), o.no)
		if err != nil {
			t.Fatal(err)
		}
		_, body := n.get("/v1/paygate/orders/"+o.no, o.user)
		if d.Acked {
			if s := gjson.Get(body, "status").Str; s != "paid" {
				t.Errorf("notification of %s answered SUCCESS on a full disk, the order %q; want paid", o.no, s)
			}
			continue
		}
		st, nb, _ := n.notifyPaid(t, cs, o.no, nil)
		if st != http.StatusInternalServerError || gjson.Get(nb, "code").Str != "FAIL" {
			t.Errorf("notification of %s unrecorded on a full disk: %d %s; want 500 FAIL", o.no, st, nb)
		}
		unrecorded = append(unrecorded, o)
	}
	t.Logf("%d orders made on the full disk, %d notifications unrecorded", len(orders)-1, len(unrecorded))

	disk.Free()
	// The user refused asks again, and another user buys: both made at
	// once, by the same process.
	for _, user := range []string{refused, "oUser-full-after"} {
		if st, _, res := buy(user); st != "awaiting_payment" {
			t.Errorf("purchase of %s once the disk has room: %s; want it made, no restart", user, res.Raw)
		}
	}
	for _, o := range unrecorded { // WeChat Pay's retry
		if st, body, _ := n.notifyPaid(t, cs, o.no, nil); st != http.StatusNoContent {
			t.Errorf("notification of %s once the disk has room: %d %s; want 204 (recorded)", o.no, st, body)
		}
		if _, body := n.get("/v1/paygate/orders/"+o.no, o.user); gjson.Get(body, "status").Str != "paid" {
			t.Errorf("order %s after its notification's retry: %s; want paid", o.no, body)
		}
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
	if _, body := n.get("/v1/paygate/orders/"+paid.no, paid.user); gjson.Get(body, "status").Str != "paid" {
		t.Errorf("order paid before the fill: %s; want paid", body)
	}
}
