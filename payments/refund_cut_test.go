package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// cutStore is a replica's store as seen by a process that dies in the
// middle of a refund confirmation: at cutBeforeConsume it dies as it is
// about to spend the user's confirmation, at cutBeforeRecord once it has
// spent it and before the refund is recorded. From then on nothing it asks
// of the store gets done, as nothing a dead process asks does.
type cutStore struct {
	payments.Store
	at   cutPoint
	dead atomic.Bool
}

type cutPoint int

const (
	cutBeforeConsume cutPoint = iota
	cutBeforeRecord
)

var errCut = fmt.Errorf("the replica died: %w", store.ErrUnavailable)

func (c *cutStore) ConsumeRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	if c.at == cutBeforeConsume {
		c.dead.Store(true)
	}
	if c.dead.Load() {
		return nil, errCut
	}
	return c.Store.ConsumeRefundProposal(ctx, id, user, events...)
}

func (c *cutStore) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if c.at == cutBeforeRecord {
		c.dead.Store(true)
	}
	if c.dead.Load() {
		return errCut
	}
	return c.Store.PutExchange(ctx, key, data, ttl)
}

func (c *cutStore) PutRefundRecord(ctx context.Context, orderNo string, version int64, data []byte, ttl time.Duration) error {
	if c.at == cutBeforeRecord {
		c.dead.Store(true)
	}
	if c.dead.Load() {
		return errCut
	}
	return c.Store.PutRefundRecord(ctx, orderNo, version, data, ttl)
}

func (c *cutStore) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	if c.dead.Load() {
		return nil, errCut
	}
	return c.Store.GetOrder(ctx, no)
}

func (c *cutStore) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, events ...store.Event) error {
	if c.dead.Load() {
		return errCut
	}
	return c.Store.UpdateOrder(ctx, o, expect, events...)
}

// replicaOn is another replica of e's service, on st (e's store as that
// replica's process sees it), with hooks applied to its options.
func replicaOn(t *testing.T, e *env, st payments.Store, hooks ...func(*payments.Options)) *payments.Service {
	t.Helper()
	opts := payments.Options{
		Store: st, Backend: e.client, Notify: e.client.NotifyVerifier(), Catalog: e.catalog,
		MchID: e.sim.MchID(), AppID: e.sim.AppID(), Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: e.clock.Now,
	}
	for _, h := range hooks {
		h(&opts)
	}
	svc, err := payments.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

// spentAndCut pays an order of user's on e and proposes its whole refund,
// which a replica on e's store confirms and dies at: after spending the
// user's word, before recording the refund, so nothing went to WeChat Pay.
func spentAndCut(t *testing.T, e *env, user string) (*store.Order, *store.RefundProposal) {
	t.Helper()
	killed := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeRecord})
	o := paidOrder(t, e, user, 1)
	p := propose(t, e, o, 0)
	if _, err := killed.ConfirmRefund(context.Background(), "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("confirmation of the killed replica: %v; want it cut", err)
	}
	return o, p
}

// refundAudit drains e's outbox into the audit chain and returns the records
// of refund id, each as name/cause, sorted (a proposal's queue and its
// order's interleave either way).
func refundAudit(t *testing.T, e *env, id string) []string {
	t.Helper()
	ctx := context.Background()
	w, err := audit.NewWorker(audit.WorkerOptions{Store: e.st.(audit.Store)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Drain(ctx); err != nil {
		t.Fatalf("audit drain: %v", err)
	}
	var records []string
	for seq := uint64(1); ; {
		recs, err := e.st.(audit.Store).ReadAudit(ctx, seq, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			d, err := audit.Decode(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			if d.RefundID == id {
				records = append(records, d.Name+"/"+d.Cause)
			}
			seq = r.Seq + 1
		}
	}
	slices.Sort(records)
	return records
}

// TestReservationLeftByACutConfirmation: replica A reserves a paid order for
// the user's confirmed refund (refunding, held by the proposal) and dies
// before it records the refund, the record it always writes before asking
// WeChat Pay, so nothing was sent. What becomes of the order is what
// becomes of the proposal, on the surviving replica B:
//   - cut before the confirmation was spent, the user taps again: B goes on
//     under A's reservation and sends the refund, once however many taps
//     race (they were told "already used" while the proposal was live; the
//     others are now answered with the refund's state);
//   - cut before it was spent, the user cancels, or lets it expire: B's
//     sweep puts the order back where it was (paid, or partially_refunded
//     after an earlier refund), audited refund.aborted, no webhook, once the
//     proposal has ended (while it is live a tap could still take it, and
//     the order stays held for it); it was needs_review in both;
//   - cut after it was spent: the user's confirmation was taken (its
//     refund.confirmed is recorded, and a tap again is a repeat, answered
//     with its refund pending, never sent again), and whether the
//     confirmation that took it is still on its way to WeChat Pay cannot
//     be told at once: B's sweep leaves it to that confirmation for
//     takenGrace, past the bound of any confirmation's writes, then
//     records and sends the refund itself, under its one out_refund_no,
//     as the taps were told. It went to review with nothing sent, the
//     refund the user confirmed (and was told was on its way, and could
//     no longer cancel) never made.
func TestReservationLeftByACutConfirmation(t *testing.T) {
	cases := []struct {
		name string
		cut  cutPoint
		// settledFirst is a refund (fen) settled before the proposal.
		settledFirst int64
		// answer is the user's next step on B: "confirm" (taps, several at
		// once), "cancel", or "" (none; the proposal expires).
		answer string
		// taken is whether A spent the confirmation before it died: then
		// every tap on B is a repeat of it, answered with its refund's
		// state (pending: the order is held for it), and none sends;
		// otherwise one tap goes through and the rest are repeats.
		taken bool
		// refunded is whether the refund reaches WeChat Pay; otherwise the
		// order goes back to released.
		refunded bool
		released store.OrderStatus
		// waits: the first sweep leaves the order to the confirmation
		// that took the proposal; a sweep past takenGrace goes on.
		waits bool
		// audit is the refund's records, sorted (a proposal's queue and its
		// order's interleave either way).
		audit []string
	}{
		{
			name: "cut before the confirmation was spent, the user taps again", cut: cutBeforeConsume,
			answer: "confirm", refunded: true,
			audit: []string{"refund.confirmed/confirm", "refund.proposed/request_refund", "refund.reserved/refund", "refund.succeeded/notification"},
		},
		{
			name: "cut before the confirmation was spent, the user cancels", cut: cutBeforeConsume,
			settledFirst: 1000, answer: "cancel", released: store.StatusPartiallyRefunded,
			audit: []string{"refund.aborted/refund_aborted", "refund.cancelled/cancel", "refund.proposed/request_refund", "refund.reserved/refund"},
		},
		{
			name: "cut before the confirmation was spent, the proposal expires", cut: cutBeforeConsume,
			released: store.StatusPaid,
			audit:    []string{"refund.aborted/refund_aborted", "refund.proposed/request_refund", "refund.reserved/refund"},
		},
		{
			name: "cut after the confirmation was spent, before the refund was recorded", cut: cutBeforeRecord,
			answer: "confirm", taken: true, waits: true, refunded: true,
			audit: []string{"refund.confirmed/confirm", "refund.proposed/request_refund", "refund.reserved/refund", "refund.succeeded/notification"},
		},
	}
	for _, driver := range drivers(t) {
		for _, tc := range cases {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				var tmu sync.Mutex
				var trans []payments.Transition
				hooks := func(o *payments.Options) {
					// The merchant's webhooks are judged from the transitions
					// (webhook.Events is pure): in the outbox they would hold
					// back the order's audit events until a relay took them.
					o.Events = audit.TransitionEvents
					o.ProposalEvents = audit.ProposalEvents
					o.Committed = func(tr payments.Transition) {
						tmu.Lock()
						trans = append(trans, tr)
						tmu.Unlock()
					}
				}
				e := newEnv(t, envOptions{driver: driver, storeClock: true, service: hooks})
				ctx := context.Background()
				cut := &cutStore{Store: e.st, at: tc.cut}
				a := replicaOn(t, e, cut, hooks)
				b := e.svc

				o := paidOrder(t, e, "oUser-cut", 1) // 49.99
				if tc.settledFirst > 0 {
					first := propose(t, e, o, tc.settledFirst)
					if _, err := b.ConfirmRefund(ctx, "shop-bot", o.User, first.RefundID); err != nil {
						t.Fatal(err)
					}
					if _, err := e.sim.CompleteRefund(ctx, first.OutRefundNo); err != nil {
						t.Fatal(err)
					}
				}
				before := e.order(o.OrderNo)
				p := propose(t, e, o, 0)

				if _, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("confirmation on A: %v; want it cut short", err)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
					t.Fatalf("after A died: order %s reserved by %q; want refunding, reserved by %s", got.Status, got.RefundReservedBy, p.RefundID)
				}
				if _, found := e.sim.Refund(p.OutRefundNo); found {
					t.Fatal("A asked WeChat Pay for the refund before it died; the test means it not to")
				}

				switch tc.answer {
				case "confirm":
					const taps = 6
					errs := make([]error, taps)
					res := make([]*payments.RefundResult, taps)
					var wg sync.WaitGroup
					start := make(chan struct{})
					for i := range taps {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							res[i], errs[i] = b.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
						}()
					}
					close(start)
					wg.Wait()
					ok, repeated := 0, 0
					for i, err := range errs {
						switch {
						case err == nil && res[i].Status == payments.RefundProcessing:
							ok++
						case err == nil && res[i].Status == payments.RefundPending:
							repeated++
						default:
							t.Errorf("tap %d on B: %+v, %v", i, res[i], err)
						}
					}
					if wantOK := map[bool]int{false: 1, true: 0}[tc.taken]; ok != wantOK || repeated != taps-wantOK {
						t.Errorf("taps on B: %d went through, %d answered as repeats; want %d and %d", ok, repeated, wantOK, taps-wantOK)
					}
				case "cancel":
					if _, err := b.CancelRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
						t.Errorf("cancel on B: %v", err)
					}
				}

				// B's sweep, once the reservation is old enough to be looked at.
				e.clock.Advance(2 * time.Minute)
				if _, err := b.Sweep(ctx); err != nil {
					t.Errorf("sweep: %v", err)
				}
				if tc.waits {
					// The first sweep that sees the refund taken and not
					// recorded leaves it to the tap that took it for a
					// while, sending nothing; a later one sends it.
					if _, found := e.sim.Refund(p.OutRefundNo); found {
						t.Errorf("the first sweep sent the refund; want it left to the tap that took it")
					}
					if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
						t.Errorf("the first sweep: order %s (%s); want refunding, left to the tap that took it", got.Status, got.ReviewReason)
					}
					e.clock.Advance(2 * time.Minute)
					if _, err := b.Sweep(ctx); err != nil {
						t.Errorf("second sweep: %v", err)
					}
				}
				if tc.answer == "" {
					// The proposal is still live: a tap could still take it,
					// so the order is held for it, not put in review.
					if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
						t.Errorf("sweep while the proposal is live: order %s (%s); want refunding, held for it", got.Status, got.ReviewReason)
					}
					e.clock.Advance(p.ExpiresAt.Sub(e.clock.Now()) + 2*time.Minute)
					if _, err := b.Sweep(ctx); err != nil {
						t.Errorf("sweep after the expiry: %v", err)
					}
				}

				got := e.order(o.OrderNo)
				if tc.refunded {
					if n := e.sim.RefundCount(o.OrderNo); n != 1 {
						t.Fatalf("refunds at WeChat Pay %d; want 1 (order %s: %s)", n, got.Status, got.ReviewReason)
					}
					rf, _ := e.sim.Refund(p.OutRefundNo)
					if rf.Amount.Refund != 4999 {
						t.Errorf("refund under %s: %+v; want 4999 fen", p.OutRefundNo, rf)
					}
					if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
						t.Fatalf("refund notification: %+v %v", d, err)
					}
					if got = e.order(o.OrderNo); got.Status != store.StatusRefunded || got.RefundedFen != 4999 {
						t.Errorf("order %s refunded %d (%s); want refunded 4999", got.Status, got.RefundedFen, got.ReviewReason)
					}
				} else {
					if _, found := e.sim.Refund(p.OutRefundNo); found {
						t.Errorf("the refund reached WeChat Pay; want nothing sent")
					}
					if got.Status != tc.released || got.RefundedFen != before.RefundedFen {
						t.Errorf("order %s refunded %d (%s); want %s with %d refunded, as before the reservation",
							got.Status, got.RefundedFen, got.ReviewReason, tc.released, before.RefundedFen)
					}
					if _, err := b.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrGone) {
						t.Errorf("a tap after the proposal ended: %v; want store.ErrGone", err)
					}
				}

				if records := refundAudit(t, e, p.RefundID); !slices.Equal(records, tc.audit) {
					t.Errorf("audit of the refund %v; want %v", records, tc.audit)
				}
				tmu.Lock()
				defer tmu.Unlock()
				for _, tr := range trans {
					for _, ev := range webhook.Events(tr) {
						var env webhook.Envelope
						if err := json.Unmarshal(ev.Payload, &env); err != nil {
							t.Fatal(err)
						}
						if env.Type == webhook.TypeRefundFailed || env.Type == webhook.TypeOrderNeedsReview {
							t.Errorf("merchant told %s (%s -> %s, cause %s); nothing failed at WeChat Pay", env.Type, tr.Before.Status, tr.After.Status, tr.Cause)
						}
					}
				}
			})
		}
	}
}

// onceGetOrder runs hook before the first order read through it: what
// another replica does between a confirmation's read of its proposal and
// its read of the order; after, once that read is made: what another
// replica does between the confirmation's read of the order and its
// reservation.
type onceGetOrder struct {
	payments.Store
	once        sync.Once
	hook, after func()
}

func (s *onceGetOrder) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	first := false
	s.once.Do(func() {
		first = true
		if s.hook != nil {
			s.hook()
		}
	})
	o, err := s.Store.GetOrder(ctx, no)
	if first && s.after != nil {
		s.after()
	}
	return o, err
}

// TestLateTapAfterItsRefundEnded: the user double-taps confirm. Tap B reads
// the proposal while it is live; tap A takes it, and its refund goes out and
// ends (settled, or refused by WeChat Pay) before B reads the order. B must
// not hold the order for that refund again: with nobody to send under B's
// reservation, the sweep counted the settled refund a second time
// (2000 fen refunded of one 1000 refund), or would have sent again a refund
// the user was told had failed. B is a repeat of A: told what became of A's
// refund (succeeded, or closed: WeChat Pay's close is final for its
// out_refund_no), or "already used" when it was refused, and the order
// stays where A's refund left it. Closed, and another refund of the order
// made since (the order's refund record then names that one): B held the
// order again for the closed refund, told the user "closed", and the sweep
// undid the hold a minute on as a refund that failed, which the user's
// next turn told them; meanwhile a new proposal was refused as another
// refund in progress.
func TestLateTapAfterItsRefundEnded(t *testing.T) {
	cases := []struct {
		name     string
		refused  bool
		closed   bool
		status   store.OrderStatus
		refunded int64
	}{
		{name: "settled", status: store.StatusPartiallyRefunded, refunded: 1000},
		{name: "refused by WeChat Pay", refused: true, status: store.StatusPaid},
		{name: "closed by WeChat Pay, another refund made since", closed: true, status: store.StatusPartiallyRefunded, refunded: 2000},
	}
	for _, driver := range drivers(t) {
		for _, tc := range cases {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, storeClock: true})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-late", 1) // 49.99
				p := propose(t, e, o, 1000)
				late := &onceGetOrder{Store: e.st, hook: func() {
					if tc.refused {
						e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultOrderPaid})
					}
					_, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
					if tc.refused {
						if !errors.Is(err, payments.ErrRefundFailed) {
							t.Errorf("tap A: %v; want the refund refused", err)
						}
						return
					}
					if err != nil {
						t.Errorf("tap A: %v", err)
					}
					settle := p.OutRefundNo
					if tc.closed {
						w := refundWord{outRefundNo: p.OutRefundNo, status: wechatpay.RefundClosed, fen: 1000}
						if status, body := e.postRefund(o, e.order(o.OrderNo).TransactionID, w); status/100 != 2 {
							t.Errorf("refund closed: %d %s", status, body)
						}
						q := propose(t, e, e.order(o.OrderNo), 2000)
						if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, q.RefundID); err != nil {
							t.Errorf("another refund: %v", err)
						}
						settle = q.OutRefundNo
					}
					if d, err := e.sim.CompleteRefund(ctx, settle); err != nil || !d.Acked {
						t.Errorf("refund notification: %+v %v", d, err)
					}
				}}
				b := replicaOn(t, e, late)
				res, err := b.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				switch want := map[bool]string{true: payments.RefundClosed, false: payments.RefundSucceeded}[tc.closed]; {
				case tc.refused && !errors.Is(err, store.ErrGone):
					t.Errorf("tap B: %+v, %v; want store.ErrGone (already used, its refund refused)", res, err)
				case !tc.refused && (err != nil || res.Status != want):
					t.Errorf("tap B: %v, %v; want a repeat answered with A's refund %s", resStatus(res), err, want)
				}
				if got := e.order(o.OrderNo); got.Status != tc.status {
					t.Errorf("after tap B: order %s reserved by %q; want %s", got.Status, got.RefundReservedBy, tc.status)
				}
				e.clock.Advance(2 * time.Minute)
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Errorf("sweep: %v", err)
				}
				got := e.order(o.OrderNo)
				if got.Status != tc.status || got.RefundedFen != tc.refunded {
					t.Errorf("after the sweep: order %s refunded %d %v (%s); want %s with %d", got.Status, got.RefundedFen, got.RefundNos, got.ReviewReason, tc.status, tc.refunded)
				}
				if n, want := e.sim.RefundCount(o.OrderNo), map[bool]int{true: 0, false: 1}[tc.refused]+map[bool]int{true: 1}[tc.closed]; n != want {
					t.Errorf("refunds at WeChat Pay %d; want %d", n, want)
				}
				for _, r := range got.RefundOutcomes {
					if r.Status == store.RefundFailed {
						t.Errorf("outcome %+v noted for the user; want only what WeChat Pay said of each refund", r)
					}
				}
			})
		}
	}
}

// afterConsume runs hook once, right after a proposal is taken through it:
// a sweep on another replica between the two writes of the confirmation
// that took it.
type afterConsume struct {
	payments.Store
	once sync.Once
	hook func()
}

func (s *afterConsume) ConsumeRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	p, err := s.Store.ConsumeRefundProposal(ctx, id, user, events...)
	if err == nil {
		s.once.Do(s.hook)
	}
	return p, err
}

// TestSweepWaitsForTheTapThatTookTheRefund: replica A reserved the order and
// died before taking the user's word; minutes later the user taps again, and
// the tap goes on under A's reservation, whose time says nothing of the tap's.
// A sweep that runs between the tap's taking the proposal and its recording
// the refund must not send the order to review (needs_review is final: the
// merchant is told, and no further refund can be made), and the refund the
// user confirmed goes out and settles.
func TestSweepWaitsForTheTapThatTookTheRefund(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-race", 1)
			p := propose(t, e, o, 1000)
			cur := e.order(o.OrderNo) // A's reservation; A died before taking the proposal
			cur.Status, cur.RefundReservedBy = store.StatusRefunding, p.RefundID
			if err := e.st.UpdateOrder(ctx, cur, store.StatusPaid); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(2 * time.Minute)
			hooked := &afterConsume{Store: e.st, hook: func() {
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Errorf("sweep: %v", err)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
					t.Errorf("a sweep between the tap's two writes: order %s (%s); want refunding", got.Status, got.ReviewReason)
				}
			}}
			b := replicaOn(t, e, hooked)
			if _, err := b.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
				t.Fatalf("the tap: %v", err)
			}
			if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("refund notification: %+v %v", d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 1000 {
				t.Errorf("order %s refunded %d (%s); want partially_refunded with 1000", got.Status, got.RefundedFen, got.ReviewReason)
			}
		})
	}
}

// TestCancelFreesTheReservationOfACutConfirmation: replica A reserved a paid
// order for the user's confirmation and died before spending it, so nothing
// was sent. The user then says no on replica B. The order is theirs again at
// once, as the cancel's "nothing was sent" says: back to what it was, its
// whole refundable amount proposable and confirmable, with no sweep run
// (the sweep waits a minute on Redis; until then a new proposal was refused
// with "another refund in progress"). Unacked: the user's cancel took
// effect but the store did not confirm it (no replica had it in time); read
// back, it is answered cancelled, counted cancelled, and frees the order at
// once, as a confirm in that spot answers its outcome: it was a 503, the
// order left to the sweep, and the SDK's retry answered cancelled and
// counted repeated. Sent again all the same, it is answered as before.
// Unread: its read-back failed too, so it is answered 503 and sent again:
// the retry, answered cancelled, frees the order the first left held
// (cancelEnded), which nothing tested once the read-back answered first.
func TestCancelFreesTheReservationOfACutConfirmation(t *testing.T) {
	for _, tc := range driverModes(t, "once", "unacked", "unread") {
		unread := tc.mode == "unread"
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: tc.driver, storeClock: true, service: func(o *payments.Options) {
				o.Store = &unackedRefundSteps{fullStore: o.Store.(fullStore), cancel: tc.mode != "once", unread: unread}
			}})
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			o := paidOrder(t, e, "oUser-cut-cancel", 1) // 49.99
			p := propose(t, e, o, 1000)
			if _, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("confirmation on A: %v; want it cut short", err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || got.RefundReservedBy != p.RefundID {
				t.Fatalf("after A died: order %s reserved by %q; want refunding, reserved by %s", got.Status, got.RefundReservedBy, p.RefundID)
			}
			if unread {
				if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("first cancel on B: %v; want it taken and, its read-back failing, answered unavailable", err)
				}
			}
			if got, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || got.RefundID != p.RefundID {
				t.Fatalf("cancel on B: %+v, %v; want it answered cancelled", got, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPaid || got.RefundReservedBy != "" || got.RefundedFen != 0 {
				t.Fatalf("after the cancel: order %s reserved by %q, %d refunded; want paid, unreserved, nothing refunded",
					got.Status, got.RefundReservedBy, got.RefundedFen)
			}
			if got, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || got.RefundID != p.RefundID {
				t.Fatalf("cancel sent again: %+v, %v; want it answered cancelled", got, err)
			}
			for step, want := range map[string]float64{"cancelled": 1, "repeated": 1} {
				if unread {
					break // neither answer knew it took the user's no
				}
				if got := e.counter("paygate_refunds_total", map[string]string{"step": step}); got != want {
					t.Errorf("paygate_refunds_total{step=%q} %v; want %v", step, got, want)
				}
			}
			next, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "changed my mind"})
			if err != nil || next.AmountFen != 4999 {
				t.Fatalf("a new proposal after the cancel: %+v, %v; want all 49.99 proposable", next, err)
			}
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, next.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirming it: %+v, %v; want it sent", res, err)
			}
			if _, found := e.sim.Refund(p.OutRefundNo); found {
				t.Errorf("the cancelled refund reached WeChat Pay")
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay %d; want 1", n)
			}
		})
	}
}

// TestStateOfACutConfirmationIsTrue: a confirmation cut short after it
// reserved the order and before it spent the user's word sent nothing, and
// the order the user's turn reads (UnsentRefunds) is what it is: paid (or
// partially refunded, after an earlier refund), not "refund in progress",
// which had the model tell the user to wait for a refund nobody sent. A
// refund really on its way (the proposal taken, the refund sent) stays
// refunding.
func TestStateOfACutConfirmationIsTrue(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			cut := paidOrder(t, e, "oUser-cut-state", 1)
			first := propose(t, e, cut, 1000)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", cut.User, first.RefundID); err != nil {
				t.Fatal(err)
			}
			if _, err := e.sim.CompleteRefund(ctx, first.OutRefundNo); err != nil {
				t.Fatal(err)
			}
			p := propose(t, e, e.order(cut.OrderNo), 0)
			if _, err := a.ConfirmRefund(ctx, "shop-bot", cut.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("confirmation on A: %v; want it cut short", err)
			}
			sent := paidOrder(t, e, "oUser-cut-state", 2)
			q := propose(t, e, sent, 0)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", sent.User, q.RefundID); err != nil {
				t.Fatal(err)
			}
			for _, o := range []*store.Order{e.order(cut.OrderNo), e.order(sent.OrderNo)} {
				if o.Status != store.StatusRefunding {
					t.Fatalf("order %s is %s before the turn; want refunding", o.OrderNo, o.Status)
				}
			}
			got := e.svc.UnsentRefunds(ctx, []*store.Order{e.order(cut.OrderNo), e.order(sent.OrderNo)})
			if got[0].Status != store.StatusPartiallyRefunded || got[0].RefundedFen != 1000 {
				t.Errorf("the turn reads the order of the cut confirmation as %s, %d refunded; want partially_refunded with 1000, nothing else sent",
					got[0].Status, got[0].RefundedFen)
			}
			if got[1].Status != store.StatusRefunding {
				t.Errorf("the turn reads the order of the refund sent as %s; want refunding", got[1].Status)
			}
			if stored := e.order(cut.OrderNo); stored.Status != store.StatusRefunding || stored.RefundReservedBy != p.RefundID {
				t.Errorf("the turn's read changed the stored order: %s reserved by %q", stored.Status, stored.RefundReservedBy)
			}
		})
	}
}

// TestProposeAfterACutConfirmationsProposalExpired: a confirmation cut short
// left the order reserved for its proposal, and the proposal expired, no
// tap having come. Nothing was sent and nothing can be now: the user's next
// request for a refund gets a new proposal at once, not "a refund of this
// order is already being processed; tell the user to wait for it" until a
// sweep happens to undo the reservation (a minute on, on Redis), and the
// new one's confirmation is the one refund WeChat Pay sees.
func TestProposeAfterACutConfirmationsProposalExpired(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			a := replicaOn(t, e, &cutStore{Store: e.st, at: cutBeforeConsume})
			o := paidOrder(t, e, "oUser-cut-expired", 1) // 49.99
			p := propose(t, e, o, 0)
			if _, err := a.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("confirmation on A: %v; want it cut short", err)
			}
			e.clock.Advance(p.ExpiresAt.Sub(e.clock.Now()) + time.Second)
			next, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "asking again"})
			if err != nil || next.RefundID == p.RefundID || next.AmountFen != 4999 {
				t.Fatalf("a refund asked for after the proposal expired: %+v, %v; want a new proposal of 49.99", next, err)
			}
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, next.RefundID); err != nil || res.Status != payments.RefundProcessing {
				t.Fatalf("confirming it: %v, %v; want it sent", resStatus(res), err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); !errors.Is(err, store.ErrGone) {
				t.Errorf("a tap on the expired proposal: %v; want store.ErrGone", err)
			}
			if _, found := e.sim.Refund(p.OutRefundNo); found {
				t.Errorf("the expired proposal's refund reached WeChat Pay")
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 1 {
				t.Errorf("refunds at WeChat Pay %d; want 1", n)
			}
		})
	}
}
