package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// replicaSkew is how far the second replica's clock runs ahead of the
// first's in the tests below: more than any lease they take, within the
// minute README allows replica clocks to differ by.
const replicaSkew = 45 * time.Second

// skewedReplicas opens two Stores on one key prefix of the shared Redis, as
// two replicas: the first on clock, the second on clock plus replicaSkew.
func skewedReplicas(t *testing.T) (clock *storetest.Clock, a, b *Store) {
	t.Helper()
	requireSharedRedis(t)
	clock = storetest.NewClock()
	prefix := testPrefix()
	a = openOn(t, clock, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	b = openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix,
		Now: func() time.Time { return clock.Now().Add(replicaSkew) }})
	return clock, a, b
}

// TestSkewedReplicasClaimAnEventOnce: the webhook relay's lease (30 s) is
// shorter than the skew replicas may have; a replica whose clock runs ahead
// must still find an event another replica leased a moment ago leased, or
// the merchant gets it POSTed twice. Once the lease has run out (on the
// clocks of both), the other replica claims it.
func TestSkewedReplicasClaimAnEventOnce(t *testing.T) {
	ctx := context.Background()
	const lease = 30 * time.Second
	clock, a, b := skewedReplicas(t)
	if err := a.EnqueueEvents(ctx, store.Event{ID: "sk-1", Kind: "webhook", Key: "SK-1"}); err != nil {
		t.Fatal(err)
	}
	got, err := a.ClaimEvents(ctx, "webhook", a.now(), lease, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("the first replica's claim: %v, %v; want sk-1", ids(got), err)
	}
	if again, err := b.ClaimEvents(ctx, "webhook", b.now(), lease, 10); err != nil || len(again) != 0 {
		t.Fatalf("a replica %v ahead, claiming under a %v lease: %v, %v; want nothing (leased)", replicaSkew, lease, ids(again), err)
	}
	if due, err := b.DueEvents(ctx, b.now(), 10); err != nil || len(due) != 0 {
		t.Errorf("due on the replica ahead while leased: %v, %v; want nothing", ids(due), err)
	}
	clock.Advance(lease)
	if again, err := b.ClaimEvents(ctx, "webhook", b.now(), lease, 10); err != nil || len(again) != 1 {
		t.Errorf("the replica ahead once the lease ran out: %v, %v; want sk-1", ids(again), err)
	}
	if again, err := a.ClaimEvents(ctx, "webhook", a.now(), lease, 10); err != nil || len(again) != 0 {
		t.Errorf("the first replica under the second's lease: %v, %v; want nothing", ids(again), err)
	}
}

// TestSkewedReplicasUserCopyNotReplayedStale: a user's copy of an order is
// dropped once the order is neither among their newest created nor their
// newest updated. An update written by a replica whose clock is behind the
// one that wrote the version before is scored as updated before that
// version; dropped with its copy, the order's version no longer refused
// that older version's copy, replayed late (a writer's sync step stalled),
// which was then among the newest updated, and the turn's state showed the
// order as that version said (paid, where it was refunded since). Every
// order LoadUserState reads is as its record is.
func TestSkewedReplicasUserCopyNotReplayedStale(t *testing.T) {
	ctx := context.Background()
	clock, behind, ahead := skewedReplicas(t)
	const n, keep = 5 * store.UserStateOrders, store.UserStateOrders
	no := func(i int) string { return fmt.Sprintf("SK-%03d", i) }
	for i := range n {
		clock.Advance(time.Second)
		if err := behind.CreateOrder(ctx, storetest.NewOrder(no(i), "shop", "u1", clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	update := func(s *Store, i int, from, to store.OrderStatus) *store.Order {
		t.Helper()
		o, err := s.GetOrder(ctx, no(i))
		if err != nil {
			t.Fatal(err)
		}
		o.Status = to
		if err := s.UpdateOrder(ctx, o, from); err != nil {
			t.Fatal(err)
		}
		return o
	}
	x := n / 2
	paid := update(ahead, x, store.StatusAwaitingPayment, store.StatusPaid)
	clock.Advance(time.Second)
	update(behind, x, store.StatusPaid, store.StatusRefunded)
	// keep orders updated after it, all within the replicas' skew.
	for i := range keep {
		clock.Advance(time.Second)
		update(behind, i, store.StatusAwaitingPayment, store.StatusPaid)
	}
	// The paid version's copy, replayed late.
	if err := behind.syncUser(ctx, paid); err != nil {
		t.Fatal(err)
	}
	st, err := behind.LoadUserState(ctx, "shop", "u1")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Orders {
		rec, err := behind.GetOrder(ctx, o.OrderNo)
		if err != nil {
			t.Fatal(err)
		}
		if o.Version != rec.Version || o.Status != rec.Status {
			t.Errorf("LoadUserState read %s at version %d, %s; its record is at version %d, %s", o.OrderNo, o.Version, o.Status, rec.Version, rec.Status)
		}
	}
}
