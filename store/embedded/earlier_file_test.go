package embedded_test

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
)

// TestEarlierVersionFile opens a store file an earlier version wrote
// (testdata/earlier_version.db.gz: paygate of 2 December 2026 driven through
// the simulator, then stopped, the upgrade a single container makes) and
// checks that this version reads every record as that version meant it:
// each order's state and money, the proposal still open, the payments
// announced and the one not yet, and the audit chain, which must verify
// across the versions.
//
// The file is data a user's store holds, not a golden output: never
// regenerate it when this version's format changes on purpose. This
// version must go on reading it as it is; a later layout gets a file of
// its own beside it, written by the binary of that version.
func TestEarlierVersionFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "paygate.db")
	copyGunzip(t, filepath.Join("testdata", "earlier_version.db.gz"), path)
	stopped := time.Date(2026, 12, 3, 13, 10, 50, 0, time.UTC)
	d, err := embedded.Open(path, embedded.Options{Now: func() time.Time { return stopped }, SweepInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })

	orders := []struct {
		no, user           string
		status             store.OrderStatus
		amount, refunded   int64
		reservedBy         string
		announced, pending bool // payment_confirmed told / still to tell
	}{
		{"PG261203131028Qkk3rbvWsc7KTQ", "u1", store.StatusPartiallyRefunded, 9998, 1000, "", true, false},
		{"PG2612031310443UXfPFDGgKdYFZ", "u2", store.StatusAwaitingPayment, 4999, 0, "", false, false},
		{"PG261203131044BvkrnGbjyhEW0P", "u3", store.StatusApprovalRequired, 54989, 0, "", false, false},
		{"PG261203131044MYpbXr0N6B22l8", "u4", store.StatusPaid, 14997, 0, "", false, true},
		{"PG261203131045dug50uX8xHRxVX", "u5", store.StatusRefunding, 19996, 0, "rf_g2Rz1eo2Fhoj300V5bwCaqQa", true, false},
	}
	for _, w := range orders {
		o, err := d.GetOrder(ctx, w.no)
		if err != nil {
			t.Errorf("GetOrder %s: %v", w.no, err)
			continue
		}
		if o.User != w.user || o.Status != w.status || o.AmountFen != w.amount || o.RefundedFen != w.refunded || o.RefundReservedBy != w.reservedBy {
			t.Errorf("%s read as user %s, %s, amount %d, refunded %d, reserved by %q; want %s, %s, %d, %d, %q",
				w.no, o.User, o.Status, o.AmountFen, o.RefundedFen, o.RefundReservedBy, w.user, w.status, w.amount, w.refunded, w.reservedBy)
		}
		st, err := d.LoadUserState(ctx, "shop-bot", w.user)
		if err != nil || len(st.Orders) != 1 || st.Orders[0].OrderNo != w.no {
			t.Errorf("LoadUserState %s: %v, %d orders; want its order %s", w.user, err, len(st.Orders), w.no)
			continue
		}
		if got := st.Announced[store.Announcement{Kind: "announced:", OrderNo: w.no}]; got != w.announced {
			t.Errorf("%s: payment_confirmed announced %v; want %v", w.no, got, w.announced)
		}
		if w.pending && (o.PaidAt.IsZero() || w.announced) {
			t.Errorf("%s: paid at %v; want a payment still to announce", w.no, o.PaidAt)
		}
	}
	all, err := d.ListOrders(ctx, store.OrderFilter{Limit: 100})
	if err != nil || len(all) != len(orders) {
		t.Errorf("ListOrders: %d orders, %v; want %d", len(all), err, len(orders))
	}

	proposals := []struct {
		id     string
		state  store.ProposalState
		amount int64
	}{
		{"rf_6ljWQSqNayy4zk8CsW6r8Q7R", store.ProposalUsed, 1000},
		{"rf_JmcDZ954rB3XQ49J73k3WHvc", store.ProposalOpen, 500},
		{"rf_g2Rz1eo2Fhoj300V5bwCaqQa", store.ProposalUsed, 19996},
	}
	for _, w := range proposals {
		p, state, err := d.RefundProposalState(ctx, w.id)
		if err != nil || state != w.state || p.AmountFen != w.amount || p.User == "" {
			t.Errorf("proposal %s: %v, %s, %+v; want %s of %d", w.id, err, state, p, w.state, w.amount)
		}
	}

	res, err := audit.Verify(ctx, d, audit.VerifyOptions{Head: &store.AuditHead{Seq: 20, Hash: "c2face6cdb2ad7a2a89a81a2ccaeab846666dfe8bdf5320e8e2fe921821c3635"}})
	if err != nil || res.Records != 20 {
		t.Errorf("audit verify of the earlier version's chain: %d records, %v; want 20, no error", res.Records, err)
	}
}

func copyGunzip(t *testing.T, from, to string) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, z); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
