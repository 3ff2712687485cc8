package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyStoreFile copies the embedded store file from to to, as a backup
// and its restore do (paygate stopped).
func copyStoreFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// awaitPaid waits for the next order.paid of order no at m, skipping
// other events, and returns its id.
func awaitPaid(t *testing.T, m *merchant, no string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case a := <-m.ch:
			if a.env.Type == "order.paid" && a.env.Data.Order["order_no"] == no {
				return a.env.ID
			}
		case <-timeout:
			t.Fatalf("no order.paid of %s reached the merchant within 20s", no)
			return ""
		}
	}
}

// TestRestoredBackupAnnouncesAPaymentOnce: a merchant restores the
// embedded store from a copy made (paygate stopped) while an order was
// payable; the user paid it after the copy, and the merchant's endpoint
// took its order.paid and delivered. The restored file holds the order
// payable: the sweep asks WeChat Pay, finds it paid, and announces
// order.paid again. The merchant deduplicates by id, as the README says:
// it must be the id it already handled, or the goods go out twice.
func TestRestoredBackupAnnouncesAPaymentOnce(t *testing.T) {
	cs := newCrashSim(t)
	up := newScriptedProvider(t, buyScript())
	m := newMerchant(t, nil)
	path := filepath.Join(t.TempDir(), "p.db")
	backup := filepath.Join(t.TempDir(), "backup.db")
	n := newCrashNode(t, cs, `store: {path: "`+path+`"}`, up.URL, m.URL, "  reconcile: {sweep_interval: 1s}\n")
	n.start()
	st, ans, err := n.chat("oUser-restore-paid", "premium please")
	no := ans.Get("paygate.actions.0.order.order_no").Str
	if err != nil || st != http.StatusOK || no == "" {
		t.Fatalf("order: %d %v %s", st, err, ans.Raw)
	}
	if err := n.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	copyStoreFile(t, path, backup)

	n.start()
	if d, err := cs.Pay(t.Context(), no); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	first := awaitPaid(t, m, no)
	if err := n.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	copyStoreFile(t, backup, path) // the disk died; last night's copy goes back
	n.start()
	again := awaitPaid(t, m, no)
	if again != first {
		t.Errorf("after the restore, order.paid of %s came again as %s; the merchant handled it as %s (a new id: the goods delivered twice)", no, again, first)
	}
}

// TestRestoredBackupHoldsNewOrders is README's Restoring a backup: the
// copy knows nothing of an order made after it, still payable at WeChat
// Pay, nor of its purchase's claim. Started on the copy as it was, the
// same purchase asked again got a second payable order, and the user could
// pay both: two charges for one purchase. Started as the README says, with
// payments.budget.max_payment_calls 0 until order_ttl has passed since the
// failed paygate last ran, no order is made meanwhile, while WeChat Pay's
// word still settles the store: the payment of the order the copy holds
// payable reaches the merchant under the id it handled, and the payment of
// the order the copy never saw is an orphan in review under the payer's
// OpenID, announced to the merchant as order.needs_review.
func TestRestoredBackupHoldsNewOrders(t *testing.T) {
	cs := newCrashSim(t)
	up := newScriptedProvider(t, buyScript())
	m := newMerchant(t, nil)
	path := filepath.Join(t.TempDir(), "p.db")
	backup := filepath.Join(t.TempDir(), "backup.db")
	const sweep = "  reconcile: {sweep_interval: 1s}\n"
	n := newCrashNode(t, cs, `store: {path: "`+path+`"}`, up.URL, m.URL, sweep)
	buy := func(user string) string {
		t.Helper()
		st, ans, err := n.chat(user, "premium please")
		no := ans.Get("paygate.actions.0.order.order_no").Str
		if err != nil || st != http.StatusOK || no == "" {
			t.Fatalf("order for %s: %d %v %s", user, st, err, ans.Raw)
		}
		return no
	}
	n.start()
	before := buy("oUser-restore-before")
	if err := n.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	copyStoreFile(t, path, backup)

	n.start()
	if d, err := cs.Pay(t.Context(), before); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	handled := awaitPaid(t, m, before)
	const user = "oUser-restore-after"
	after := buy(user)
	if err := n.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	copyStoreFile(t, backup, path)
	cfg, err := os.ReadFile(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.cfg, strings.Replace(string(cfg), sweep, sweep+"  budget: {max_payment_calls: 0}\n", 1))
	n.start()
	if id := awaitPaid(t, m, before); id != handled {
		t.Errorf("order.paid of %s after the restore: %s; want %s, the id the merchant handled", before, id, handled)
	}
	st, ans, err := n.chat(user, "premium please")
	if err != nil || st != http.StatusOK {
		t.Fatalf("the purchase asked again: %d %v %s", st, err, ans.Raw)
	}
	if a := ans.Get("paygate.actions"); a.Exists() && strings.Contains(a.Raw, "order_created") {
		t.Errorf("the purchase asked again after the restore made an order: %s", a.Raw)
	}
	if c := cs.OrderCount(); c != 2 {
		t.Fatalf("WeChat Pay holds %d orders; want 2 (a second payable order for the purchase %s is open for)", c, after)
	}
	if d, err := cs.Pay(t.Context(), after); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v (WeChat Pay is told FAIL and retries)", after, d, err)
	}
	review := n.adminGet("/admin/api/orders?status=needs_review&user=" + user)
	if !strings.Contains(review, `"order_no":"`+after+`"`) || !strings.Contains(review, "unknown_order") {
		t.Errorf("the payment of the order the copy never saw: %s; want an orphan in review under the payer", review)
	}
	timeout := time.After(20 * time.Second)
	for seen := false; !seen; {
		select {
		case a := <-m.ch:
			seen = a.env.Type == "order.needs_review" && a.env.Data.Order["order_no"] == after && a.env.Data.OpenID == user
		case <-timeout:
			t.Fatalf("no order.needs_review of %s reached the merchant", after)
		}
	}
}
