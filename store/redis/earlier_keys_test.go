package redis

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// earlierKey is one key of testdata/earlier_version_keys.json.gz, without
// its prefix, as a dump of the Redis an earlier version wrote lists it.
type earlierKey struct {
	Key  string            `json:"key"`
	Type string            `json:"type"`
	Str  string            `json:"str"`
	Hash map[string]string `json:"hash"`
	List []string          `json:"list"`
	Set  []string          `json:"set"`
	ZSet []struct {
		Score  float64
		Member string
	} `json:"zset"`
	TTL int64 `json:"pttl_ms"`
}

// TestEarlierVersionKeys opens a Redis an earlier version wrote
// (testdata/earlier_version_keys.json.gz: every key paygate of 2 December
// 2026 left, driven through the simulator, then stopped), as the first new
// replica of a rolling upgrade finds it, and checks that this version
// reads every record as that version meant it: each order's state and
// money, the proposal still open, the payments announced and the one not
// yet, and the audit chain, which must verify across the versions.
//
// The file is data a user's store holds, not a golden output: never
// regenerate it when this version's format changes on purpose. This
// version must go on reading it as it is; a later layout gets a file of
// its own beside it, written by the binary of that version.
func TestEarlierVersionKeys(t *testing.T) {
	ctx := context.Background()
	_, _, _, s := openEarlierVersion(t)

	orders := []struct {
		no, user         string
		status           store.OrderStatus
		amount, refunded int64
		reservedBy       string
		announced        bool // payment_confirmed told
	}{
		{"PG261203132230tf3Zf8POhxu1yl", "u1", store.StatusPartiallyRefunded, 9998, 1000, "", true},
		{"PG261203132230nk1oV1UIefBlGx", "u2", store.StatusAwaitingPayment, 4999, 0, "", false},
		{"PG261203132230Chn8sHd6nLROId", "u3", store.StatusApprovalRequired, 54989, 0, "", false},
		{"PG261203132231H08HueL8NtITRK", "u4", store.StatusPaid, 14997, 0, "", false},
		{"PG261203132231X0FoTrcASo0TlQ", "u5", store.StatusRefunding, 19996, 0, "rf_pzHiP3nmyLRQC5WJVAkaJeDG", true},
	}
	for _, w := range orders {
		o, err := s.GetOrder(ctx, w.no)
		if err != nil {
			t.Errorf("GetOrder %s: %v", w.no, err)
			continue
		}
		if o.User != w.user || o.Status != w.status || o.AmountFen != w.amount || o.RefundedFen != w.refunded || o.RefundReservedBy != w.reservedBy {
			t.Errorf("%s read as user %s, %s, amount %d, refunded %d, reserved by %q; want %s, %s, %d, %d, %q",
				w.no, o.User, o.Status, o.AmountFen, o.RefundedFen, o.RefundReservedBy, w.user, w.status, w.amount, w.refunded, w.reservedBy)
		}
		st, err := s.LoadUserState(ctx, "shop-bot", w.user)
		if err != nil || len(st.Orders) != 1 || st.Orders[0].OrderNo != w.no {
			t.Errorf("LoadUserState %s: %v; want its order %s alone", w.user, err, w.no)
			continue
		}
		if got := st.Announced[store.Announcement{Kind: "announced:", OrderNo: w.no}]; got != w.announced {
			t.Errorf("%s: payment_confirmed announced %v; want %v", w.no, got, w.announced)
		}
	}
	all, err := s.ListOrders(ctx, store.OrderFilter{Limit: 100})
	if err != nil || len(all) != len(orders) {
		t.Errorf("ListOrders: %d orders, %v; want %d", len(all), err, len(orders))
	}

	proposals := []struct {
		id     string
		state  store.ProposalState
		amount int64
	}{
		{"rf_XuT3ZlbdbMIklZZykk0r9DYw", store.ProposalUsed, 1000},
		{"rf_j9SCmPO5zI1dLbyxWn17CLCa", store.ProposalOpen, 500},
		{"rf_pzHiP3nmyLRQC5WJVAkaJeDG", store.ProposalUsed, 19996},
	}
	for _, w := range proposals {
		p, state, err := s.RefundProposalState(ctx, w.id)
		if err != nil || state != w.state || p.AmountFen != w.amount || p.User == "" {
			t.Errorf("proposal %s: %v, %s, %+v; want %s of %d", w.id, err, state, p, w.state, w.amount)
		}
	}

	res, err := audit.Verify(ctx, s, audit.VerifyOptions{Head: &store.AuditHead{Seq: 20, Hash: "442d54f90a0a80e8e4d5d4452c882294350dd4f76cc986279c942d280bfeecbb"}})
	if err != nil || res.Records != 20 {
		t.Errorf("audit verify of the earlier version's chain: %d records, %v; want 20, no error", res.Records, err)
	}
}

// openEarlierVersion loads testdata/earlier_version_keys.json.gz under a
// prefix of its own on the shared Redis and opens this version on it, its
// clock at the moment the earlier version stopped (13:22:40 UTC on 3
// December 2026), as the first new replica of a rolling upgrade finds it.
// It returns a client of that Redis, the prefix, the clock and the store.
func openEarlierVersion(t *testing.T) (*goredis.Client, string, *storetest.Clock, *Store) {
	t.Helper()
	requireSharedRedis(t)
	prefix := testPrefix()
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
	t.Cleanup(func() { dropPrefix(t, c, prefix); _ = c.Close() })
	loadEarlierKeys(t, c, prefix, filepath.Join("testdata", "earlier_version_keys.json.gz"))
	clock := storetest.NewClock()
	clock.Advance(time.Date(2026, 12, 3, 13, 22, 40, 0, time.UTC).Sub(clock.Now()))
	return c, prefix, clock, openOn(t, clock, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
}

// loadEarlierKeys writes the keys of a dump under prefix.
func loadEarlierKeys(t *testing.T, c *goredis.Client, prefix, path string) {
	t.Helper()
	ctx := context.Background()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var keys []earlierKey
	if err := json.NewDecoder(z).Decode(&keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		name := prefix + k.Key
		var err error
		switch k.Type {
		case "string":
			err = c.Set(ctx, name, k.Str, 0).Err()
		case "hash":
			err = c.HSet(ctx, name, k.Hash).Err()
		case "list":
			err = c.RPush(ctx, name, k.List).Err()
		case "set":
			err = c.SAdd(ctx, name, k.Set).Err()
		case "zset":
			zs := make([]goredis.Z, len(k.ZSet))
			for i, m := range k.ZSet {
				zs[i] = goredis.Z{Score: m.Score, Member: m.Member}
			}
			err = c.ZAdd(ctx, name, zs...).Err()
		default:
			t.Fatalf("key %s: type %s", k.Key, k.Type)
		}
		if err == nil && k.TTL > 0 {
			err = c.PExpire(ctx, name, time.Duration(k.TTL)*time.Millisecond).Err()
		}
		if err != nil {
			t.Fatalf("load %s: %v", k.Key, err)
		}
	}
}

// TestEarlierVersionRefundRecords: an earlier version kept an order's
// refund record on a tag of its own ({x:refund-inflight:NO}); this one
// keeps it on the order's ({o:NO}:rf), where PutRefundRecord checks the
// order's version in the same script. A record of the earlier version
// (testdata/earlier_version_keys.json.gz) is read as it was until this
// version writes one, which is read from then on (both written with the
// same ttl, the later written has the later until), and a write at a
// version the order has left changes neither.
func TestEarlierVersionRefundRecords(t *testing.T) {
	ctx := context.Background()
	c, prefix, _, s := openEarlierVersion(t)

	// recordTTL is the ttl payments writes every refund record with, as
	// the earlier version did (its records' until is 400 days after their
	// write).
	const recordTTL = 400 * 24 * time.Hour
	type record struct {
		Proposal     store.RefundProposal `json:"proposal"`
		OrderVersion int64                `json:"order_version"`
	}
	read := func(no string) record {
		t.Helper()
		b, err := s.GetExchange(ctx, store.RefundRecordKey(no))
		if err != nil {
			t.Fatalf("refund record of %s: %v", no, err)
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("refund record of %s: %v", no, err)
		}
		return r
	}

	// The refunding order's refund, recorded by the earlier version.
	const refunding, refundingID = "PG261203132231X0FoTrcASo0TlQ", "rf_pzHiP3nmyLRQC5WJVAkaJeDG"
	if r := read(refunding); r.Proposal.RefundID != refundingID || r.OrderVersion != 4 {
		t.Fatalf("earlier version's record of %s: %s at version %d; want %s at 4", refunding, r.Proposal.RefundID, r.OrderVersion, refundingID)
	}
	o, err := s.GetOrder(ctx, refunding)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := json.Marshal(record{Proposal: store.RefundProposal{RefundID: "rf_stale", OrderNo: refunding}, OrderVersion: o.Version - 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutRefundRecord(ctx, refunding, o.Version-1, stale, recordTTL); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("record at a version the order left: %v; want ErrConflict", err)
	}
	if r := read(refunding); r.Proposal.RefundID != refundingID {
		t.Fatalf("after a refused write, record of %s names %s; want the earlier version's %s", refunding, r.Proposal.RefundID, refundingID)
	}
	now, err := json.Marshal(record{Proposal: store.RefundProposal{RefundID: "rf_now", OrderNo: refunding}, OrderVersion: o.Version})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutRefundRecord(ctx, refunding, o.Version, now, recordTTL); err != nil {
		t.Fatalf("record at the order's version: %v", err)
	}
	if r := read(refunding); r.Proposal.RefundID != "rf_now" || r.OrderVersion != o.Version {
		t.Errorf("record of %s after this version wrote one: %s at %d; want rf_now at %d", refunding, r.Proposal.RefundID, r.OrderVersion, o.Version)
	}

	// The partially refunded order's settled refund, then one this
	// version's confirmation records unconditionally.
	const settled = "PG261203132230tf3Zf8POhxu1yl"
	if r := read(settled); r.Proposal.RefundID != "rf_XuT3ZlbdbMIklZZykk0r9DYw" || r.OrderVersion != 4 {
		t.Fatalf("earlier version's record of %s: %s at version %d", settled, r.Proposal.RefundID, r.OrderVersion)
	}
	next, err := json.Marshal(record{Proposal: store.RefundProposal{RefundID: "rf_next", OrderNo: settled}, OrderVersion: 6})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutExchange(ctx, store.RefundRecordKey(settled), next, recordTTL); err != nil {
		t.Fatal(err)
	}
	if r := read(settled); r.Proposal.RefundID != "rf_next" {
		t.Errorf("record of %s after PutExchange: %s; want rf_next", settled, r.Proposal.RefundID)
	}

	// During the rolling upgrade a replica of the earlier version records
	// a refund after that, where it keeps records: read as the later.
	until, err := c.HGet(ctx, prefix+"{o:"+settled+"}:rf", "until").Int64()
	if err != nil {
		t.Fatal(err)
	}
	older, err := json.Marshal(record{Proposal: store.RefundProposal{RefundID: "rf_older_replica", OrderNo: settled}, OrderVersion: 8})
	if err != nil {
		t.Fatal(err)
	}
	earlierRecordWrite(t, c, prefix, settled, older, until+1000)
	if r := read(settled); r.Proposal.RefundID != "rf_older_replica" {
		t.Errorf("record of %s after an earlier version's replica wrote one: %s; want rf_older_replica", settled, r.Proposal.RefundID)
	}
}
