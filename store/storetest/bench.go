package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// BenchLoadUserState measures the per-turn read for a user with orders
// (orders > 0) or with no payment state at all (orders == 0).
func BenchLoadUserState(b *testing.B, st store.Store, orders int) {
	ctx := context.Background()
	user := fmt.Sprintf("bench-user-%d", orders)
	base := time.Now()
	for i := range orders {
		o := NewOrder(fmt.Sprintf("BU-%d-%d", orders, i), "shop", user, base.Add(time.Duration(i)*time.Second))
		if err := st.CreateOrder(ctx, o); err != nil {
			b.Fatalf("CreateOrder: %v", err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		us, err := st.LoadUserState(ctx, "shop", user)
		if err != nil {
			b.Fatalf("LoadUserState: %v", err)
		}
		if len(us.Orders) != min(orders, store.UserStateOrders) {
			b.Fatalf("got %d orders; want %d", len(us.Orders), orders)
		}
	}
}

// BenchTransition measures one order transition with one outbox event, the
// write every payment step makes.
func BenchTransition(b *testing.B, st store.Store) {
	ctx := context.Background()
	o := NewOrder("BT-1", "shop", "bench", time.Now())
	if err := st.CreateOrder(ctx, o); err != nil {
		b.Fatalf("CreateOrder: %v", err)
	}
	from, to := store.StatusAwaitingPayment, store.StatusPaid
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		o.Status = to
		if err := st.UpdateOrder(ctx, o, from, store.Event{ID: fmt.Sprintf("bt-%d", i), Kind: "audit"}); err != nil {
			b.Fatalf("UpdateOrder: %v", err)
		}
		from, to = to, from
		i++
	}
}
