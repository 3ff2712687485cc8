package main

import (
	"net/http"
	"os"
	"path/filepath"
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
