package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// buildChain appends n records through the outbox and the Worker, for users
// oAlice and oBob in turn, each with a conversation text.
func buildChain(t *testing.T, e *env, n int) []store.AuditRecord {
	t.Helper()
	st := e.store()
	for i := 1; i <= n; i++ {
		user := "oAlice"
		if i%2 == 0 {
			user = "oBob"
		}
		a := Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: user,
			OrderNo: fmt.Sprintf("PG%04d", i), SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"}
		enqueue(t, st, mustEvent(t, a, fmt.Sprintf(`[{"role":"user","content":"buy plan %d"}]`, i)))
	}
	w := newTestWorker(t, st, nil)
	if got := drainAll(t, w); got != n {
		t.Fatalf("drained %d events; want %d", got, n)
	}
	recs := readAll(t, st)
	if len(recs) != n {
		t.Fatalf("chain has %d records; want %d", len(recs), n)
	}
	return recs
}

// wantBroken checks that err names record seq.
func wantBroken(t *testing.T, err error, seq uint64, reason string) {
	t.Helper()
	t.Logf("verify: %v", err)
	var be *BrokenError
	if !errors.As(err, &be) {
		t.Fatalf("verify: got %v; want a broken chain at record %d", err, seq)
	}
	if !errors.Is(err, ErrBroken) {
		t.Errorf("errors.Is(%v, ErrBroken) = false", err)
	}
	if be.Seq != seq {
		t.Errorf("first bad record: got %d (%s); want %d", be.Seq, be.Reason, seq)
	}
	if !strings.Contains(be.Reason, reason) {
		t.Errorf("reason: got %q; want it to mention %q", be.Reason, reason)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	const n = 6
	type tc struct {
		name   string
		tamper func(e *env, recs []store.AuditRecord) *store.AuditHead // returns the published head to verify against, or nil
		seq    uint64                                                  // 0: the chain verifies
		reason string
	}
	published := func(recs []store.AuditRecord) *store.AuditHead {
		last := recs[len(recs)-1]
		return &store.AuditHead{Seq: last.Seq, Hash: last.Hash}
	}
	cases := []tc{
		{name: "untouched", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead { return nil }},
		{name: "untouched with published head", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead { return published(recs) }},
		{name: "untouched with an older published head", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			return &store.AuditHead{Seq: recs[2].Seq, Hash: recs[2].Hash}
		}},
		{name: "body edited", seq: 3, reason: "does not match its body", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			r := recs[2]
			r.Body = []byte(strings.Replace(string(r.Body), `"amount_fen":4999`, `"amount_fen":1`, 1))
			if string(r.Body) == string(recs[2].Body) {
				t.Fatal("edit did not change the body")
			}
			e.rawPut(3, r)
			return nil
		}},
		{name: "body edited and rehashed", seq: 4, reason: "previous hash does not match record 3", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			r := recs[2]
			r.Body = []byte(strings.Replace(string(r.Body), `"amount_fen":4999`, `"amount_fen":1`, 1))
			r.Hash = Hash(r.Body)
			e.rawPut(3, r)
			return nil
		}},
		{name: "user field changed outside the body", seq: 2, reason: "user differs", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			r := recs[1]
			r.User = "oMallory"
			e.rawPut(2, r)
			return nil
		}},
		{name: "record deleted from the middle", seq: 3, reason: "", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			e.rawDelete(3)
			return nil
		}},
		{name: "first record deleted", seq: 1, reason: "", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			e.rawDelete(1)
			return nil
		}},
		{name: "last record deleted, head kept", seq: n, reason: "missing", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			e.rawDelete(n)
			return nil
		}},
		{name: "two records swapped", seq: 2, reason: "", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			e.rawPut(2, recs[4])
			e.rawPut(5, recs[1])
			return nil
		}},
		{name: "adjacent records swapped", seq: 3, reason: "", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			e.rawPut(3, recs[3])
			e.rawPut(4, recs[2])
			return nil
		}},
		{name: "two records swapped and renumbered", seq: 2, reason: "previous hash", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			a, b := recs[4], recs[1]
			a.Seq, b.Seq = 2, 5
			e.rawPut(2, a)
			e.rawPut(5, b)
			return nil
		}},
		{name: "record inserted, the later ones moved up, head moved", seq: 4, reason: "missing or moved", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			forged, err := Seal(store.AuditHead{Seq: recs[1].Seq, Hash: recs[1].Hash}, Record{EventID: "evt_forged", AppendedAt: time.Now(),
				Action: Action{Time: time.Now(), Name: "order.created", User: "oBob", AmountFen: 1}})
			if err != nil {
				t.Fatal(err)
			}
			for i := n; i >= 3; i-- {
				e.rawPut(uint64(i+1), recs[i-1])
			}
			e.rawPut(3, forged)
			e.rawSetHead(store.AuditHead{Seq: n + 1, Hash: recs[n-1].Hash})
			return nil
		}},
		{name: "record inserted, the later ones resealed, published head given", seq: n, reason: "published head", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			pub := published(recs)
			h := store.AuditHead{Seq: recs[1].Seq, Hash: recs[1].Hash}
			bodies := []Record{{EventID: "evt_forged", AppendedAt: time.Now(), Action: Action{Time: time.Now(), Name: "order.created", User: "oBob", AmountFen: 1}}}
			for _, r := range recs[2:] {
				b, err := Decode(r.Body)
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, b)
			}
			// The texts move with their records, as an editor who knows
			// they are kept by record number would move them.
			var texts [][]byte
			for _, r := range recs[2:] {
				text, err := e.store().GetAuditText(context.Background(), r.Seq)
				if err != nil {
					t.Fatal(err)
				}
				texts = append(texts, text)
			}
			for seq := uint64(3); seq <= n; seq++ {
				e.rawDeleteText(seq)
			}
			for i, b := range bodies {
				r, err := Seal(h, b)
				if err != nil {
					t.Fatal(err)
				}
				e.rawPut(r.Seq, r)
				if i > 0 {
					if err := e.store().PutAuditText(context.Background(), r.Seq, b.Client, b.User, texts[i-1], time.Now(), time.Hour); err != nil {
						t.Fatal(err)
					}
				}
				h = store.AuditHead{Seq: r.Seq, Hash: r.Hash}
			}
			e.rawSetHead(h)
			return pub
		}},
		{name: "cut from the end, head rewound, published head given", seq: n - 1, reason: "cut from the end", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			pub := published(recs)
			e.rawDelete(n)
			e.rawDelete(n - 1)
			e.rawSetHead(store.AuditHead{Seq: recs[n-3].Seq, Hash: recs[n-3].Hash})
			return pub
		}},
		{name: "record added beyond the head", seq: n + 1, reason: "beyond the store's head", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			forged, err := Seal(store.AuditHead{Seq: recs[n-1].Seq, Hash: recs[n-1].Hash}, Record{EventID: "evt_forged", AppendedAt: time.Now(),
				Action: Action{Time: time.Now(), Name: "order.created", User: "oBob", AmountFen: 1}})
			if err != nil {
				t.Fatal(err)
			}
			e.rawPut(n+1, forged)
			return nil
		}},
		{name: "end replaced by a new record, published head given", seq: n, reason: "published head", tamper: func(e *env, recs []store.AuditRecord) *store.AuditHead {
			pub := published(recs)
			e.rawDelete(n)
			e.rawSetHead(store.AuditHead{Seq: recs[n-2].Seq, Hash: recs[n-2].Hash})
			forged, err := Seal(store.AuditHead{Seq: recs[n-2].Seq, Hash: recs[n-2].Hash}, Record{EventID: "evt_forged", AppendedAt: time.Now(),
				Action: Action{Time: time.Now(), Name: "order.created", User: "oBob", AmountFen: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.store().AppendAudit(context.Background(), forged); err != nil {
				t.Fatal(err)
			}
			return pub
		}},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, driver)
					recs := buildChain(t, e, n)
					head := c.tamper(e, recs)
					res, err := Verify(context.Background(), e.store(), VerifyOptions{Head: head, Texts: true, PageSize: 4})
					if c.seq == 0 {
						if err != nil {
							t.Fatalf("verify: %v", err)
						}
						if res.Records != n || res.Head != res.StoreHead || res.TextsChecked != n {
							t.Errorf("result: got %+v; want %d records, head = store head, %d texts", res, n, n)
						}
						return
					}
					wantBroken(t, err, c.seq, c.reason)
				})
			}
		})
	}
}

// TestVerifyCutWithoutPublishedHead documents why the head is published: a
// cut from the end with the store's head rewound verifies on its own, and
// only the published head catches it.
func TestVerifyCutWithoutPublishedHead(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			recs := buildChain(t, e, 4)
			e.rawDelete(4)
			e.rawSetHead(store.AuditHead{Seq: 3, Hash: recs[2].Hash})
			res, err := Verify(context.Background(), e.store(), VerifyOptions{})
			if err != nil || res.Records != 3 {
				t.Fatalf("verify without head: got %+v %v; want 3 consistent records", res, err)
			}
			_, err = Verify(context.Background(), e.store(), VerifyOptions{Head: &store.AuditHead{Seq: 4, Hash: recs[3].Hash}})
			wantBroken(t, err, 4, "cut from the end")
		})
	}
}

// appendingStore appends a record through the Worker, as another replica
// would, inside the first ReadAudit that when picks, after its read.
type appendingStore struct {
	testStore
	t        *testing.T
	w        *Worker
	when     func(from uint64, got int) bool
	appended bool
}

func (a *appendingStore) ReadAudit(ctx context.Context, from uint64, limit int) ([]store.AuditRecord, error) {
	recs, err := a.testStore.ReadAudit(ctx, from, limit)
	if err == nil && !a.appended && a.when(from, len(recs)) {
		a.appended = true
		enqueue(a.t, a.testStore, mustEvent(a.t, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oLive",
			OrderNo: "PGLIVE", AmountFen: 100}, `[{"role":"user","content":"buy"}]`))
		if got := drainAll(a.t, a.w); got != 1 {
			a.t.Fatalf("appended %d records during the verification; want 1", got)
		}
	}
	return recs, err
}

// TestVerifyWhileAppending: on Redis, paygate audit verify runs against the
// live store. It read the store's head after walking, so a record another
// replica appended after the walk's last read was reported as "missing: the
// chain ends at record 50 but the store's head is record 51". The walk now
// goes up to the head read before it; a record appended at any point of
// the verification is the next one's.
func TestVerifyWhileAppending(t *testing.T) {
	const n = 50
	cases := []struct {
		name string
		when func(from uint64, got int) bool
	}{
		{name: "after the walk's last read", when: func(_ uint64, got int) bool { return got == 0 }},
		{name: "during the walk", when: func(from uint64, _ int) bool { return from == 1 }},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, driver)
					recs := buildChain(t, e, n)
					st := &appendingStore{testStore: e.store(), t: t, w: newTestWorker(t, e.store(), nil), when: c.when}
					res, err := Verify(context.Background(), st, VerifyOptions{PageSize: 7, Texts: true})
					if err != nil || !st.appended {
						t.Fatalf("verify of an untouched chain with a record appended %s: %v (appended: %v)", c.name, err, st.appended)
					}
					if last := recs[n-1]; res.Records != n || res.Head != (store.AuditHead{Seq: last.Seq, Hash: last.Hash}) || res.Head != res.StoreHead {
						t.Errorf("result: %+v; want the %d records there were when it started", res, n)
					}
					if res, err := Verify(context.Background(), e.store(), VerifyOptions{}); err != nil || res.Records != n+1 {
						t.Errorf("next verification: %+v %v; want %d records", res, err, n+1)
					}
				})
			}
		})
	}
}

func TestEraseTextKeepsChainVerifiable(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			ctx := context.Background()
			recs := buildChain(t, e, 5) // oAlice: 1, 3, 5; oBob: 2, 4
			n, err := newTestWorker(t, e.store(), nil).Erase(ctx, "shop-bot", "oAlice")
			if err != nil || n != 3 {
				t.Fatalf("erase: got %d %v; want 3", n, err)
			}
			last := recs[len(recs)-1]
			res, err := Verify(ctx, e.store(), VerifyOptions{Texts: true, Head: &store.AuditHead{Seq: last.Seq, Hash: last.Hash}})
			if err != nil {
				t.Fatalf("verify after erase: %v", err)
			}
			if res.Records != 6 || res.TextsGone != 3 || res.TextsChecked != 2 {
				t.Errorf("got %+v; want 5 records and the erasure's, 3 texts gone, 2 checked", res)
			}
			// The erasure is in the chain: who, how many, no text.
			all := readAll(t, e.store())
			if er, _ := Decode(all[len(all)-1].Body); er.Name != ActionTextErased || er.Client != "shop-bot" || er.User != "oAlice" ||
				er.TextsErased != 3 || er.TextSHA256 != "" {
				t.Errorf("last record: %s; want the erasure of shop-bot's oAlice, 3 texts", all[len(all)-1].Body)
			}
			for _, seq := range []uint64{1, 3, 5} {
				if _, err := e.store().GetAuditText(ctx, seq); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("text %d after erase: got %v; want ErrNotFound", seq, err)
				}
			}
			got, err := e.store().GetAuditText(ctx, 2)
			if err != nil || string(got) != `[{"role":"user","content":"buy plan 2"}]` {
				t.Errorf("oBob's text 2: got %q %v", got, err)
			}
		})
	}
}

// TestEraseReachesTextsStillInTheOutbox: a record's text waits in the outbox
// until the worker appends the record. An erasure that runs meanwhile must not
// be undone when the worker gets to it, and a text that waited longer than
// audit.retain_text is not kept at all.
func TestEraseReachesTextsStillInTheOutbox(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			ctx := context.Background()
			st := e.store()
			action := func(user, no string, at time.Time) Action {
				return Action{Time: at, Name: "order.created", Client: "shop-bot", User: user,
					OrderNo: no, SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"}
			}
			now := time.Now()
			pending := mustEvent(t, action("oCarol", "PG0001", now), `[{"role":"user","content":"buy"}]`)
			stale := mustEvent(t, action("oDave", "PG0002", now), `[{"role":"user","content":"buy too"}]`)
			stale.CreatedAt = now.Add(-2 * time.Hour) // retain_text is an hour
			fresh := mustEvent(t, action("oDave", "PG0003", now), `[{"role":"user","content":"buy three"}]`)
			enqueue(t, st, pending, stale, fresh)

			if _, err := st.EraseAuditText(ctx, "shop-bot", "oCarol"); err != nil {
				t.Fatalf("erase: %v", err)
			}
			w := newTestWorker(t, st, nil)
			if got := drainAll(t, w); got != 3 {
				t.Fatalf("drained %d events; want 3", got)
			}
			recs := readAll(t, st)
			if len(recs) != 3 {
				t.Fatalf("chain has %d records; want 3", len(recs))
			}
			bySeq := map[string]uint64{}
			for _, r := range recs {
				b, err := Decode(r.Body)
				if err != nil {
					t.Fatal(err)
				}
				if b.TextBytes == 0 || b.TextSHA256 == "" {
					t.Errorf("record %d: the chain lost the text's hash and length", r.Seq)
				}
				bySeq[b.OrderNo] = r.Seq
			}
			for no, want := range map[string]string{"PG0001": "", "PG0002": "", "PG0003": `[{"role":"user","content":"buy three"}]`} {
				got, err := st.GetAuditText(ctx, bySeq[no])
				if want == "" {
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("%s's text: got %q %v; want ErrNotFound", no, got, err)
					}
					continue
				}
				if err != nil || string(got) != want {
					t.Errorf("%s's text: got %q %v; want %q", no, got, err, want)
				}
			}
		})
	}
}

func TestVerifyFindsChangedText(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			buildChain(t, e, 4)
			e.rawSetText(2, []byte(`[{"role":"user","content":"refund me everything"}]`))
			if _, err := Verify(context.Background(), e.store(), VerifyOptions{}); err != nil {
				t.Errorf("verify without texts: %v; want ok (the chain itself is intact)", err)
			}
			_, err := Verify(context.Background(), e.store(), VerifyOptions{Texts: true})
			wantBroken(t, err, 2, "text does not match")
		})
	}
}

// sealedBeforeExactParams are two records as an earlier version sealed them
// (sampling parameters through float64: the seed 9007199254740993 the bot
// sent is the 9007199254740992 in the body). They were hashed then.
var sealedBeforeExactParams = []string{
	`{"seq":1,"prev_hash":"","hash":"1d3b5c5a80ee6fa058e62eed6e8d7e73a3d527664ff822a6b3da9dfb3691ae08","body":"eyJhY3Rpb24iOiJvcmRlci5jcmVhdGVkIiwiYW1vdW50X2ZlbiI6NDk5OSwiYXBwZW5kZWRfYXQiOiIyMDI2LTEyLTAxVDExOjE2OjAzLjM1NzA4MzA0M1oiLCJjbGllbnQiOiJzaG9wLWJvdCIsImV2ZW50X2lkIjoiZXZ0XzcyMzhmYzk4YjVmODMwYzFlN2Y2NWRmYyIsIm1vZGVsIjoib3BlbmFpL2dwdC00byIsIm9yZGVyX25vIjoiUEcxIiwicGFyYW1zIjp7ImxvZ2l0X2JpYXMiOnsiNTAyNTYiOi0xMDB9LCJtYXhfdG9rZW5zIjoxMDAwLCJzZWVkIjo5MDA3MTk5MjU0NzQwOTkyLCJzdG9wIjpbIlxuIl0sInRlbXBlcmF0dXJlIjowLjd9LCJwcmV2X2hhc2giOiIiLCJwcm92aWRlciI6Im9wZW5yb3V0ZXIiLCJzZXEiOjEsInRleHRfYnl0ZXMiOjMzLCJ0ZXh0X3NoYTI1NiI6IjgxNDhjZWViM2U0ODkxZDIzMjc0ZWYyYThmNWFhMjlmOWJmNTQ3YTM0NmIzM2NkZjllZjE3ZDRiYzEzYmUxODQiLCJ0aW1lIjoiMjAyNi0wMy0wMVQxMDowMTowMFoiLCJ1c2VyIjoib0FsaWNlIiwidiI6MX0=","user":"oAlice"}`,
	`{"seq":2,"prev_hash":"1d3b5c5a80ee6fa058e62eed6e8d7e73a3d527664ff822a6b3da9dfb3691ae08","hash":"a197c546f0f796c1052dda711ea886eda7fcd2bfc18f0509dc57efa63ba114b3","body":"eyJhY3Rpb24iOiJvcmRlci5jcmVhdGVkIiwiYW1vdW50X2ZlbiI6NDk5OSwiYXBwZW5kZWRfYXQiOiIyMDI2LTEyLTAxVDExOjE2OjAzLjM4MDg2NDU3NFoiLCJjbGllbnQiOiJzaG9wLWJvdCIsImV2ZW50X2lkIjoiZXZ0XzUzMjU4OTBhOWVlNzc1MGRlNmFhNTY2ZCIsIm1vZGVsIjoib3BlbmFpL2dwdC00byIsIm9yZGVyX25vIjoiUEcyIiwicGFyYW1zIjp7ImxvZ2l0X2JpYXMiOnsiNTAyNTYiOi0xMDB9LCJtYXhfdG9rZW5zIjoxMDAwLCJzZWVkIjo5MDA3MTk5MjU0NzQwOTkyLCJzdG9wIjpbIlxuIl0sInRlbXBlcmF0dXJlIjowLjd9LCJwcmV2X2hhc2giOiIxZDNiNWM1YTgwZWU2ZmEwNThlNjJlZWQ2ZThkN2U3M2EzZDUyNzY2NGZmODIyYTZiM2RhOWRmYjM2OTFhZTA4IiwicHJvdmlkZXIiOiJvcGVucm91dGVyIiwic2VxIjoyLCJ0ZXh0X2J5dGVzIjozMywidGV4dF9zaGEyNTYiOiI4MTQ4Y2VlYjNlNDg5MWQyMzI3NGVmMmE4ZjVhYTI5ZjliZjU0N2EzNDZiMzNjZGY5ZWYxN2Q0YmMxM2JlMTg0IiwidGltZSI6IjIwMjYtMDMtMDFUMTA6MDI6MDBaIiwidXNlciI6Im9BbGljZSIsInYiOjF9","user":"oAlice"}`,
}

// TestRecordsSealedBeforeExactParamsStillVerify: keeping the sampling
// parameters exact changes what new records hold, not the canonical form of
// what was sealed: records written before verify unchanged, and the chain
// goes on after them.
func TestRecordsSealedBeforeExactParamsStillVerify(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			ctx := context.Background()
			for _, raw := range sealedBeforeExactParams {
				var r store.AuditRecord
				if err := json.Unmarshal([]byte(raw), &r); err != nil {
					t.Fatal(err)
				}
				if err := st.AppendAudit(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			turn := TurnFromRequest("shop-bot", "oAlice", []byte(`{"seed":9007199254740993,"temperature":0.70,"messages":[]}`), "openrouter", "openai/gpt-4o")
			ev, err := ActionEvent(Action{Name: "order.paid", User: "oAlice", OrderNo: "PG1"}, turn)
			if err != nil {
				t.Fatal(err)
			}
			enqueue(t, st, ev)
			drainAll(t, newTestWorker(t, st, nil))
			res, err := Verify(ctx, st, VerifyOptions{})
			if err != nil || res.Records != 3 {
				t.Fatalf("verify: %+v %v; want the 2 earlier records and the new one", res, err)
			}
		})
	}
}

// TestVerifyTextRemovedWithoutErasure: verify -text counted every missing
// conversation text as "erased or expired", so the text behind a money
// action could be deleted from the store silently. A missing text is now
// broken unless the chain records an erasure of its client's user after the
// record (a mark in the store alone does not do), its retention ran out, or
// its event still waits in the outbox (appended, text not kept yet).
func TestVerifyTextRemovedWithoutErasure(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		before func(e *env) // before the chain is built
		after  func(e *env) // then
		opts   VerifyOptions
		broken string // reason of record 2, or "" for a chain that verifies
		gone   int
	}{
		{name: "deleted, user never erased", after: func(e *env) { e.rawDeleteText(2) },
			broken: "though no erasure of its client's user is recorded in the chain and audit.retain_text (4320h0m0s) from the record's time"},
		{name: "deleted, retain_text given", after: func(e *env) { e.rawDeleteText(2) },
			opts: VerifyOptions{RetainText: time.Hour}, broken: "text removed without erasure"},
		{name: "deleted, user erased only before the record",
			// More than the clock skew before: an erasure covers the texts
			// said up to that long after it (Worker.keepText).
			before: func(e *env) { e.eraseAt(time.Now().Add(-2*DefaultClockSkew), "shop-bot", "oBob") },
			after:  func(e *env) { e.rawDeleteText(2) }, opts: VerifyOptions{TrustErasureMarks: true}, broken: "text removed without erasure"},
		{name: "another user erased", after: func(e *env) {
			if _, err := newTestWorker(t, e.store(), nil).Erase(ctx, "shop-bot", "oAlice"); err != nil {
				t.Fatal(err)
			}
			e.rawDeleteText(2)
		}, broken: "text removed without erasure"},
		{name: "the same user of another client erased", after: func(e *env) {
			if _, err := newTestWorker(t, e.store(), nil).Erase(ctx, "shop-other", "oBob"); err != nil {
				t.Fatal(err)
			}
			e.rawDeleteText(2)
		}, broken: "text removed without erasure"},
		{name: "user erased after the record", after: func(e *env) {
			if _, err := newTestWorker(t, e.store(), nil).Erase(ctx, "shop-bot", "oBob"); err != nil {
				t.Fatal(err)
			}
		}, gone: 2},
		// Someone who can write the store deletes texts and sets the
		// erasure mark: without the erasure in the chain, that is caught;
		// -trust-marks (for erasures by earlier versions) accepts it,
		// counted apart.
		{name: "texts and mark set in the store, no erasure record", after: func(e *env) {
			if _, err := e.store().EraseAuditText(ctx, "shop-bot", "oBob"); err != nil {
				t.Fatal(err)
			}
		}, broken: "outside the chain: an erasure by an earlier version is accepted with -trust-marks"},
		{name: "mark only, trusted", after: func(e *env) {
			if _, err := e.store().EraseAuditText(ctx, "shop-bot", "oBob"); err != nil {
				t.Fatal(err)
			}
		}, opts: VerifyOptions{TrustErasureMarks: true}, gone: 2},
		{name: "retention ran out", after: func(e *env) { e.rawDeleteText(2) }, opts: VerifyOptions{RetainText: time.Nanosecond}, gone: 1},
		{name: "retain_text 0 kept none", after: func(e *env) { e.rawDeleteText(2) }, opts: VerifyOptions{RetainText: -1}, gone: 1},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, driver)
					if c.before != nil {
						c.before(e)
					}
					buildChain(t, e, 4) // oAlice 1, 3; oBob 2, 4
					c.after(e)
					o := c.opts
					o.Texts = true
					res, err := Verify(ctx, e.store(), o)
					if c.broken != "" {
						wantBroken(t, err, 2, c.broken)
						return
					}
					if err != nil || res.TextsGone != c.gone || res.TextsChecked != 4-c.gone {
						t.Errorf("verify: %+v %v; want ok with %d texts gone", res, err, c.gone)
					}
				})
			}
		})
	}
}

// TestVerifyTextPendingInOutbox: a record appended whose text is not kept
// yet (the worker died between the two, or is between them now) has its
// event still at the head of its outbox queue; verify -text says so rather
// than calling the text removed, and the next pass of the worker keeps it.
func TestVerifyTextPendingInOutbox(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			ctx := context.Background()
			enqueue(t, st, mustEvent(t, Action{Name: "order.created", User: "oAlice", OrderNo: "PG-pending", AmountFen: 4999}, `[{"role":"user","content":"buy"}]`))
			w := newTestWorker(t, st, nil)
			w.afterAppend = func(store.Event, uint64) error { return errors.New("stopped before keeping the text") }
			if _, err := w.Drain(ctx); err == nil {
				t.Fatal("drain: want the stop")
			}
			res, err := Verify(ctx, st, VerifyOptions{Texts: true})
			if err != nil || res.TextsPending != 1 || res.TextsGone != 0 {
				t.Fatalf("verify: %+v %v; want ok, 1 text pending", res, err)
			}
			// Its retry comes after a backoff; a restarted worker sees it then.
			w2 := newTestWorker(t, st, func(o *WorkerOptions) {
				o.Now = func() time.Time { return time.Now().Add(time.Hour) }
				o.RetainText = 24 * time.Hour
			})
			drainAll(t, w2)
			res, err = Verify(ctx, st, VerifyOptions{Texts: true})
			if err != nil || res.TextsChecked != 1 || res.TextsPending != 0 {
				t.Errorf("verify after the worker's next pass: %+v %v; want the text checked", res, err)
			}
		})
	}
}

// TestVerifyTextPendingBehindManyOutboxKeys: verify -text looked for a
// pending text's event among OutboxStats.Heads, which stops at
// store.MaxListLimit keys, so with that many other keys pending (webhook
// deliveries left while the merchant was down, other orders' audit events
// waiting for a retry) an honest pending text was reported as removed
// without erasure. The event is now looked up on its own queue.
func TestVerifyTextPendingBehindManyOutboxKeys(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			ctx := context.Background()
			now := time.Now()
			stuckDeliveries(t, st, now)
			if driver == "embedded" {
				// The embedded outbox lists heads in key order (length
				// first): these keys come before the record's.
				evs := make([]store.Event, 0, store.MaxListLimit)
				for i := range store.MaxListLimit {
					ev := mustEvent(t, Action{Name: "order.created", Client: "shop-bot", User: "oX", OrderNo: fmt.Sprintf("PA%04d", i), AmountFen: 1}, "")
					ev.NextAt = now.Add(time.Hour)
					evs = append(evs, ev)
				}
				enqueue(t, st, evs...)
			}
			enqueue(t, st, mustEvent(t, Action{Name: "order.created", Client: "shop-bot", User: "oAlice", OrderNo: "PG-pending", AmountFen: 4999}, `[{"role":"user","content":"buy"}]`))
			w := newTestWorker(t, st, nil)
			w.afterAppend = func(store.Event, uint64) error { return errors.New("stopped before keeping the text") }
			if _, err := w.Drain(ctx); err == nil {
				t.Fatal("drain: want the stop")
			}
			res, err := Verify(ctx, st, VerifyOptions{Texts: true})
			if err != nil || res.TextsPending != 1 {
				t.Fatalf("verify -text: %+v %v; want ok, 1 text pending (its event still waits in the outbox)", res, err)
			}
		})
	}
}

// countingOutbox counts the outbox reads Verify makes.
type countingOutbox struct {
	testStore
	stats, heads atomic.Int64
}

func (c *countingOutbox) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	c.stats.Add(1)
	return c.testStore.OutboxStats(ctx)
}

func (c *countingOutbox) OutboxHeads(ctx context.Context, prefixes ...string) ([]store.Event, error) {
	c.heads.Add(1)
	return c.testStore.OutboxHeads(ctx, prefixes...)
}

// TestVerifyTextsReadTheOutboxOnce: verify -text read the whole outbox
// (OutboxStats) once per missing text to see whether its event was pending,
// so after one user's 2000 texts were erased, with 1000 webhook deliveries
// stuck, it took minutes on Redis. Texts a recorded erasure covers now need
// no outbox read, and the others are looked up together in one.
func TestVerifyTextsReadTheOutboxOnce(t *testing.T) {
	const n = 20
	cases := []struct {
		name          string
		afterAppend   func(store.Event, uint64) error
		after         func(t *testing.T, w *Worker)
		gone, pending int
		reads         int64
	}{
		{name: "one user's texts erased", after: func(t *testing.T, w *Worker) {
			if _, err := w.Erase(context.Background(), "shop-bot", "oHeavy"); err != nil {
				t.Fatal(err)
			}
		}, gone: n},
		{name: "texts pending on many orders",
			afterAppend: func(store.Event, uint64) error { return errors.New("stopped before keeping the text") },
			pending:     n, reads: 1},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, driver)
					st := &countingOutbox{testStore: e.store()}
					evs := make([]store.Event, 0, n)
					for i := range n {
						evs = append(evs, mustEvent(t, Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oHeavy",
							OrderNo: fmt.Sprintf("PGH%05d", i), AmountFen: 1}, `[{"role":"user","content":"buy"}]`))
					}
					enqueue(t, st, evs...)
					w := newTestWorker(t, st.testStore, nil)
					w.afterAppend = c.afterAppend
					_, _ = w.Drain(context.Background()) // stopped by afterAppend, if set
					if c.after != nil {
						c.after(t, w)
					}
					res, err := Verify(context.Background(), st, VerifyOptions{Texts: true})
					if err != nil || res.TextsGone != c.gone || res.TextsPending != c.pending {
						t.Fatalf("verify -text: %+v %v; want ok, %d texts gone, %d pending", res, err, c.gone, c.pending)
					}
					if reads := st.stats.Load() + st.heads.Load(); reads != c.reads {
						t.Errorf("verify -text over %d missing texts read the outbox %d times (OutboxStats %d, OutboxHeads %d); want %d",
							n, reads, st.stats.Load(), st.heads.Load(), c.reads)
					}
				})
			}
		})
	}
}
