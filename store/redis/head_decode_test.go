package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestOutboxScriptsReadAHeadWithoutDecodingIt: the scripts that read or
// acknowledge an outbox head (luaObState's score of it, the ack's id check,
// the enqueue's look for ids already queued) need its id, next_ms and
// created_ms alone, which the element paygate writes opens with, but
// cjson-decoded the whole element: an audit event of a 4 MB conversation
// is 7.1 MB queued, 15-20 ms of the server a decode, each read and each
// ack, every replica blocked meanwhile. They read those fields from the
// element's opening and decode only an element that does not open as
// paygate writes it (one a script re-encoded: a retry, a lease).
//
// Proved without a clock: the head's event carries a value nested deeper
// than cjson decodes (1,000 levels) and Go does (10,000). A script that
// decodes the head fails; one that reads its opening reads it, and the
// event is handed out and acknowledged.
func TestOutboxScriptsReadAHeadWithoutDecodingIt(t *testing.T) {
	requireSharedRedis(t)
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{sharedAddr}})
	ctx := context.Background()
	if err := s.EnqueueEvents(ctx, store.Event{ID: "deep-1", Kind: "audit", Key: "DEEP-1", Payload: []byte(`{"a":1}`)}); err != nil {
		t.Fatalf("EnqueueEvents: %v", err)
	}
	ob := s.k.queueKeys("DEEP-1")[0]
	raw, err := s.c.LIndex(ctx, ob, 0).Result()
	if err != nil {
		t.Fatalf("LINDEX: %v", err)
	}
	const depth = 1500
	deep := `,"deep":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}`
	if !strings.HasSuffix(raw, "}}") {
		t.Fatalf("element %q does not end with its event", raw)
	}
	if err := s.c.LSet(ctx, ob, 0, raw[:len(raw)-2]+deep).Err(); err != nil {
		t.Fatalf("LSET: %v", err)
	}
	evs, err := s.DueEvents(ctx, time.Now().Add(time.Second), store.MaxListLimit, "audit")
	if err != nil {
		t.Fatalf("DueEvents of a head no script can decode: %v", err)
	}
	if len(evs) != 1 || evs[0].ID != "deep-1" {
		t.Fatalf("due: %d events; want deep-1", len(evs))
	}
	if err := s.AckEvent(ctx, "DEEP-1", "deep-1"); err != nil {
		t.Fatalf("AckEvent of a head no script can decode: %v", err)
	}
	if n, err := s.c.LLen(ctx, ob).Result(); err != nil || n != 0 {
		t.Fatalf("after the ack the queue holds %d (%v); want none", n, err)
	}
}

// TestOutboxHeadReadSeesALease: a script re-encodes an element with cjson
// when it leases it (a claim), and cjson orders the keys as its Lua tables
// do: on Redis 7.0 next_ms comes first, but another build may write the
// very opening paygate writes, with "lease" after it. obhead's reading of
// the opening would then miss the lease, and a claim retried with its own
// lease (its reply lost) would find the event not due instead of handing
// it back. An element with a lease anywhere is decoded whole.
func TestOutboxHeadReadSeesALease(t *testing.T) {
	requireSharedRedis(t)
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{sharedAddr}})
	ctx := context.Background()
	read := goredis.NewScript(luaObState + `
local e = obhead(ARGV[1])
return {e.id, e.lease or false}
`)
	for _, raw := range []string{
		`{"id":"evt_1","next_ms":99,"created_ms":12,"ev":{"id":"evt_1","kind":"webhook","payload":"QUJD"},"lease":"L-1"}`,
		`{"id":"evt_1","next_ms":99,"created_ms":12,"ev":{"id":"evt_1","kind":"webhook","payload":"QUJD"},"lease":"L-1","x":1}`,
		`{"next_ms":99,"created_ms":12,"lease":"L-1","ev":{"id":"evt_1","kind":"webhook","payload":"QUJD"},"id":"evt_1"}`,
	} {
		got, err := read.Run(ctx, s.c, nil, raw).Slice()
		if err != nil {
			t.Fatalf("obhead(%s): %v", raw, err)
		}
		if len(got) != 2 || got[0] != "evt_1" || got[1] != "L-1" {
			t.Errorf("obhead(%s) = %v; want id evt_1 and lease L-1", raw, got)
		}
	}
}
