package redis

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// lossyConn loses the reply to the first command it writes that holds the
// armed bytes (a script's SHA): it lets Redis run the command, reads and
// drops the reply, and reports the connection cut. go-redis then re-sends the
// command on a fresh connection, as it does after a timeout or a failover's
// cut. lost, when set, runs once the reply is dropped and before the cut is
// reported: what another replica does between a run and its re-send.
type lossyConn struct {
	net.Conn
	arm  *atomic.Pointer[[]byte]
	lost func()
	lose bool
}

func (c *lossyConn) Write(p []byte) (int, error) {
	if a := c.arm.Load(); a != nil && bytes.Contains(p, *a) && c.arm.CompareAndSwap(a, nil) {
		c.lose = true
	}
	return c.Conn.Write(p)
}

func (c *lossyConn) Read(p []byte) (int, error) {
	if c.lose {
		c.lose = false
		if _, err := c.Conn.Read(make([]byte, 64<<10)); err != nil {
			return 0, err
		}
		if c.lost != nil {
			c.lost()
		}
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// TestMoneyWriteWithALostReply: a money write whose reply is lost and that
// go-redis re-sends is reported as the write it was, not as a conflict, a
// taken number, a used proposal or a seen notification, and its outbox
// events come due. Counters and tallies count the call once: an announcement
// is still a first time, a conversation's cost is neither doubled nor lost.
func TestMoneyWriteWithALostReply(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		script func(*scripts) *goredis.Script
		setup  func(t *testing.T, s *Store)
		run    func(t *testing.T, s *Store)
	}{
		{"create order", func(sc *scripts) *goredis.Script { return sc.createOrder }, nil,
			func(t *testing.T, s *Store) {
				o := storetest.NewOrder("LR-1", "bot", "u1", time.Now())
				if err := s.CreateOrder(ctx, o, store.Event{ID: "evt-created", Kind: "audit", Payload: []byte(`{}`)}); err != nil {
					t.Fatalf("CreateOrder: %v", err)
				}
				dueOnce(t, s, "evt-created")
			}},
		{"update order", func(sc *scripts) *goredis.Script { return sc.updateOrder },
			func(t *testing.T, s *Store) {
				if err := s.CreateOrder(ctx, storetest.NewOrder("LR-2", "bot", "u1", time.Now())); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, s *Store) {
				cur, err := s.GetOrder(ctx, "LR-2")
				if err != nil {
					t.Fatal(err)
				}
				paid := *cur
				paid.Status = store.StatusPaid
				if err := s.UpdateOrder(ctx, &paid, store.StatusAwaitingPayment, store.Event{ID: "evt-paid", Kind: "webhook", Payload: []byte(`{}`)}); err != nil {
					t.Fatalf("UpdateOrder: %v", err)
				}
				if paid.Version != 2 {
					t.Errorf("version: got %d; want 2", paid.Version)
				}
				dueOnce(t, s, "evt-paid")
			}},
		{"put refund proposal", func(sc *scripts) *goredis.Script { return sc.putRefund }, nil,
			func(t *testing.T, s *Store) {
				p := &store.RefundProposal{RefundID: "rf-lr-put", OrderNo: "LR-8", Client: "bot", User: "u1", AmountFen: 100, OutRefundNo: "R-lr-put"}
				if err := s.PutRefundProposal(ctx, p, time.Hour, store.Event{ID: "evt-proposed", Kind: "audit", Payload: []byte(`{}`)}); err != nil {
					t.Fatalf("PutRefundProposal: %v; want the write it was, not a taken id", err)
				}
				if _, err := s.GetRefundProposal(ctx, "rf-lr-put"); err != nil {
					t.Errorf("GetRefundProposal: %v", err)
				}
				dueOnce(t, s, "evt-proposed")
			}},
		{"consume refund proposal", func(sc *scripts) *goredis.Script { return sc.finishRefund },
			func(t *testing.T, s *Store) {
				p := &store.RefundProposal{RefundID: "rf-lr", OrderNo: "LR-3", Client: "bot", User: "u1", AmountFen: 100, OutRefundNo: "R-lr"}
				if err := s.PutRefundProposal(ctx, p, time.Hour); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, s *Store) {
				p, err := s.ConsumeRefundProposal(ctx, "rf-lr", "u1", store.Event{ID: "evt-confirmed", Kind: "audit", Payload: []byte(`{}`)})
				if err != nil || p.RefundID != "rf-lr" {
					t.Fatalf("ConsumeRefundProposal: %+v, %v", p, err)
				}
				if _, err := s.ConsumeRefundProposal(ctx, "rf-lr", "u1"); !errors.Is(err, store.ErrGone) {
					t.Errorf("a second confirmation: got %v; want ErrGone", err)
				}
				// The re-sent run answers as the first did and enqueues
				// nothing more: the confirmation's event is queued once.
				dueOnce(t, s, "evt-confirmed")
				key := store.ProposalEventKey("rf-lr")
				if err := s.AckEvent(ctx, key, "evt-confirmed"); err != nil {
					t.Fatal(err)
				}
				due, err := s.DueEvents(ctx, time.Now().Add(time.Hour), 100)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range due {
					if e.Key == key {
						t.Errorf("after the ack, %s is due on %s: the re-sent consumption enqueued its event twice", e.ID, key)
					}
				}
			}},
		{"enqueue events once", func(sc *scripts) *goredis.Script { return sc.enqueueOnceAll }, nil,
			func(t *testing.T, s *Store) {
				// A webhook resend's events and their audit record: the
				// re-sent run must answer as the run that queued them did,
				// none pending, or the operator is told they were already
				// waiting and that this resend queued nothing.
				ev := func(id, kind string) store.Event {
					return store.Event{ID: id, Kind: kind, Key: "LR-13", Payload: []byte(`{}`)}
				}
				pending, err := s.EnqueueEventsOnce(ctx, []store.Event{ev("evt-resent", "webhook")}, ev("evt-resend-rec", "audit"))
				if err != nil || len(pending) != 0 {
					t.Fatalf("EnqueueEventsOnce: pending %v, %v; want none (this call queued them)", pending, err)
				}
				dueOnce(t, s, "evt-resent")
				if pending, err := s.EnqueueEventsOnce(ctx, []store.Event{ev("evt-resent", "webhook")}, ev("evt-resend-rec2", "audit")); err != nil || len(pending) != 1 || pending[0] != "evt-resent" {
					t.Errorf("a second resend: pending %v, %v; want [evt-resent]", pending, err)
				}
				stats, err := s.OutboxStats(ctx)
				if err != nil || stats.Pending != 2 {
					t.Errorf("pending: %d, %v; want 2 (the event and its record, once)", stats.Pending, err)
				}
			}},
		{"enqueue events", func(sc *scripts) *goredis.Script { return sc.enqueue }, nil,
			func(t *testing.T, s *Store) {
				// An erasure's audit record (audit.Worker.Erase): queued
				// once, whatever go-redis re-sends.
				ev := store.Event{ID: "evt-erased", Kind: "audit", Key: "erasure:bot:u1", Payload: []byte(`{}`)}
				if err := s.EnqueueEvents(ctx, ev); err != nil {
					t.Fatalf("EnqueueEvents: %v", err)
				}
				stats, err := s.OutboxStats(ctx)
				if err != nil || stats.Pending != 1 {
					t.Errorf("pending: %d, %v; want 1 (the event, once)", stats.Pending, err)
				}
			}},
		{"seen notification", func(sc *scripts) *goredis.Script { return sc.seen }, nil,
			func(t *testing.T, s *Store) {
				first, err := s.SeenNotification(ctx, "note-lr", time.Hour)
				if err != nil || !first {
					t.Fatalf("SeenNotification: first %v, %v; want true", first, err)
				}
				if again, err := s.SeenNotification(ctx, "note-lr", time.Hour); err != nil || again {
					t.Errorf("the notification again: first %v, %v; want false", again, err)
				}
			}},
		{"claim purchase", func(sc *scripts) *goredis.Script { return sc.claim }, nil,
			func(t *testing.T, s *Store) {
				c, created, err := s.ClaimPurchase(ctx, "claim-lr", "LR-5", time.Minute)
				if err != nil || !created || c.OrderNo != "LR-5" {
					t.Fatalf("ClaimPurchase: %+v created %v, %v; want LR-5 created", c, created, err)
				}
				if c2, created, err := s.ClaimPurchase(ctx, "claim-lr", "LR-6", time.Minute); err != nil || created || c2.OrderNo != "LR-5" {
					t.Errorf("a second claim: %+v created %v, %v; want LR-5, not created", c2, created, err)
				}
			}},
		{"advance claim", func(sc *scripts) *goredis.Script { return sc.claim },
			func(t *testing.T, s *Store) {
				if _, _, err := s.ClaimPurchase(ctx, "claim-lr-adv", "LR-12", time.Minute); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, s *Store) {
				// To a number already in use, as payments binds a claim to
				// an open order: the token, not the number, tells the
				// re-sent run it is the call that advanced.
				c, advanced, err := s.AdvanceClaim(ctx, "claim-lr-adv", 1, "LR-12", time.Minute)
				if err != nil || !advanced || c.OrderNo != "LR-12" || c.Generation != 2 {
					t.Fatalf("AdvanceClaim: %+v advanced %v, %v; want {LR-12 2} advanced", c, advanced, err)
				}
				if c2, advanced, err := s.AdvanceClaim(ctx, "claim-lr-adv", 1, "LR-12", time.Minute); err != nil || advanced || c2.Generation != 2 {
					t.Errorf("a stale advance: %+v advanced %v, %v; want {LR-12 2}, not advanced", c2, advanced, err)
				}
			}},
		{"claim announcement", func(sc *scripts) *goredis.Script { return sc.announce }, nil,
			func(t *testing.T, s *Store) {
				if first, err := s.ClaimAnnouncement(ctx, "bot", "u1", "announced:", "LR-11", time.Hour); err != nil || !first {
					t.Fatalf("ClaimAnnouncement: %v, %v; want first (the re-sent run is the same claim)", first, err)
				}
				if again, err := s.ClaimAnnouncement(ctx, "bot", "u1", "announced:", "LR-11", time.Hour); err != nil || again {
					t.Errorf("the next claim: %v, %v; want not first", again, err)
				}
			}},
		{"append audit", func(sc *scripts) *goredis.Script { return sc.appendAudit }, nil,
			func(t *testing.T, s *Store) {
				rec := store.AuditRecord{Seq: 1, Hash: "h1", Body: []byte(`{"action":"order_created"}`)}
				if err := s.AppendAudit(ctx, rec); err != nil {
					t.Fatalf("AppendAudit: %v; want the append it was, not a conflict", err)
				}
				if err := s.AppendAudit(ctx, rec); !errors.Is(err, store.ErrConflict) {
					t.Errorf("the same record appended again: %v; want ErrConflict", err)
				}
				if h, err := s.AuditHead(ctx); err != nil || h != (store.AuditHead{Seq: 1, Hash: "h1"}) {
					t.Errorf("AuditHead: %+v, %v; want {1 h1}", h, err)
				}
			}},
		{"append audit batch", func(sc *scripts) *goredis.Script { return sc.appendBatch }, nil,
			func(t *testing.T, s *Store) {
				recs := []store.AuditRecord{
					{Seq: 1, Hash: "h1", Body: []byte(`{"action":"order_created"}`)},
					{Seq: 2, PrevHash: "h1", Hash: "h2", Body: []byte(`{"action":"order_paid"}`)},
				}
				if err := s.AppendAuditBatch(ctx, recs); err != nil {
					t.Fatalf("AppendAuditBatch: %v; want the append it was, not a conflict", err)
				}
				if err := s.AppendAuditBatch(ctx, recs); !errors.Is(err, store.ErrConflict) {
					t.Errorf("the same batch appended again: %v; want ErrConflict", err)
				}
				if h, err := s.AuditHead(ctx); err != nil || h != (store.AuditHead{Seq: 2, Hash: "h2"}) {
					t.Errorf("AuditHead: %+v, %v; want {2 h2}", h, err)
				}
			}},
		{"erase audit text", func(sc *scripts) *goredis.Script { return sc.erase },
			func(t *testing.T, s *Store) {
				for seq := uint64(1); seq <= 2; seq++ {
					if err := s.PutAuditText(ctx, seq, "bot", "u-erase", []byte("hello"), time.Now(), time.Hour); err != nil {
						t.Fatal(err)
					}
				}
			},
			func(t *testing.T, s *Store) {
				// The count goes into the chain's erasure record and the
				// admin API's answer: the re-sent run finds the texts gone
				// and must answer as the run that erased them did.
				if n, err := s.EraseAuditText(ctx, "bot", "u-erase"); err != nil || n != 2 {
					t.Errorf("EraseAuditText: erased %d, %v; want 2", n, err)
				}
				if n, err := s.EraseAuditText(ctx, "bot", "u-erase"); err != nil || n != 0 {
					t.Errorf("a second erasure: erased %d, %v; want 0", n, err)
				}
			}},
		{"incr counter", func(sc *scripts) *goredis.Script { return sc.counter }, nil,
			func(t *testing.T, s *Store) {
				if n, err := s.IncrCounter(ctx, "announced:LR-7", time.Hour); err != nil || n != 1 {
					t.Fatalf("IncrCounter: got %d, %v; want 1 (a first time)", n, err)
				}
				if n, err := s.IncrCounter(ctx, "announced:LR-7", time.Hour); err != nil || n != 2 {
					t.Errorf("the next call: got %d, %v; want 2", n, err)
				}
			}},
		{"allow in window", func(sc *scripts) *goredis.Script { return sc.window }, nil,
			func(t *testing.T, s *Store) {
				if ok, err := s.AllowWindow(ctx, "paycalls:LR", 2, time.Minute, "LR-9"); err != nil || !ok {
					t.Fatalf("AllowWindow: %v, %v; want admitted", ok, err)
				}
				if ok, err := s.AllowWindow(ctx, "paycalls:LR", 2, time.Minute, "LR-10"); err != nil || !ok {
					t.Errorf("the second call: %v, %v; want admitted (the re-sent one counted once)", ok, err)
				}
			}},
		{"give back a count", func(sc *scripts) *goredis.Script { return sc.uncount },
			func(t *testing.T, s *Store) {
				for range 2 {
					if _, err := s.IncrCounter(ctx, "orders:LR-day", time.Hour); err != nil {
						t.Fatal(err)
					}
				}
			},
			func(t *testing.T, s *Store) {
				if err := s.DecrCounter(ctx, "orders:LR-day", "LR-8"); err != nil {
					t.Fatalf("DecrCounter: %v", err)
				}
				if n, err := s.IncrCounter(ctx, "orders:LR-day", time.Hour); err != nil || n != 2 {
					t.Errorf("the next count: got %d, %v; want 2 (one of two given back, once)", n, err)
				}
			}},
		{"add tally", func(sc *scripts) *goredis.Script { return sc.addTally },
			func(t *testing.T, s *Store) {
				if _, err := s.AddTally(ctx, "cost-lr", 5, time.Hour); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, s *Store) {
				if n, err := s.AddTally(ctx, "cost-lr", 7, time.Hour); err != nil || n != 12 {
					t.Fatalf("AddTally: got %d, %v; want 12", n, err)
				}
				if n, err := s.TakeTally(ctx, "cost-lr"); err != nil || n != 12 {
					t.Errorf("TakeTally: got %d, %v; want 12", n, err)
				}
			}},
		{"take tally", func(sc *scripts) *goredis.Script { return sc.takeTally },
			func(t *testing.T, s *Store) {
				if _, err := s.AddTally(ctx, "cost-lr2", 9, time.Hour); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, s *Store) {
				if n, err := s.TakeTally(ctx, "cost-lr2"); err != nil || n != 9 {
					t.Fatalf("TakeTally: got %d, %v; want 9", n, err)
				}
				if n, err := s.TakeTally(ctx, "cost-lr2"); err != nil || n != 0 {
					t.Errorf("a second take: got %d, %v; want 0", n, err)
				}
				if n, err := s.AddTally(ctx, "cost-lr2", 4, time.Hour); err != nil || n != 4 {
					t.Errorf("an add after the take: got %d, %v; want 4", n, err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // go-redis takes about 5 s to re-send on a new connection
			withALostReply(t, tc.script, tc.setup, tc.run)
		})
	}
}

// lostReplyReadTimeout is the read timeout of the lost-reply tests'
// clients. go-redis re-sends a command whose reply lossyConn dropped only
// once its read timed out, and its default, 5 s, was nearly all of each
// case's time. The product's default is not this one (Options.ReadTimeout).
const lostReplyReadTimeout = time.Second

// withALostReply runs setup, then run, on a store of its own prefix whose
// connection loses the reply to the first run of the script pick names
// after setup (go-redis re-sends it), and fails t unless that script ran.
func withALostReply(t *testing.T, pick func(*scripts) *goredis.Script, setup, run func(t *testing.T, s *Store)) {
	t.Helper()
	ctx := context.Background()
	var arm atomic.Pointer[[]byte]
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr, MaxRetries: 1, ReadTimeout: lostReplyReadTimeout,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &lossyConn{Conn: nc, arm: &arm}, nil
		}})
	prefix := testPrefix()
	s := newStore(c, Options{KeyPrefix: prefix, RepairInterval: -1})
	t.Cleanup(func() {
		_ = s.Close()
		dropShared(t, prefix)
	})
	sc := pick(s.sc)
	if err := sc.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(t, s)
	}
	sha := []byte(sc.Hash())
	arm.Store(&sha)
	run(t, s)
	if arm.Load() != nil {
		t.Fatal("the script never ran: no reply was lost")
	}
}

// storeLosingAReply opens a store on the shared Redis under prefix whose
// connection, once arm is called, loses the reply to the next run of the
// script pick names (go-redis re-sends it) and calls between when it does:
// another replica's write landing while the reply is on its way. lost
// reports whether a reply was lost. The four lost-reply tests with a write
// between each set this up the same way (withALostReply is the one without).
func storeLosingAReply(t *testing.T, prefix string, pick func(*scripts) *goredis.Script, between func()) (s *Store, arm func(), lost func() bool) {
	t.Helper()
	ctx := context.Background()
	var armed atomic.Pointer[[]byte]
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr, MaxRetries: 1, ReadTimeout: lostReplyReadTimeout,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &lossyConn{Conn: nc, arm: &armed, lost: between}, nil
		}})
	s = newStore(c, Options{KeyPrefix: prefix, RepairInterval: -1})
	t.Cleanup(func() { _ = s.Close() })
	sc := pick(s.sc)
	if err := sc.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	sha := []byte(sc.Hash())
	return s, func() { armed.Store(&sha) }, func() bool { return armed.Load() == nil }
}

// dueOnce asserts that the event id is due, without a repair pass.
func dueOnce(t *testing.T, s *Store, id string) {
	t.Helper()
	due, err := s.DueEvents(context.Background(), time.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range due {
		if e.ID == id {
			return
		}
	}
	t.Errorf("event %s is not due (due: %d events)", id, len(due))
}

// TestTallyStaysSmall: a conversation's tally keeps the tokens of its last
// calls only (enough to recognise a re-sent one), not one field per turn for
// the 30 days a conversation's cost is kept.
func TestTallyStaysSmall(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix()
	s := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	const turns = 1000
	for i := range turns {
		if _, err := s.AddTally(ctx, "long-chat", int64(i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
	defer c.Close()
	key := s.k.one("t", "long-chat")
	mem, err := c.MemoryUsage(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if fields := c.HLen(ctx, key).Val(); fields > 3 || mem > 4096 {
		t.Errorf("after %d turns the tally has %d fields in %d bytes; want at most 3 fields in 4 KiB", turns, fields, mem)
	}
	if n, err := s.TakeTally(ctx, "long-chat"); err != nil || n != turns*(turns-1)/2 {
		t.Errorf("TakeTally: %d, %v; want %d", n, err, turns*(turns-1)/2)
	}
}

// TestTakeTallyLostReplyWithAnAddBetween: a take whose reply is lost is
// re-sent by go-redis after a read timeout or a cut, seconds later; a turn
// of the same conversation that another replica adds meanwhile must not
// change what the re-sent take answers. The take's sum belongs to the paid
// order, the add to the next one: neither is lost, neither moves.
func TestTakeTallyLostReplyWithAnAddBetween(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix()
	t.Cleanup(func() { dropShared(t, prefix) })
	other := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	var added atomic.Bool
	addBetween := func() {
		if _, err := other.AddTally(ctx, "conv", 7, time.Hour); err != nil {
			t.Errorf("the other replica's AddTally: %v", err)
		}
		added.Store(true)
	}
	s, arm, lost := storeLosingAReply(t, prefix, func(sc *scripts) *goredis.Script { return sc.takeTally }, addBetween)
	if _, err := s.AddTally(ctx, "conv", 5, time.Hour); err != nil {
		t.Fatal(err)
	}
	arm()
	got, err := s.TakeTally(ctx, "conv")
	if !lost() || !added.Load() {
		t.Fatal("the take's reply was never lost, or no add came in between")
	}
	if err != nil || got != 5 {
		t.Errorf("the re-sent take: got %d, %v; want 5 (the sum it took, not the add made after it)", got, err)
	}
	if next, err := s.TakeTally(ctx, "conv"); err != nil || next != 7 {
		t.Errorf("the next take: got %d, %v; want 7 (the add made after the first take)", next, err)
	}
}

// TestAddTallyLostReplyWithATakeBetween: an add whose reply is lost is
// re-sent by go-redis; a take of the same conversation that another
// replica makes meanwhile (its order paid) took that add. The re-sent add
// must not count it again: it belongs to the paid order, not to the next
// one too (store.Tallies: never in both).
func TestAddTallyLostReplyWithATakeBetween(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix()
	t.Cleanup(func() { dropShared(t, prefix) })
	other := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	var took atomic.Int64
	took.Store(-1)
	takeBetween := func() {
		n, err := other.TakeTally(ctx, "conv")
		if err != nil {
			t.Errorf("the other replica's TakeTally: %v", err)
		}
		took.Store(n)
	}
	s, arm, lost := storeLosingAReply(t, prefix, func(sc *scripts) *goredis.Script { return sc.addTally }, takeBetween)
	arm()
	if _, err := s.AddTally(ctx, "conv", 5, time.Hour); err != nil {
		t.Fatalf("the re-sent add: %v", err)
	}
	if !lost() || took.Load() < 0 {
		t.Fatal("the add's reply was never lost, or no take came in between")
	}
	if n := took.Load(); n != 5 {
		t.Fatalf("the take between: got %d; want 5 (the add's first run)", n)
	}
	if next, err := s.TakeTally(ctx, "conv"); err != nil || next != 0 {
		t.Errorf("the next take: got %d, %v; want 0 (the add was taken already, its re-send counts nothing)", next, err)
	}
}

// TestAuditAppendLostReplyWithAnAppendBetween: an audit append whose reply
// is lost is re-sent by go-redis; another replica appends the next record
// meanwhile. The re-sent append finds the head past its record, and
// answered a conflict for the record it had appended: its worker counted a
// conflict (paygate_audit_append_conflicts_total) and took its record for
// another's. It answers done, as the run that appended.
func TestAuditAppendLostReplyWithAnAppendBetween(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix()
	t.Cleanup(func() { dropShared(t, prefix) })
	other := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	r1 := store.AuditRecord{Seq: 1, Hash: "h1", Body: []byte(`{"by":"this replica"}`)}
	r2 := store.AuditRecord{Seq: 2, PrevHash: "h1", Hash: "h2", Body: []byte(`{"by":"the other"}`)}
	var appended atomic.Bool
	appendBetween := func() {
		if err := other.AppendAudit(ctx, r2); err != nil {
			t.Errorf("the other replica's AppendAudit: %v", err)
		}
		appended.Store(true)
	}
	s, arm, lost := storeLosingAReply(t, prefix, func(sc *scripts) *goredis.Script { return sc.appendAudit }, appendBetween)
	arm()
	err := s.AppendAudit(ctx, r1)
	if !lost() || !appended.Load() {
		t.Fatal("the append's reply was never lost, or no append came in between")
	}
	if err != nil {
		t.Errorf("the re-sent append: %v; want done (record 1 is this call's)", err)
	}
	recs, err := s.ReadAudit(ctx, 1, 10)
	if err != nil || len(recs) != 2 || recs[0].Hash != "h1" || recs[1].Hash != "h2" {
		t.Errorf("chain: %+v, %v; want h1 then h2", recs, err)
	}
}

// TestAuditBatchLostReplyWithAnAppendBetween: a batch append whose reply is
// lost is re-sent by go-redis; another replica appends its own batch after
// it meanwhile. The re-sent run finds the call's token and answers done,
// as the run that appended, not a conflict: a conflict had the worker read
// the chain again and take its own records for another's.
func TestAuditBatchLostReplyWithAnAppendBetween(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix()
	t.Cleanup(func() { dropShared(t, prefix) })
	other := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix})
	mine := []store.AuditRecord{
		{Seq: 1, Hash: "h1", Body: []byte(`{"by":"this replica","n":1}`)},
		{Seq: 2, PrevHash: "h1", Hash: "h2", Body: []byte(`{"by":"this replica","n":2}`)},
	}
	theirs := []store.AuditRecord{
		{Seq: 3, PrevHash: "h2", Hash: "h3", Body: []byte(`{"by":"the other","n":3}`)},
		{Seq: 4, PrevHash: "h3", Hash: "h4", Body: []byte(`{"by":"the other","n":4}`)},
	}
	var appended atomic.Bool
	appendBetween := func() {
		if err := other.AppendAuditBatch(ctx, theirs); err != nil {
			t.Errorf("the other replica's AppendAuditBatch: %v", err)
		}
		appended.Store(true)
	}
	s, arm, lost := storeLosingAReply(t, prefix, func(sc *scripts) *goredis.Script { return sc.appendBatch }, appendBetween)
	arm()
	err := s.AppendAuditBatch(ctx, mine)
	if !lost() || !appended.Load() {
		t.Fatal("the batch's reply was never lost, or no append came in between")
	}
	if err != nil {
		t.Errorf("the re-sent batch: %v; want done (records 1 and 2 are this call's)", err)
	}
	recs, err := s.ReadAudit(ctx, 1, 10)
	if err != nil || len(recs) != 4 {
		t.Fatalf("chain: %d records, %v; want 4", len(recs), err)
	}
	for i, want := range []string{"h1", "h2", "h3", "h4"} {
		if recs[i].Hash != want {
			t.Errorf("record %d: hash %q; want %q (each written once, none over another)", i+1, recs[i].Hash, want)
		}
	}
	if h, err := s.AuditHead(ctx); err != nil || h != (store.AuditHead{Seq: 4, Hash: "h4"}) {
		t.Errorf("AuditHead: %+v, %v; want {4 h4}", h, err)
	}
}
