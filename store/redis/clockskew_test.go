package redis

import (
	"context"
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
