package payments_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestRetriedRefundTurnMakesOneProposal: the turn in which the model
// proposed a partial refund is sent twice (the SDK retried it after a
// timeout; the first answer was lost). The retry is answered with the open
// proposal, not a second one: one proposal listed for the user, one
// refund.proposed, and confirming what is open refunds the 20.00 asked for,
// not 40.00.
func TestRetriedRefundTurnMakesOneProposal(t *testing.T) {
	var pmu sync.Mutex
	var proposed []string
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Proposed = func(_ context.Context, p store.RefundProposal) {
			pmu.Lock()
			proposed = append(proposed, p.RefundID)
			pmu.Unlock()
		}
	}})
	ctx := context.Background()
	o := paidOrder(t, e, "oUser-refund-retry", 2) // 99.98
	tools := newTools(e)
	args := `{"order_no":"` + o.OrderNo + `","reason":"one month unused","amount":"20.00"}`
	first := call(t, tools, caller(o.User), "request_refund", args)
	retry := call(t, tools, caller(o.User), "request_refund", args) // the same turn, re-sent
	if first.result["refund_id"] == nil || retry.result["refund_id"] != first.result["refund_id"] || retry.result["status"] != "awaiting_user_confirmation" {
		t.Errorf("the retried turn: %s; want the first's proposal %v again", retry.out.Result, first.result["refund_id"])
	}
	if refund, _ := retry.action["refund"].(map[string]any); refund["refund_id"] != first.result["refund_id"] {
		t.Errorf("the retried turn's action %s; want the first's proposal", retry.out.Action)
	}
	open, err := e.svc.OpenRefunds(ctx, "shop-bot", o.User)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 {
		t.Errorf("open refund proposals after one retried turn: %d; want 1", len(open))
	}
	pmu.Lock()
	if len(proposed) != 1 {
		t.Errorf("proposals announced (refund.proposed): %v; want one", proposed)
	}
	pmu.Unlock()
	for _, p := range open {
		if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
			t.Fatalf("confirm %s: %v", p.RefundID, err)
		}
		if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
			t.Fatalf("refund notification: %+v %v", d, err)
		}
	}
	if got := e.order(o.OrderNo); got.RefundedFen != 2000 {
		t.Errorf("refunded %d fen for one asked refund of 2000", got.RefundedFen)
	}
}

// TestConcurrentIdenticalRefundProposalsMakeOne: identical request_refund
// calls at once (a turn re-sent while the first still runs, two replicas)
// end with one open proposal, which every call returns.
func TestConcurrentIdenticalRefundProposalsMakeOne(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var pmu sync.Mutex
			proposed := 0
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Proposed = func(context.Context, store.RefundProposal) {
					pmu.Lock()
					proposed++
					pmu.Unlock()
				}
			}})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-refund-race", 2)
			const n = 8
			ids := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "unused", AmountFen: 2000})
					if err != nil {
						t.Errorf("propose %d: %v", i, err)
						return
					}
					ids[i] = p.RefundID
				}()
			}
			wg.Wait()
			for i, id := range ids {
				if id != ids[0] {
					t.Errorf("call %d got proposal %s, call 0 %s; want one proposal", i, id, ids[0])
				}
			}
			open, err := e.svc.OpenRefunds(ctx, "shop-bot", o.User)
			if err != nil {
				t.Fatal(err)
			}
			if len(open) != 1 || proposed != 1 {
				t.Errorf("open proposals %d, announced %d; want 1 and 1", len(open), proposed)
			}
		})
	}
}

// TestRefundProposalAfterItsAnswerIsNew: once the open proposal is
// cancelled or has expired, the same request makes a new one; once it is
// used, only after it would have expired (before, the ask is the turn that
// proposed it sent again, answered with the refund confirmed); another
// amount is another proposal all along.
func TestRefundProposalAfterItsAnswerIsNew(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-refund-again", 3) // 149.97
			p1 := propose(t, e, o, 2000)
			if other := propose(t, e, o, 3000); other.RefundID == p1.RefundID {
				t.Errorf("a proposal of another amount returned the open one of 20.00")
			}
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, p1.RefundID); err != nil {
				t.Fatal(err)
			}
			p2 := propose(t, e, o, 2000)
			if p2.RefundID == p1.RefundID {
				t.Fatalf("asked again after the user cancelled: the cancelled proposal %s", p1.RefundID)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p2.RefundID); err != nil {
				t.Fatal(err)
			}
			if d, err := e.sim.CompleteRefund(ctx, p2.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("refund notification: %+v %v", d, err)
			}
			// Asked again while the used proposal would still be open: the
			// turn that proposed it sent again, answered with that refund.
			_, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "not needed", AmountFen: 2000})
			var done *payments.AlreadyConfirmedError
			if !errors.As(err, &done) || done.Result.Proposal.RefundID != p2.RefundID || done.Result.Status != payments.RefundSucceeded {
				t.Fatalf("asked again after the refund, within the proposal's life: %v; want the refund %s the user confirmed, succeeded", err, p2.RefundID)
			}
			e.clock.Advance(payments.DefaultRefundConfirmTTL + time.Second)
			p3 := propose(t, e, o, 2000)
			if p3.RefundID == p2.RefundID || p3.OutRefundNo == p2.OutRefundNo {
				t.Fatalf("asked again after the used proposal's life: the used proposal %s", p2.RefundID)
			}
			e.clock.Advance(payments.DefaultRefundConfirmTTL + time.Second)
			p4 := propose(t, e, o, 2000)
			if p4.RefundID == p3.RefundID {
				t.Fatalf("asked again after the proposal expired: the expired proposal %s", p3.RefundID)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p3.RefundID); err == nil {
				t.Errorf("the expired proposal %s was confirmed", p3.RefundID)
			}
			if open, err := e.svc.OpenRefunds(ctx, "shop-bot", o.User); err != nil || len(open) != 1 || open[0].RefundID != p4.RefundID {
				t.Errorf("open proposals %v, %v; want only %s", open, err, p4.RefundID)
			}
		})
	}
}

// TestRefundTurnResentWhenLittleIsLeft: the turn that proposed a refund is
// sent again after the user confirmed it (within the proposal's life),
// when what is left of the order is less than that refund: 30.00 of 49.99
// refunded (19.99 left), or all 49.99 refunded.
// The model is told refund_already_confirmed with where the refund stands,
// as for a refund that left enough: not "at most 19.99 of the order can be
// refunded", asked to have the user say another amount for the refund they
// already got, nor "cannot be refunded in its current state".
func TestRefundTurnResentWhenLittleIsLeft(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			tools := newTools(e)
			for _, c := range []struct {
				name     string
				fen      int64
				amount   string
				wantStat string
				wantLeft string // what the model is told a further refund can be
			}{
				{"30.00 of 49.99", 3000, "30.00", payments.RefundSucceeded, "at most 19.99 CNY more"},
				{"all 49.99, named", 4999, "49.99", payments.RefundSucceeded, "nothing more of this order can be refunded"},
			} {
				o := paidOrder(t, e, "oUser-resent-"+strings.ReplaceAll(c.name, " ", ""), 1)
				p := propose(t, e, o, c.fen)
				if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
					t.Fatalf("%s: confirm: %v", c.name, err)
				}
				if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
					t.Fatalf("%s: refund notification: %+v %v", c.name, d, err)
				}
				tc := call(t, tools, caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"not needed","amount":"`+c.amount+`"}`)
				if tc.result["status"] != "refund_already_confirmed" || tc.result["refund_id"] != p.RefundID || tc.result["refund_status"] != c.wantStat || tc.out.Clarify {
					t.Errorf("%s (order %s): the resent turn's model was told %s (clarify %v); want refund_already_confirmed of %s, %s",
						c.name, e.order(o.OrderNo).Status, tc.out.Result, tc.out.Clarify, p.RefundID, c.wantStat)
				}
				if msg, _ := tc.result["message"].(string); !strings.Contains(msg, c.wantLeft) {
					t.Errorf("%s: the resent turn's model was told %q; want it told %q (a further refund of %s can never be proposed)", c.name, msg, c.wantLeft, c.amount)
				}
				if n := e.sim.RefundCount(o.OrderNo); n != 1 {
					t.Errorf("%s: %d refunds at WeChat Pay; want 1", c.name, n)
				}
			}
		})
	}
}

// TestSecondRefundOfTheSameAmountIsNotToldDone: the user had 49.99 of a
// 99.98 order (two items) refunded, then asks for the second item's 49.99
// within the first proposal's life. paygate cannot tell that ask from the
// first turn sent again, and answers refund_already_confirmed with no new
// proposal; the model must not read "it has been refunded" as the second
// refund made: it is told this request refunded nothing, and when a second
// refund of 49.99 can be asked for.
func TestSecondRefundOfTheSameAmountIsNotToldDone(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	o := paidOrder(t, e, "oUser-second-item", 2)
	p := propose(t, e, o, 4999)
	if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
		t.Fatal(err)
	}
	if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
		t.Fatalf("refund notification: %+v %v", d, err)
	}
	tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"the second one does not work either","amount":"49.99"}`)
	msg, _ := tc.result["message"].(string)
	if tc.result["status"] != "refund_already_confirmed" || !strings.Contains(msg, "nothing was proposed or refunded by this request") ||
		!strings.Contains(msg, "it was not made and can be asked for after "+p.ExpiresAt.UTC().Format(time.RFC3339)) {
		t.Errorf("a second refund of 49.99 asked within the first's life: the model was told %s; want refund_already_confirmed saying this request refunded nothing, and when a second can be asked for", tc.out.Result)
	}
}
