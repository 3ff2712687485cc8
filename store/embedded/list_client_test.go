package embedded

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestListOrdersOfAClientReadsItsOrdersOnly: the admin API lists orders
// by client (?client=, with or without ?status=). A page of a client with
// few orders in a store of many read every order of every client, newest
// first, to find them: 813 ms a page among 100,000 orders, seconds among
// a year's. It reads that client's orders (of that status) only.
func TestListOrdersOfAClientReadsItsOrdersOnly(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	d.db.NoSync = true // thousands of single writes; durability is not under test
	const big = 3000
	at := clock.Now().Add(-time.Hour)
	for i := range big {
		o := storetest.NewOrder(fmt.Sprintf("PGBIG%06d", i), "big-bot", fmt.Sprintf("u%d", i%100), at.Add(time.Duration(i)*time.Millisecond))
		o.Status = store.StatusPaid
		if err := d.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	small := []string{}
	for i := range 5 {
		o := storetest.NewOrder(fmt.Sprintf("PGSMALL%02d", i), "small-bot", "u1", at.Add(-time.Duration(i)*time.Minute))
		if err := d.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		small = append(small, o.OrderNo)
	}
	// One of them paid since: it leaves awaiting_payment's list for paid's.
	o, err := d.GetOrder(ctx, small[0])
	if err != nil {
		t.Fatal(err)
	}
	o.Status = store.StatusPaid
	if err := d.UpdateOrder(ctx, o, store.StatusAwaitingPayment); err != nil {
		t.Fatal(err)
	}
	// An order recorded with no client (a payment of an order paygate did
	// not know), listed by NoClient.
	stray := storetest.NewOrder("PGSTRAY01", "", "oPayer", at)
	stray.Status = store.StatusNeedsReview
	if err := d.CreateOrder(ctx, stray); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		f    store.OrderFilter
		want []string
	}{
		{store.OrderFilter{Client: "small-bot"}, small},
		{store.OrderFilter{Client: "small-bot", Status: store.StatusAwaitingPayment}, small[1:]},
		{store.OrderFilter{Client: "small-bot", Status: store.StatusPaid}, small[:1]},
		{store.OrderFilter{Client: "small-bot", Status: store.StatusRefunded}, nil},
		{store.OrderFilter{Client: "small-bot", Limit: 2}, small[:2]},
		{store.OrderFilter{Client: "small-bot", Before: at.Add(-time.Minute), BeforeOrderNo: small[1]}, small[2:]},
		{store.OrderFilter{NoClient: true}, []string{stray.OrderNo}},
		{store.OrderFilter{NoClient: true, Status: store.StatusNeedsReview}, []string{stray.OrderNo}},
	}
	for _, tt := range tests {
		read := 0
		d.listHook = func([]byte) { read++ }
		got, err := d.ListOrders(ctx, tt.f)
		d.listHook = nil
		if err != nil {
			t.Fatalf("%+v: %v", tt.f, err)
		}
		var nos []string
		for _, o := range got {
			nos = append(nos, o.OrderNo)
		}
		if fmt.Sprint(nos) != fmt.Sprint(tt.want) {
			t.Errorf("%+v: listed %v; want %v", tt.f, nos, tt.want)
		}
		if read > len(tt.want) {
			t.Errorf("%+v: read %d orders to list %d: a page of a client reads every client's orders", tt.f, read, len(tt.want))
		}
	}
}

// TestClientIndexOfAFileWithoutIt: a file an earlier version wrote has
// orders but no client index; opening it for writing indexes every
// order, so a client's list is whole, and a read-only open of such a
// file lists as that version did.
func TestClientIndexOfAFileWithoutIt(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "paygate.db")
	d := openAt(t, path, clock)
	for i, client := range []string{"a-bot", "b-bot", "a-bot", ""} {
		o := storetest.NewOrder(fmt.Sprintf("PGOLD%02d", i), client, "u1", clock.Now().Add(time.Duration(i)*time.Second))
		if err := d.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	dropBuckets(t, d, bClientOrders, bClientStatus)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true, Now: clock.Now})
	if err == nil {
		if got := orderNos(t, ro, store.OrderFilter{Client: "a-bot"}); got != "[PGOLD02 PGOLD00]" {
			t.Errorf("read-only: a-bot's orders %s; want [PGOLD02 PGOLD00]", got)
		}
		_ = ro.Close()
	} else if !errors.Is(err, ErrNeedsWrite) {
		t.Fatalf("read-only open: %v", err)
	}
	d = openAt(t, path, clock)
	for f, want := range map[store.OrderFilter]string{
		{Client: "a-bot"}: "[PGOLD02 PGOLD00]",
		{Client: "a-bot", Status: store.StatusAwaitingPayment}: "[PGOLD02 PGOLD00]",
		{Client: "b-bot"}: "[PGOLD01]",
		{NoClient: true}:  "[PGOLD03]",
	} {
		if got := orderNos(t, d, f); got != want {
			t.Errorf("%+v: %s; want %s", f, got, want)
		}
	}
}

// orderNos lists d's orders by f, by their numbers.
func orderNos(t *testing.T, d *DB, f store.OrderFilter) string {
	t.Helper()
	got, err := d.ListOrders(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	var nos []string
	for _, o := range got {
		nos = append(nos, o.OrderNo)
	}
	return fmt.Sprint(nos)
}
