package redis

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// earlierRecordTTL is the ttl payments writes every refund record with, as
// the version of 2 December 2026 did (its records' until is 400 days
// after their write).
const earlierRecordTTL = 400 * 24 * time.Hour

// earlierRefundRecord is the refund record of order no as a replica of the
// version of 2 December 2026 reads it: its GetExchange, HMGET of d and
// until on {x:refund-inflight:NO} (the key as that version named it, as
// testdata/earlier_version_keys.json.gz holds it), found while until is
// after the server's clock. It names the record's refund, "" for none.
func earlierRefundRecord(t *testing.T, c goredis.UniversalClient, prefix, no string) string {
	t.Helper()
	ctx := context.Background()
	vals, err := c.HMGet(ctx, prefix+"{x:refund-inflight%3A"+no+"}", "d", "until").Result()
	if err != nil {
		t.Fatalf("earlier version's read of %s: %v", no, err)
	}
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	d, ok := replyStr(vals, 0)
	if !ok || replyInt(vals, 1) <= now.UnixMilli() {
		return ""
	}
	var r struct {
		Proposal store.RefundProposal `json:"proposal"`
	}
	if err := json.Unmarshal([]byte(d), &r); err != nil {
		t.Fatalf("earlier version's read of %s: %v", no, err)
	}
	return r.Proposal.RefundID
}

// earlierPutExchange is the script the version of 2 December 2026 writes
// an exchange with, its refund records too (its luaPutExchange, as it was).
// KEYS: key. ARGV: data, until_ms, physical_ms.
var earlierPutExchange = goredis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'until', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// earlierRecordWrite writes order no's refund record as a replica of the
// version of 2 December 2026 does (its PutExchange), with until.
func earlierRecordWrite(t *testing.T, c *goredis.Client, prefix, no string, data []byte, until int64) {
	t.Helper()
	key := prefix + "{x:refund-inflight%3A" + no + "}"
	if err := earlierPutExchange.Run(context.Background(), c, []string{key}, data, until, (earlierRecordTTL + time.Minute).Milliseconds()).Err(); err != nil {
		t.Fatalf("earlier version's write of %s: %v", no, err)
	}
}

// refundRecordOf names the refund of order no's record as this version
// reads it (GetExchange).
func refundRecordOf(t *testing.T, s *Store, no string) string {
	t.Helper()
	b, err := s.GetExchange(context.Background(), store.RefundRecordKey(no))
	if err != nil {
		t.Fatalf("refund record of %s: %v", no, err)
	}
	var r struct {
		Proposal store.RefundProposal `json:"proposal"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("refund record of %s: %v", no, err)
	}
	return r.Proposal.RefundID
}

// refundRecordJSON is a refund record of refund id of order no at version.
func refundRecordJSON(t *testing.T, id, no string, version int64) []byte {
	t.Helper()
	b, err := json.Marshal(struct {
		Proposal     store.RefundProposal `json:"proposal"`
		OrderVersion int64                `json:"order_version"`
	}{store.RefundProposal{RefundID: id, OrderNo: no}, version})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recordAtOrderVersion records refund id as order no's refund record at
// the order's version (PutRefundRecord, with the ttl payments writes) and
// returns the order as it read it and the record.
func recordAtOrderVersion(t *testing.T, s *Store, no, id string) (*store.Order, []byte) {
	t.Helper()
	ctx := context.Background()
	o, err := s.GetOrder(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	rec := refundRecordJSON(t, id, no, o.Version)
	if err := s.PutRefundRecord(ctx, no, o.Version, rec, earlierRecordTTL); err != nil {
		t.Fatal(err)
	}
	return o, rec
}

// TestEarlierVersionReadsThisVersionsRefundRecord: during a rolling upgrade
// from the version of 2 December 2026 (which keeps an order's refund record
// on {x:refund-inflight:NO} and reads it only there), a record this version
// writes is read by that version's replicas too, with the same until and
// about the same expiry: WeChat Pay's SUCCESS of a refund confirmed on a
// new replica and delivered to an old one finds the refund it names.
func TestEarlierVersionReadsThisVersionsRefundRecord(t *testing.T) {
	ctx := context.Background()
	c, prefix, _, s := openEarlierVersion(t)

	const no = "PG261203132231X0FoTrcASo0TlQ"
	if got := earlierRefundRecord(t, c, prefix, no); got != "rf_pzHiP3nmyLRQC5WJVAkaJeDG" {
		t.Fatalf("earlier version's read of %s before this version wrote: %q; want its own record", no, got)
	}
	o, _ := recordAtOrderVersion(t, s, no, "rf_new_replica")
	if got := earlierRefundRecord(t, c, prefix, no); got != "rf_new_replica" {
		t.Errorf("earlier version's read of %s after this version recorded rf_new_replica: %q", no, got)
	}
	if got := refundRecordOf(t, s, no); got != "rf_new_replica" {
		t.Errorf("this version's read of %s: %q; want rf_new_replica", no, got)
	}
	newKey, oldKey := prefix+"{o:"+no+"}:rf", prefix+"{x:refund-inflight%3A"+no+"}"
	nu, err := c.HGet(ctx, newKey, "until").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if ou, err := c.HGet(ctx, oldKey, "until").Int64(); err != nil || ou != nu {
		t.Errorf("until of %s: %d, %v; want %d, the record's on the order's tag", oldKey, ou, err, nu)
	}
	np, op := c.PTTL(ctx, newKey).Val(), c.PTTL(ctx, oldKey).Val()
	if d := np - op; op <= earlierRecordTTL || d < -time.Second || d > time.Second {
		t.Errorf("expiry of %s in %v; want that of %s, %v, past the record's ttl %v", oldKey, op, newKey, np, earlierRecordTTL)
	}

	// A record written through PutExchange (Exchanges under the record's
	// key) is copied too.
	if err := s.PutExchange(ctx, store.RefundRecordKey(no), refundRecordJSON(t, "rf_exchange", no, o.Version), earlierRecordTTL); err != nil {
		t.Fatal(err)
	}
	if got := earlierRefundRecord(t, c, prefix, no); got != "rf_exchange" {
		t.Errorf("earlier version's read of %s after this version's PutExchange of rf_exchange: %q", no, got)
	}
	if got := refundRecordOf(t, s, no); got != "rf_exchange" {
		t.Errorf("this version's read of %s after its PutExchange: %q; want rf_exchange", no, got)
	}

	// A refused write (the order left that version) copies nothing either.
	if err := s.PutRefundRecord(ctx, no, o.Version-1, refundRecordJSON(t, "rf_stale", no, o.Version-1), earlierRecordTTL); err == nil {
		t.Fatal("write at a version the order left: no error")
	}
	if got := earlierRefundRecord(t, c, prefix, no); got != "rf_exchange" {
		t.Errorf("earlier version's read of %s after a refused write: %q; want rf_exchange", no, got)
	}
}

// TestLateRefundRecordCopy: the copy of a refund record where the version
// of 2 December 2026 reads it is a second command (on Redis Cluster the
// keys are in different slots), which may arrive after other writes. Late,
// it leaves a record a replica of that version wrote since (a later until),
// and the copy of a later record of this version's: both versions go on
// reading the later record. Without the check, the late copy replaced the
// earlier version's later record for both (this version reads the later
// until of the two keys, both now the late copy's record), or handed the
// earlier version's replicas an older refund's record.
func TestLateRefundRecordCopy(t *testing.T) {
	ctx := context.Background()
	c, prefix, clock, s := openEarlierVersion(t)

	untilOf := func(no string) int64 {
		t.Helper()
		u, err := c.HGet(ctx, prefix+"{o:"+no+"}:rf", "until").Int64()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	both := func(no, want, when string) {
		t.Helper()
		if got := refundRecordOf(t, s, no); got != want {
			t.Errorf("%s: this version reads %s's record as %q; want %q", when, no, got, want)
		}
		if got := earlierRefundRecord(t, c, prefix, no); got != want {
			t.Errorf("%s: the earlier version reads %s's record as %q; want %q", when, no, got, want)
		}
	}

	// A replica of the earlier version records a refund between this
	// version's write and its copy.
	const a = "PG261203132231X0FoTrcASo0TlQ"
	o, r1 := recordAtOrderVersion(t, s, a, "rf_this_version")
	u1 := untilOf(a)
	older := refundRecordJSON(t, "rf_earlier_replica", a, o.Version+1)
	earlierRecordWrite(t, c, prefix, a, older, u1+1000)
	s.copyRefundRecord(ctx, a, r1, u1, earlierRecordTTL)
	both(a, "rf_earlier_replica", "a late copy after an earlier version's replica recorded a refund")

	// This version records a later refund (its copy in place) before the
	// copy of the one before arrives.
	const b = "PG261203132230tf3Zf8POhxu1yl"
	o, first := recordAtOrderVersion(t, s, b, "rf_first")
	uFirst := untilOf(b)
	clock.Advance(time.Second)
	if err := s.PutRefundRecord(ctx, b, o.Version, refundRecordJSON(t, "rf_second", b, o.Version), earlierRecordTTL); err != nil {
		t.Fatal(err)
	}
	if u := untilOf(b); u <= uFirst {
		t.Fatalf("until of the second record %d, of the first %d; want it later", u, uFirst)
	}
	s.copyRefundRecord(ctx, b, first, uFirst, earlierRecordTTL)
	both(b, "rf_second", "a late copy of an earlier record of this version's")
}

// testRefundRecordCopyInACluster: on Redis Cluster the order's tag and the
// key the version of 2 December 2026 reads are in different slots, and
// the copy reaches the latter all the same.
func testRefundRecordCopyInACluster(t *testing.T, addrs []string) {
	ctx := context.Background()
	prefix := testPrefix()
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { dropPrefix(t, c, prefix); _ = c.Close() })
	clock := storetest.NewClock()
	s := openOn(t, clock, Options{Addrs: addrs, KeyPrefix: prefix})
	const no = "PG-COPY-1"
	newKey, oldKey := prefix+"{o:"+no+"}:rf", prefix+"{x:refund-inflight%3A"+no+"}"
	ns, err := c.ClusterKeySlot(ctx, newKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	if os, err := c.ClusterKeySlot(ctx, oldKey).Result(); err != nil || os == ns {
		t.Fatalf("slot of %s: %d, %v; want one apart from %s's %d", oldKey, os, err, newKey, ns)
	}
	if err := s.CreateOrder(ctx, storetest.NewOrder(no, "shop", "u1", clock.Now())); err != nil {
		t.Fatal(err)
	}
	recordAtOrderVersion(t, s, no, "rf_cluster")
	if got := earlierRefundRecord(t, c, prefix, no); got != "rf_cluster" {
		t.Errorf("earlier version's read of %s on a cluster: %q; want rf_cluster", no, got)
	}
	if got := refundRecordOf(t, s, no); got != "rf_cluster" {
		t.Errorf("this version's read of %s on a cluster: %q; want rf_cluster", no, got)
	}
}
