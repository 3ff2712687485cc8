package redis

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestSyncOfAStatusThisVersionDoesNotKnow: in a rolling upgrade a newer
// replica writes an order in a status this version does not know, and this
// one syncs it (its own write's step 4, or Repair's resync). The status's
// slot 0 named {idx}:cv, a hash, since the per-client index came in: the
// sync script failed with WRONGTYPE after it had moved the version and
// taken the order out of its old status set, so the order was in no index
// but the version's, and its repair note was never removed (Repair failing
// on it every pass). An unknown status is in no status set; the rest of the
// sync is done.
func TestSyncOfAStatusThisVersionDoesNotKnow(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	st := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	o := storetest.NewOrder("U1", "c1", "u1", clock.Now().Add(-time.Minute))
	if err := st.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetOrder(ctx, "U1")
	if err != nil {
		t.Fatal(err)
	}
	c := st.Client()
	const note = "U1|later"
	if err := c.ZAdd(ctx, st.k.idx("notes"), goredis.Z{Score: 1, Member: note}).Err(); err != nil {
		t.Fatal(err)
	}
	// The record as the newer replica wrote it; this one resyncs it, as
	// Repair does for the note.
	later := *got
	later.Status = store.OrderStatus("on_hold")
	later.Version = got.Version + 1
	j, err := json.Marshal(&later)
	if err != nil {
		t.Fatal(err)
	}
	rk, _, _ := st.k.orderTag("U1")
	if err := c.HSet(ctx, rk, "j", j, "s", string(later.Status), "v", later.Version).Err(); err != nil {
		t.Fatal(err)
	}
	if err := st.resync(ctx, "U1", note); err != nil {
		t.Errorf("sync of an order in status %q: %v", later.Status, err)
	}
	if v, _ := c.HGet(ctx, st.k.idx("v"), "U1").Result(); v != strconv.FormatInt(later.Version, 10) {
		t.Errorf("indexed version %q; want %d", v, later.Version)
	}
	for _, s := range store.Statuses() {
		if _, err := c.ZScore(ctx, st.k.status(s), "U1").Result(); err == nil {
			t.Errorf("the order is in the %s set; want none", s)
		}
	}
	if _, err := c.ZScore(ctx, st.k.clientOrders("c1"), "U1").Result(); err != nil {
		t.Errorf("the order is not in its client's index: %v", err)
	}
	if _, err := c.ZScore(ctx, st.k.idx("all"), "U1").Result(); err != nil {
		t.Errorf("the order is not in the index of all orders: %v", err)
	}
	if n, _ := c.ZCard(ctx, st.k.idx("notes")).Result(); n != 0 {
		m, _ := c.ZRange(ctx, st.k.idx("notes"), 0, -1).Result()
		t.Errorf("repair notes %q left; want none", m)
	}
	if typ, _ := c.Type(ctx, st.k.idx("cv")).Result(); typ != "hash" {
		t.Errorf("{idx}:cv is a %s; want a hash", typ)
	}
	list, err := st.ListOrders(ctx, store.OrderFilter{Client: "c1"})
	if err != nil || len(list) != 1 || list[0].OrderNo != "U1" || list[0].Status != later.Status {
		t.Errorf("ListOrders(client c1) = %v, %v; want U1, %s", list, err, later.Status)
	}
}
