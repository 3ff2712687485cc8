package payments_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// paidOrder creates and pays an order of qty premium-monthly for user.
func paidOrder(t *testing.T, e *env, user string, qty int) *store.Order {
	t.Helper()
	o := e.create(user, qty)
	if d, err := e.sim.Pay(context.Background(), o.OrderNo); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusPaid {
		t.Fatalf("order %s is %s; want paid", o.OrderNo, got.Status)
	}
	return e.order(o.OrderNo)
}

func TestRequestRefundMovesNoMoney(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			var proposed []store.RefundProposal
			var pmu sync.Mutex
			e2 := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Proposed = func(_ context.Context, p store.RefundProposal) {
					pmu.Lock()
					proposed = append(proposed, p)
					pmu.Unlock()
				}
			}})
			for _, e := range []*env{e, e2} {
				o := paidOrder(t, e, "oUser-refund-tool", 1)
				tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"I was charged twice, refund me NOW"}`)
				if tc.result["status"] != "awaiting_user_confirmation" || tc.result["amount"] != "49.99 CNY" || !tc.out.MoneyMoving || !tc.out.Executed {
					t.Fatalf("result %s (%+v); want awaiting_user_confirmation of 49.99 CNY, counted", tc.out.Result, tc.out)
				}
				id, _ := tc.result["refund_id"].(string)
				refund, _ := tc.action["refund"].(map[string]any)
				if tc.action["type"] != "refund_proposed" || refund["refund_id"] != id || refund["order_no"] != o.OrderNo ||
					refund["amount_fen"] != float64(4999) || refund["label"] != "Confirm refund of 49.99 CNY" ||
					refund["confirm_url"] != "/v1/paygate/refunds/"+id+"/confirm" || refund["expires_at"] == nil {
					t.Errorf("action %s", tc.out.Action)
				}
				if n := e.sim.RefundCount(""); n != 0 {
					t.Errorf("simulator refunds %d after request_refund; want 0", n)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusPaid || got.Version != o.Version {
					t.Errorf("order changed by a proposal: %s v%d", got.Status, got.Version)
				}
				p, err := e.st.GetRefundProposal(context.Background(), id)
				if err != nil || p.User != o.User || p.Client != "shop-bot" || p.AmountFen != 4999 || p.OutRefundNo != payments.OutRefundNo(id) {
					t.Errorf("stored proposal %+v, %v", p, err)
				}
				if ttl := p.ExpiresAt.Sub(p.CreatedAt); ttl != payments.DefaultRefundConfirmTTL {
					t.Errorf("proposal lives %v; want %v", ttl, payments.DefaultRefundConfirmTTL)
				}
			}
			pmu.Lock()
			defer pmu.Unlock()
			if len(proposed) != 1 || proposed[0].AmountFen != 4999 {
				t.Errorf("Proposed hook saw %+v; want the one proposal", proposed)
			}
		})
	}
}

func TestRequestRefundArguments(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	o := paidOrder(t, e, "oUser-refund-args", 2) // 99.98
	other := paidOrder(t, e, "oUser-refund-args-other", 1)
	unpaid := e.create("oUser-refund-args", 3)
	u := caller(o.User)
	tests := []struct {
		name        string
		args        string
		wantStatus  string
		wantFen     float64
		wantClarify bool
		asOther     bool // asked by the same OpenID at another client
	}{
		{name: "everything left by default", args: `{"order_no":"` + o.OrderNo + `","reason":"r"}`, wantStatus: "awaiting_user_confirmation", wantFen: 9998},
		{name: "a partial amount as a string", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"20.00"}`, wantStatus: "awaiting_user_confirmation", wantFen: 2000},
		{name: "a partial amount as a number", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":20.5}`, wantStatus: "awaiting_user_confirmation", wantFen: 2050},
		{name: "exactly what was paid", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"99.98"}`, wantStatus: "awaiting_user_confirmation", wantFen: 9998},
		{name: "one fen more than paid", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"99.99"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "zero", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"0"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "not an amount", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"all of it"}`, wantStatus: "needs_clarification", wantClarify: true},
		// Amounts a model may write that are not a whole number of fen, or
		// not a plain decimal: asked about, never rounded or read as
		// something else (0.001 is no fen, 1e1 could be read as 10 or 1).
		{name: "a tenth of a fen", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"0.001"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "three decimals", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"49.990"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "three decimals as a number", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":49.990}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "an exponent as a string", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"1e1"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "an exponent as a number", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":1e1}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "negative as a string", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"-10.00"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "negative as a number", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":-10}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "far above the total", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":"100000.00"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "zero as a number", args: `{"order_no":"` + o.OrderNo + `","reason":"r","amount":0}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "no reason", args: `{"order_no":"` + o.OrderNo + `"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "no order number", args: `{"reason":"r"}`, wantStatus: "needs_clarification", wantClarify: true},
		{name: "another user's order", args: `{"order_no":"` + other.OrderNo + `","reason":"r"}`, wantStatus: "not_found"},
		{name: "the same OpenID's order at another client", args: `{"order_no":"` + o.OrderNo + `","reason":"r"}`, wantStatus: "not_found", asOther: true},
		{name: "an unpaid order", args: `{"order_no":"` + unpaid.OrderNo + `","reason":"r"}`, wantStatus: "not_refundable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := u
			if tt.asOther {
				c = otherClient(u)
			}
			tc := call(t, tools, c, "request_refund", tt.args)
			if tc.result["status"] != tt.wantStatus || tc.out.Clarify != tt.wantClarify {
				t.Fatalf("result %s clarify %v; want %s %v", tc.out.Result, tc.out.Clarify, tt.wantStatus, tt.wantClarify)
			}
			if tt.wantFen != 0 {
				refund, _ := tc.action["refund"].(map[string]any)
				if refund["amount_fen"] != tt.wantFen {
					t.Errorf("proposed %v fen; want %v", refund["amount_fen"], tt.wantFen)
				}
			} else if tc.action != nil {
				t.Errorf("an action for a refused proposal: %s", tc.out.Action)
			}
		})
	}
	if n := e.sim.RefundCount(""); n != 0 {
		t.Errorf("simulator refunds %d; want 0", n)
	}
}

func propose(t *testing.T, e *env, o *store.Order, fen int64) *store.RefundProposal {
	t.Helper()
	p, _, err := e.svc.ProposeRefund(context.Background(), payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "not needed", AmountFen: fen})
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	return p
}

func TestConfirmRefundExactlyOnce(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-confirm", 1)
			p := propose(t, e, o, 0)

			// Someone else holding the id gets nothing, and spends nothing.
			for _, who := range []struct{ client, user string }{{"shop-bot", "oUser-intruder"}, {"other-bot", o.User}} {
				if _, err := e.svc.ConfirmRefund(ctx, who.client, who.user, p.RefundID); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("confirm by %s/%s: %v; want store.ErrNotFound", who.client, who.user, err)
				}
				if _, err := e.svc.CancelRefund(ctx, who.client, who.user, p.RefundID); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("cancel by %s/%s: %v; want store.ErrNotFound", who.client, who.user, err)
				}
			}
			if n := e.sim.RefundCount(""); n != 0 {
				t.Fatalf("simulator refunds %d after foreign confirmations; want 0", n)
			}

			const n = 20
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, repeated := 0, 0
			start := make(chan struct{})
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && res.Status == payments.RefundProcessing:
						ok++
					case err == nil && res.Status == payments.RefundPending && res.Proposal.RefundID == p.RefundID:
						repeated++ // answered with the refund's state: on its way
					default:
						t.Errorf("confirm: %+v, %v", res, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ok != 1 || repeated != n-1 {
				t.Errorf("confirmations ok %d repeated %d; want 1 and %d", ok, repeated, n-1)
			}
			if got := e.sim.RefundCount(o.OrderNo); got != 1 {
				t.Fatalf("simulator refunds %d; want exactly 1", got)
			}
			rf, found := e.sim.Refund(p.OutRefundNo)
			if !found || rf.Amount.Refund != 4999 {
				t.Errorf("simulator refund under %s: %+v (found %v); want 4999 fen", p.OutRefundNo, rf, found)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding {
				t.Errorf("order %s; want refunding", got.Status)
			}
			if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("refund notification: %+v %v", d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunded || got.RefundedFen != 4999 {
				t.Errorf("after the notification: %s %d; want refunded 4999", got.Status, got.RefundedFen)
			}
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundSucceeded ||
				res.Order.Status != store.StatusRefunded {
				t.Errorf("late confirm: %+v, %v; want the refund succeeded, the order refunded", res, err)
			}
			if got := e.sim.RefundCount(o.OrderNo); got != 1 {
				t.Errorf("simulator refunds %d after the late confirm; want exactly 1", got)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", "oUser-intruder", p.RefundID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("late confirm by another user: %v; want store.ErrNotFound", err)
			}
		})
	}
}

func TestRefundProposalExpiresAndCancels(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-expire", 2)
			late := propose(t, e, o, 1000)
			cancelled := propose(t, e, o, 2000)
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, cancelled.RefundID); err != nil {
				t.Fatalf("cancel: %v", err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, cancelled.RefundID); !errors.Is(err, store.ErrGone) {
				t.Errorf("confirm after cancel: %v; want store.ErrGone", err)
			}
			e.clock.Advance(payments.DefaultRefundConfirmTTL + time.Second)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, late.RefundID); !errors.Is(err, store.ErrGone) {
				t.Errorf("confirm after expiry: %v; want store.ErrGone", err)
			}
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, late.RefundID); !errors.Is(err, store.ErrGone) {
				t.Errorf("cancel after expiry: %v; want store.ErrGone", err)
			}
			if n := e.sim.RefundCount(""); n != 0 {
				t.Errorf("simulator refunds %d; want 0", n)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPaid {
				t.Errorf("order %s; want paid", got.Status)
			}
		})
	}
}

// TestRefundAnswersCountedByStep: paygate_refunds_total counts each of the
// user's answers to a proposal as the step it was, a cancel's as a
// confirm's: the first that decided it (confirmed, cancelled), one sent
// again and answered as before (repeated), one too late (gone), and a
// cancel of a refund already confirmed (already_confirmed). A cancel sent
// again, or after the confirmation, counted nothing, where a confirm's
// counted repeated.
func TestRefundAnswersCountedByStep(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-answer-steps", 2)
			cancelled, confirmed, lapsed := propose(t, e, o, 500), propose(t, e, o, 1000), propose(t, e, o, 1500)
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, cancelled.RefundID); err != nil {
				t.Fatalf("cancel: %v", err)
			}
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, cancelled.RefundID); err != nil {
				t.Fatalf("cancel again: %v", err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, cancelled.RefundID); !errors.Is(err, store.ErrGone) {
				t.Fatalf("confirm after the cancel: %v; want ErrGone", err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, confirmed.RefundID); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, confirmed.RefundID); err != nil {
				t.Fatalf("confirm again: %v", err)
			}
			var already *payments.AlreadyConfirmedError
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, confirmed.RefundID); !errors.As(err, &already) {
				t.Fatalf("cancel after the confirmation: %v; want AlreadyConfirmedError", err)
			}
			e.clock.Advance(payments.DefaultRefundConfirmTTL + time.Second)
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, lapsed.RefundID); !errors.Is(err, store.ErrGone) {
				t.Fatalf("cancel after expiry: %v; want ErrGone", err)
			}
			for step, want := range map[string]float64{"proposed": 3, "confirmed": 1, "cancelled": 1, "repeated": 2, "gone": 2, "already_confirmed": 1} {
				if got := e.counter("paygate_refunds_total", map[string]string{"step": step}); got != want {
					t.Errorf("paygate_refunds_total{step=%q} %v; want %v", step, got, want)
				}
			}
		})
	}
}

// TestEndedProposalOfAnotherOwnerIsNotFound: a proposal id held by another
// client or user is not found (404), before and after it is used, cancelled
// or expired; "gone" (410) would tell them the id exists. Only its owner is
// told it is gone (or, confirming the used one again, what became of its
// refund; cancelling it, that its refund goes on; cancelling the cancelled
// one again, that it is cancelled).
func TestEndedProposalOfAnotherOwnerIsNotFound(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-ended", 2)
			// Three amounts: an identical request returns the open proposal.
			used, cancelled, expired := propose(t, e, o, 1000), propose(t, e, o, 1001), propose(t, e, o, 1002)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, used.RefundID); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, cancelled.RefundID); err != nil {
				t.Fatalf("cancel: %v", err)
			}
			e.clock.Advance(payments.DefaultRefundConfirmTTL + time.Second)
			ops := map[string]func(client, user, id string) error{
				"confirm": func(client, user, id string) error {
					_, err := e.svc.ConfirmRefund(ctx, client, user, id)
					return err
				},
				"cancel": func(client, user, id string) error {
					_, err := e.svc.CancelRefund(ctx, client, user, id)
					return err
				},
			}
			for _, tc := range []struct {
				state        string
				id           string
				client, user string
				want         error
			}{
				{"used", used.RefundID, "other-bot", o.User, store.ErrNotFound},
				{"used", used.RefundID, "shop-bot", "oUser-intruder", store.ErrNotFound},
				{"used", used.RefundID, "shop-bot", o.User, store.ErrGone},
				{"cancelled", cancelled.RefundID, "other-bot", o.User, store.ErrNotFound},
				{"cancelled", cancelled.RefundID, "shop-bot", "oUser-intruder", store.ErrNotFound},
				{"cancelled", cancelled.RefundID, "shop-bot", o.User, store.ErrGone},
				{"expired", expired.RefundID, "other-bot", o.User, store.ErrNotFound},
				{"expired", expired.RefundID, "shop-bot", "oUser-intruder", store.ErrNotFound},
				{"expired", expired.RefundID, "shop-bot", o.User, store.ErrGone},
			} {
				for name, op := range ops {
					want := tc.want
					if name == "confirm" && tc.state == "used" && tc.client == "shop-bot" && tc.user == o.User {
						want = nil // a repeat of the owner's confirmation: the refund's state
					}
					if name == "cancel" && tc.state == "cancelled" && tc.client == "shop-bot" && tc.user == o.User {
						want = nil // a repeat of the owner's cancel: cancelled, as before
					}
					if name == "cancel" && tc.state == "used" && tc.client == "shop-bot" && tc.user == o.User {
						want = payments.ErrRefundConfirmed // the owner's cancel of it: its refund goes on
					}
					if err := op(tc.client, tc.user, tc.id); !errors.Is(err, want) {
						t.Errorf("%s of the %s proposal by %s/%s: %v; want %v", name, tc.state, tc.client, tc.user, err, want)
					}
				}
			}
			if n := e.sim.RefundCount(""); n != 1 {
				t.Errorf("simulator refunds %d; want 1, the owner's confirmation", n)
			}
		})
	}
}

func TestPartialRefundsNeverExceedThePayment(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-partial", 2) // 9998 fen
			first := propose(t, e, o, 2000)
			restA := propose(t, e, o, 0)
			restB := propose(t, e, o, 0)
			if restA.AmountFen != 9998 || restB.AmountFen != 9998 {
				t.Fatalf("rest proposals %d, %d; want 9998 each", restA.AmountFen, restB.AmountFen)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, first.RefundID); err != nil {
				t.Fatal(err)
			}
			// One refund at a time: the next one waits, and stays usable.
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, restA.RefundID); !errors.Is(err, payments.ErrRefundInProgress) {
				t.Fatalf("confirm during a refund: %v; want ErrRefundInProgress", err)
			}
			if d, err := e.sim.CompleteRefund(ctx, first.OutRefundNo); err != nil || !d.Acked {
				t.Fatal(d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 2000 {
				t.Fatalf("after 20.00: %s %d; want partially_refunded 2000", got.Status, got.RefundedFen)
			}
			// Proposed before the first refund, restA is now more than is left.
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, restA.RefundID); !errors.Is(err, payments.ErrRefundAmount) {
				t.Errorf("confirm of a stale full refund: %v; want ErrRefundAmount", err)
			}
			rest := propose(t, e, e.order(o.OrderNo), 0)
			if rest.AmountFen != 7998 {
				t.Errorf("rest proposal %d; want 7998", rest.AmountFen)
			}
			if _, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "x", AmountFen: 7999}); !errors.Is(err, payments.ErrRefundAmount) {
				t.Errorf("propose 79.99 of 79.98 left: %v; want ErrRefundAmount", err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, rest.RefundID); err != nil {
				t.Fatal(err)
			}
			if d, err := e.sim.CompleteRefund(ctx, rest.OutRefundNo); err != nil || !d.Acked {
				t.Fatal(d, err)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusRefunded || got.RefundedFen != 9998 {
				t.Errorf("after the rest: %s %d; want refunded 9998", got.Status, got.RefundedFen)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, restB.RefundID); !errors.Is(err, payments.ErrNotRefundable) {
				t.Errorf("confirm on a refunded order: %v; want ErrNotRefundable", err)
			}
			if n := e.sim.RefundCount(o.OrderNo); n != 2 {
				t.Errorf("simulator refunds %d; want 2", n)
			}
		})
	}
}

func TestRefundPendingIsResentWithTheSameNumber(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, storeClock: true})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-pending", 1)
			p := propose(t, e, o, 0)
			// Every create of the confirmation fails without effect.
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultSystemError, Times: 3})
			res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
			if err != nil || res.Status != payments.RefundPending {
				t.Fatalf("confirm: %+v, %v; want pending", res, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunding || e.sim.RefundCount("") != 0 {
				t.Fatalf("after an unanswered refund: %s, %d refunds; want refunding and none", got.Status, e.sim.RefundCount(""))
			}
			// The sweep leaves a fresh refund alone, then resends the late one.
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if e.sim.RefundCount("") != 0 {
				t.Fatalf("the sweep resent a refund younger than a minute")
			}
			e.clock.Advance(2 * time.Minute)
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if _, found := e.sim.Refund(p.OutRefundNo); !found || e.sim.RefundCount("") != 1 {
				t.Fatalf("after the sweep: %d refunds, %s found %v; want the one refund under the proposal's number", e.sim.RefundCount(""), p.OutRefundNo, found)
			}
			// Sweeping again asks, and sends nothing new.
			e.clock.Advance(2 * time.Minute)
			if _, err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if e.sim.RefundCount("") != 1 {
				t.Errorf("refunds after a second sweep: %d; want 1", e.sim.RefundCount(""))
			}
			if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
				t.Fatal(d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusRefunded || got.RefundedFen != 4999 {
				t.Errorf("after the notification: %s %d; want refunded 4999", got.Status, got.RefundedFen)
			}
			var sawRefund bool
			for _, l := range e.sim.Requests() {
				if l.Op == "refund" && l.OutRefundNo != "" && l.OutRefundNo != p.OutRefundNo {
					t.Errorf("a refund request under another number: %s", l.OutRefundNo)
				}
				sawRefund = sawRefund || l.Op == "refund"
			}
			if !sawRefund || !strings.HasPrefix(p.OutRefundNo, "RF") {
				t.Errorf("refund requests seen %v; out_refund_no %q", sawRefund, p.OutRefundNo)
			}
		})
	}
}

func TestRefundTransitionsCarryTheProposal(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	o := paidOrder(t, e, "oUser-transition", 1)
	p := propose(t, e, o, 0)
	if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
		t.Fatal(err)
	}
	tr := e.await(func(tr payments.Transition) bool { return tr.After.Status == store.StatusRefunding })
	if tr.Refund == nil || tr.Refund.RefundID != p.RefundID || tr.Cause != "refund" {
		t.Errorf("refunding transition: refund %+v cause %s; want the proposal", tr.Refund, tr.Cause)
	}
	if _, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil {
		t.Fatal(err)
	}
	tr = e.await(func(tr payments.Transition) bool { return tr.After.Status == store.StatusRefunded })
	if tr.Refund == nil || tr.Refund.OutRefundNo != p.OutRefundNo || tr.Cause != "notification" {
		t.Errorf("refunded transition: refund %+v cause %s; want the proposal", tr.Refund, tr.Cause)
	}
}

// staleWriteStore holds caller "W1"'s write of a refund start between its
// read of the order and its compare-and-set, until the test lets it go.
type staleWriteStore struct {
	fullStore
	reached, release chan struct{}
}

func (h *staleWriteStore) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	if callerOf(ctx) == "W1" && o.Status == store.StatusRefunding {
		select {
		case <-h.reached:
		default:
			close(h.reached)
			<-h.release
		}
	}
	return h.fullStore.UpdateOrder(ctx, o, expect, ev...)
}

// TestRefundDecidedOnAStaleRecordIsRedecided: an order that leaves
// partially_refunded and comes back to it (another refund confirmed and
// completed) while a confirmation's write is under way must not have that
// write land on the old record: the refund completed meanwhile would vanish
// from refunded_fen. The write is decided again on the current record.
func TestRefundDecidedOnAStaleRecordIsRedecided(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var h *staleWriteStore
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				h = &staleWriteStore{fullStore: o.Store.(fullStore), reached: make(chan struct{}), release: make(chan struct{})}
				o.Store = h
			}})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-stale-write", 1) // 49.99
			first := propose(t, e, o, 1001)              // not p1's 10.00: that would be this one asked again
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, first.RefundID); err != nil {
				t.Fatal(err)
			}
			if d, err := e.sim.CompleteRefund(ctx, first.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("complete first refund: %+v %v", d, err)
			}
			o = e.order(o.OrderNo) // partially_refunded, 10.01
			p1, p2 := propose(t, e, o, 1000), propose(t, e, o, 2998)

			done := make(chan error, 1)
			go func() {
				_, err := e.svc.ConfirmRefund(context.WithValue(ctx, callerKey{}, "W1"), "shop-bot", o.User, p2.RefundID)
				done <- err
			}()
			<-h.reached
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p1.RefundID); err != nil {
				t.Fatal(err)
			}
			if d, err := e.sim.CompleteRefund(ctx, p1.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("complete p1: %+v %v", d, err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPartiallyRefunded || got.RefundedFen != 2001 {
				t.Fatalf("after p1: %s %d; want partially_refunded 2001", got.Status, got.RefundedFen)
			}
			close(h.release)
			if err := <-done; err != nil {
				t.Fatalf("p2: %v", err)
			}
			if d, err := e.sim.CompleteRefund(ctx, p2.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("complete p2: %+v %v", d, err)
			}
			got := e.order(o.OrderNo)
			if got.Status != store.StatusRefunded || got.RefundedFen != 4999 {
				t.Errorf("after 10.01 + 10.00 + 29.98 refunded at WeChat Pay: record says %s, %d fen; want refunded, 4999", got.Status, got.RefundedFen)
			}
		})
	}
}

// TestPurchaseAfterRefund: a purchase whose money went back in full is
// settled like a closed one, so asking for it again within the dedupe window
// makes a new order (a new generation) rather than "already_paid" — the user
// has not paid for it. Money still kept (a partial refund) stays
// "already_paid".
func TestPurchaseAfterRefund(t *testing.T) {
	tests := []struct {
		name       string
		refundFen  int64 // 0: all of it
		wantOrder  store.OrderStatus
		wantStatus string
		wantNew    bool
	}{
		{name: "refunded in full", wantOrder: store.StatusRefunded, wantStatus: "awaiting_payment", wantNew: true},
		{name: "partially refunded", refundFen: 1000, wantOrder: store.StatusPartiallyRefunded, wantStatus: "already_paid"},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver})
				ctx := context.Background()
				o := paidOrder(t, e, "oUser-after-refund", 1)
				p := propose(t, e, o, tt.refundFen)
				if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
					t.Fatal(err)
				}
				if d, err := e.sim.CompleteRefund(ctx, p.OutRefundNo); err != nil || !d.Acked {
					t.Fatal(d, err)
				}
				if got := e.order(o.OrderNo).Status; got != tt.wantOrder {
					t.Fatalf("order %s; want %s", got, tt.wantOrder)
				}
				tc := call(t, newTools(e), caller(o.User), "create_order", `{"sku":"premium-monthly"}`)
				no, _ := tc.result["order_no"].(string)
				if tc.result["status"] != tt.wantStatus || (no != o.OrderNo) != tt.wantNew {
					t.Fatalf("create_order after the refund of %s: %s; want status %s, new order %v", o.OrderNo, tc.out.Result, tt.wantStatus, tt.wantNew)
				}
				if tt.wantNew {
					if got := e.order(no); got.Generation != o.Generation+1 || e.sim.Prepays(no) != 1 {
						t.Errorf("new order %s: generation %d, %d prepays; want generation %d, one prepay", no, got.Generation, e.sim.Prepays(no), o.Generation+1)
					}
				}
			})
		}
	}
}

// failingPutStore fails PutRefundProposal while fail is set, as a store
// that went down would.
type failingPutStore struct {
	payments.Store
	fail *atomic.Bool
}

func (f failingPutStore) PutRefundProposal(ctx context.Context, p *store.RefundProposal, ttl time.Duration, events ...store.Event) error {
	if f.fail.Load() {
		return store.ErrUnavailable
	}
	return f.Store.PutRefundProposal(ctx, p, ttl, events...)
}

// TestProposalEventsRideTheProposal: the events of a refund proposal (its
// audit record) are written with it, keyed by it, in one step; when that
// step fails the tool fails and nothing is announced, so there is never a
// live proposal without its record.
func TestProposalEventsRideTheProposal(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var fail atomic.Bool
			var proposed atomic.Int32
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Store = failingPutStore{Store: o.Store, fail: &fail}
				o.ProposalEvents = func(_ context.Context, step payments.ProposalStep, p store.RefundProposal, _ *store.Order) []store.Event {
					if step != payments.ProposalMade {
						t.Errorf("ProposalEvents for %s; want only %s here", step, payments.ProposalMade)
					}
					return []store.Event{{Kind: "audit", Payload: []byte(`{"refund_id":"` + p.RefundID + `"}`)}}
				}
				o.Proposed = func(context.Context, store.RefundProposal) { proposed.Add(1) }
			}})
			o := paidOrder(t, e, "oUser-proposal-events", 1)
			ctx := context.Background()
			fail.Store(true)
			tc := call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"it broke"}`)
			if tc.result["status"] != "failed" || tc.out.Action != nil || !tc.out.Failed {
				t.Errorf("with the store down: %s, action %s, failed %v; want a failed tool result and no action", tc.out.Result, tc.out.Action, tc.out.Failed)
			}
			if n := proposed.Load(); n != 0 {
				t.Errorf("Proposed called %d times for a proposal never stored", n)
			}
			fail.Store(false)
			tc = call(t, newTools(e), caller(o.User), "request_refund", `{"order_no":"`+o.OrderNo+`","reason":"it broke"}`)
			id, _ := tc.result["refund_id"].(string)
			if tc.result["status"] != "awaiting_user_confirmation" || id == "" {
				t.Fatalf("result %s; want a proposal", tc.out.Result)
			}
			evs, err := e.st.(store.Outbox).DueEvents(ctx, time.Now().Add(time.Hour), 100)
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, ev := range evs {
				if ev.Key == store.ProposalEventKey(id) {
					found = append(found, string(ev.Payload))
				}
			}
			if len(found) != 1 || found[0] != `{"refund_id":"`+id+`"}` {
				t.Errorf("events on %s: %v; want the proposal's one", store.ProposalEventKey(id), found)
			}
			if n := proposed.Load(); n != 1 {
				t.Errorf("Proposed called %d times; want 1", n)
			}
		})
	}
}

// TestAnswerEventsRideTheTombstone: the user's answer to a refund proposal
// gets Options.ProposalEvents' events in the step that ends the proposal: a
// cancel its ProposalCancelled ones, a confirmation its ProposalConfirmed
// ones once it is taken. An answer that finds the proposal already ended (a
// confirm after a cancel, a cancel after a confirm) enqueues nothing, so
// each proposal records exactly the answer that counted.
func TestAnswerEventsRideTheTombstone(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.ProposalEvents = func(_ context.Context, step payments.ProposalStep, p store.RefundProposal, _ *store.Order) []store.Event {
					return []store.Event{{Kind: "answer-test", Payload: []byte(string(step))}}
				}
			}})
			ctx := context.Background()
			ob := e.st.(store.Outbox)
			queued := func(id string) []string {
				t.Helper()
				key := store.ProposalEventKey(id)
				var out []string
				for range 10 {
					evs, err := ob.DueEvents(ctx, time.Now().Add(time.Hour), 100)
					if err != nil {
						t.Fatal(err)
					}
					var head *store.Event
					for i := range evs {
						if evs[i].Key == key {
							head = &evs[i]
						}
					}
					if head == nil {
						break
					}
					out = append(out, string(head.Payload))
					if err := ob.AckEvent(ctx, key, head.ID); err != nil {
						t.Fatal(err)
					}
				}
				return out
			}
			o := paidOrder(t, e, "oUser-answer-events", 1)

			cancelled := propose(t, e, o, 500)
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, cancelled.RefundID); err != nil {
				t.Fatalf("cancel: %v", err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, cancelled.RefundID); !errors.Is(err, store.ErrGone) {
				t.Fatalf("confirm after the cancel: %v; want ErrGone", err)
			}
			if again, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, cancelled.RefundID); err != nil || again.RefundID != cancelled.RefundID {
				t.Fatalf("a second cancel: %+v %v; want the proposal, cancelled as before", again, err)
			}
			if got := queued(cancelled.RefundID); !slices.Equal(got, []string{"proposed", "cancelled"}) {
				t.Errorf("cancelled proposal's events %v; want [proposed cancelled]", got)
			}

			confirmed := propose(t, e, o, 500)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, confirmed.RefundID); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if _, err := e.svc.CancelRefund(ctx, "shop-bot", o.User, confirmed.RefundID); !errors.Is(err, store.ErrGone) {
				t.Fatalf("cancel after the confirmation: %v; want ErrGone", err)
			}
			if got := queued(confirmed.RefundID); !slices.Equal(got, []string{"proposed", "confirmed"}) {
				t.Errorf("confirmed proposal's events %v; want [proposed confirmed]", got)
			}
		})
	}
}

// TestLosingConfirmKeepsItsProposal: ConfirmRefund documents that a proposal
// that cannot run now (another refund in flight) stays usable until it
// expires. Two different proposals of one order confirmed at once: the loser
// is told "another refund in progress" — and must still be confirmable once
// that refund settled.
func TestLosingConfirmKeepsItsProposal(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-rev-loser", 1) // 49.99
			const n = 8
			var ps []*store.RefundProposal
			for i := 0; i < n; i++ {
				// Each its own amount: an identical request returns the
				// open proposal.
				ps = append(ps, propose(t, e, o, 500+int64(i)))
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, n)
			for i, p := range ps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				}()
			}
			close(start)
			wg.Wait()
			var winner *store.RefundProposal
			var losers []*store.RefundProposal
			for i, err := range errs {
				switch {
				case err == nil:
					winner = ps[i]
				case errors.Is(err, payments.ErrRefundInProgress):
					losers = append(losers, ps[i])
				default:
					t.Fatalf("confirm %d: %v", i, err)
				}
			}
			if winner == nil {
				t.Fatal("no confirmation won")
			}
			if _, err := e.sim.CompleteRefund(ctx, winner.OutRefundNo); err != nil {
				t.Fatal(err)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusPartiallyRefunded {
				t.Fatalf("order %s", got.Status)
			}
			burned := 0
			for _, p := range losers {
				res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID)
				if errors.Is(err, store.ErrGone) {
					burned++
					continue
				}
				if err != nil {
					t.Fatalf("retry: %v", err)
				}
				_, _ = e.sim.CompleteRefund(ctx, p.OutRefundNo)
				_ = res
			}
			if burned > 0 {
				t.Errorf("%d of %d proposals told \"another refund in progress\" were consumed: retrying them after that refund settled is ErrGone (410)", burned, len(losers))
			}
		})
	}
}

// TestRefundsListOrdersInReviewWithTheirRefund: an order that goes to
// needs_review while its refund is with WeChat Pay (a refund paygate did not
// ask for is reported meanwhile) stays in the admin's refunds list, with the
// refund in flight; so does one in review with money refunded before. An
// order in review with no refund of paygate's (an orphan payment; an order
// whose refund WeChat Pay closed before it went to review) is not listed,
// and does not take a place in a page: the limit counts listed orders.
func TestRefundsListOrdersInReviewWithTheirRefund(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			confirm := func(o *store.Order, fen int64) *store.RefundProposal {
				t.Helper()
				p := propose(t, e, o, fen)
				if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil {
					t.Fatalf("confirm: %v", err)
				}
				return p
			}
			unasked := func(o *store.Order, outRefundNo string) {
				t.Helper()
				if status, body := e.postRefund(o, o.TransactionID, refundWord{outRefundNo: outRefundNo, status: wechatpay.RefundSuccess, fen: 500}); status != http.StatusNoContent {
					t.Fatalf("unasked refund: %d %s", status, body)
				}
				if got := e.order(o.OrderNo); got.Status != store.StatusNeedsReview {
					t.Fatalf("after the unasked refund: %s; want needs_review", got.Status)
				}
			}

			// In review with its refund in flight.
			flying := paidOrder(t, e, "oUser-list-flying", 2)
			p := confirm(flying, 1000)
			unasked(flying, "RFunaskedList0001")
			e.clock.Advance(time.Second)

			// In review with 10.00 refunded before, nothing in flight.
			settled := paidOrder(t, e, "oUser-list-settled", 2)
			q := confirm(settled, 1000)
			if d, err := e.sim.CompleteRefund(ctx, q.OutRefundNo); err != nil || !d.Acked {
				t.Fatalf("complete: %+v %v", d, err)
			}
			unasked(settled, "RFunaskedList0002")
			e.clock.Advance(time.Second)

			// In review after a refund WeChat Pay closed: none of paygate's.
			closed := paidOrder(t, e, "oUser-list-closed", 1)
			c := confirm(closed, 0)
			if status, body := e.postRefund(closed, closed.TransactionID, refundWord{outRefundNo: c.OutRefundNo, status: wechatpay.RefundClosed, fen: closed.AmountFen}); status != http.StatusNoContent {
				t.Fatalf("closed refund: %d %s", status, body)
			}
			if got := e.order(closed.OrderNo); got.Status != store.StatusPaid {
				t.Fatalf("after the closed refund: %s; want paid", got.Status)
			}
			unasked(closed, "RFunaskedList0003")
			e.clock.Advance(time.Second)

			// An orphan payment, the newest order.
			ghost := &store.Order{OrderNo: "PGghostList000000001", AppID: e.sim.AppID(), User: "oGhost-list", AmountFen: 777}
			n := e.buildPayment(e.paidTx(ghost), nil)
			if status, _ := e.post(n.Header, n.Body); status != http.StatusNoContent {
				t.Fatalf("orphan: %d", status)
			}

			list := func(limit int) string {
				t.Helper()
				entries, err := e.svc.Refunds(ctx, limit)
				if err != nil {
					t.Fatalf("refunds: %v", err)
				}
				var s []string
				for _, en := range entries {
					flight := "-"
					if en.InFlight != nil {
						flight = en.InFlight.OutRefundNo
						if en.ConfirmedAt.IsZero() {
							t.Errorf("%s: in flight without its confirmation time", en.Order.OrderNo)
						}
					}
					s = append(s, en.Order.OrderNo+" "+string(en.Order.Status)+" "+flight)
				}
				return strings.Join(s, "\n")
			}
			want := strings.Join([]string{
				settled.OrderNo + " needs_review -",
				flying.OrderNo + " needs_review " + p.OutRefundNo,
			}, "\n")
			if got := list(0); got != want {
				t.Errorf("refunds:\n%s\nwant\n%s", got, want)
			}
			if got, want := list(1), settled.OrderNo+" needs_review -"; got != want {
				t.Errorf("refunds, limit 1:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestRefundsPage: the refunds list is newest first and capped, so a refund
// still in flight behind newer finished ones is reached only by paging on:
// every page size shows every listed order once, in order, the one in
// flight with its refund, and orders in review with no refund take no place
// in a page (the scan of needs_review goes on past them, from the cursor).
func TestRefundsPage(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			// The oldest: paid, its refund confirmed and in flight.
			flying := paidOrder(t, e, "oUser-page-flying", 1)
			p := propose(t, e, flying, 0)
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", flying.User, p.RefundID); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			base := e.clock.Now().Add(time.Minute).Truncate(time.Second)
			for _, o := range []struct {
				no       string
				st       store.OrderStatus
				at       time.Duration
				refunded int64
			}{
				{"PGRFNDPAGE0001", store.StatusRefunded, 500 * time.Millisecond, 4999},
				{"PGRFNDPAGE0002", store.StatusPartiallyRefunded, 500 * time.Millisecond, 1000},
				{"PGRFNDPAGE0003", store.StatusNeedsReview, 500 * time.Millisecond, 500},
				{"PGRFNDPAGE0004", store.StatusNeedsReview, 900 * time.Millisecond, 0}, // no refund: not listed
				{"PGRFNDPAGE0005", store.StatusNeedsReview, 910 * time.Millisecond, 0},
				{"PGRFNDPAGE0006", store.StatusNeedsReview, 920 * time.Millisecond, 0},
				{"PGRFNDPAGE0007", store.StatusPaid, 1000 * time.Millisecond, 0}, // no refund: not listed
				{"PGRFNDPAGE0008", store.StatusNeedsReview, 1200 * time.Millisecond, 700},
				{"PGRFNDPAGE0009", store.StatusRefunded, 1500 * time.Millisecond, 4999},
			} {
				if err := e.st.CreateOrder(ctx, &store.Order{OrderNo: o.no, Client: "shop-bot", User: "oUser-" + o.no, SKU: "premium-monthly",
					Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: o.st, RefundedFen: o.refunded,
					ClaimKey: "k" + o.no, Generation: 1, CreatedAt: base.Add(o.at), ExpiresAt: base.Add(2 * time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			want := fmt.Sprint([]string{"PGRFNDPAGE0009", "PGRFNDPAGE0008", "PGRFNDPAGE0003", "PGRFNDPAGE0002", "PGRFNDPAGE0001", flying.OrderNo})
			for _, limit := range []int{1, 2, 3, 6, 7} {
				var inFlight string
				got := walkPages(t, limit, func(pg payments.Page) ([]*store.Order, error) {
					entries, err := e.svc.RefundsPage(ctx, pg)
					out := make([]*store.Order, 0, len(entries))
					for _, en := range entries {
						out = append(out, en.Order)
						if en.InFlight != nil {
							inFlight += en.Order.OrderNo + " " + en.InFlight.OutRefundNo
						}
					}
					return out, err
				})
				if fmt.Sprint(got) != want {
					t.Errorf("limit %d: paged through %v; want %s", limit, got, want)
				}
				if w := flying.OrderNo + " " + p.OutRefundNo; inFlight != w {
					t.Errorf("limit %d: in flight %q; want %q", limit, inFlight, w)
				}
			}
		})
	}
}

// slowReserve is a local store whose write reserving an order for a refund
// takes 2 ms of the clock: a proposal tapped just before its expiry lapses
// while the order is reserved.
type slowReserve struct {
	fullStore
	clk *storetest.Clock
}

func (s slowReserve) Local() bool { return true }

func (s slowReserve) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, events ...store.Event) error {
	err := s.fullStore.UpdateOrder(ctx, o, expect, events...)
	if err == nil && o.Status == store.StatusRefunding {
		s.clk.Advance(2 * time.Millisecond)
	}
	return err
}

// TestConfirmAtTheTTLEdgeOnOneReplica: a confirmation tapped 1 ms before the
// proposal's expiry, which lapsed while the order was being reserved, is told
// the proposal is gone; the order stayed refunding for a minute (the
// allowance for another replica's slower clock), its other refunds refused
// as "in progress". On a store only this process uses, no other replica can
// take the proposal: the reservation is undone at once.
func TestConfirmAtTheTTLEdgeOnOneReplica(t *testing.T) {
	clk := storetest.NewClock()
	clk.Advance(time.Now().Sub(clk.Now())) // the simulator signs with the real time
	st := openStoreAt(t, "embedded", clk.Now)
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Now = clk.Now
		o.Store = slowReserve{fullStore: st, clk: clk}
	}})
	ctx := context.Background()
	const user = "oUser-edge-refund"
	res, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := e.sim.Pay(ctx, res.Order.OrderNo); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	p, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: user, OrderNo: res.Order.OrderNo})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(p.ExpiresAt.Add(-time.Millisecond).Sub(clk.Now()))
	if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", user, p.RefundID); !errors.Is(err, store.ErrGone) {
		t.Fatalf("the tap 1 ms before expiry: %v; want gone (the proposal lapsed during the reservation)", err)
	}
	if got, _ := st.GetOrder(ctx, res.Order.OrderNo); got.Status != store.StatusPaid {
		t.Errorf("told the proposal is gone, the order is %s; want paid", got.Status)
	}
	if _, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: user, OrderNo: res.Order.OrderNo}); err != nil {
		t.Errorf("a new refund request: %v; want a proposal", err)
	}
}

// TestRefundReasonFitsWeChatsLimitEitherWay: the user's reason is cut to 80
// bytes on a character boundary. WeChat Pay's reason is string[1,80], its
// documents silent on characters or bytes; cut to 80 characters, a Chinese
// reason of 81 kept 240 bytes, which the bytes reading refuses with
// PARAM_ERROR, failing the refund the user had confirmed.
func TestRefundReasonFitsWeChatsLimitEitherWay(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	o := paidOrder(t, e, "oUser-reason", 1)
	long := strings.Repeat("买错了", 30) // 90 characters, 270 bytes
	p, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: long})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Reason) > 80 || !utf8.ValidString(p.Reason) || !strings.HasPrefix(long, p.Reason) || len(p.Reason) < 78 {
		t.Errorf("reason kept: %q (%d bytes); want the longest prefix of whole characters within 80 bytes", p.Reason, len(p.Reason))
	}
	// Invalid UTF-8 counts as nothing: kept, JSON would store each byte as a
	// three-byte U+FFFD, 80 bytes becoming 240.
	o2 := paidOrder(t, e, "oUser-reason2", 1)
	p, _, err = e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o2.User, OrderNo: o2.OrderNo, Reason: strings.Repeat("\xff", 90)})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.st.GetRefundProposal(ctx, p.RefundID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Reason) > 80 {
		t.Errorf("a reason of invalid bytes came back from the store as %d bytes; want at most 80", len(stored.Reason))
	}
}

// TestStoredLongRefundReasonIsCutWhenSent: a proposal already in the store
// with a reason above 80 bytes (written by a release that cut it to 80
// characters, still open across the upgrade or on a replica not yet
// upgraded) is sent to WeChat Pay with its reason cut to 80 bytes: sent
// whole, WeChat Pay refuses it with PARAM_ERROR and the refund the user
// confirms fails.
func TestStoredLongRefundReasonIsCutWhenSent(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			o := paidOrder(t, e, "oUser-oldreason", 1)
			p, _, err := e.svc.ProposeRefund(ctx, payments.RefundRequest{Client: "shop-bot", User: o.User, OrderNo: o.OrderNo, Reason: "r"})
			if err != nil {
				t.Fatal(err)
			}
			old := *p
			old.RefundID = "rf_oldReleaseProposal000001"
			old.OutRefundNo = payments.OutRefundNo(old.RefundID)
			old.Reason = strings.Repeat("买错了", 27) // 81 characters cut to 80: 240 bytes
			if err := e.st.PutRefundProposal(ctx, &old, time.Hour); err != nil {
				t.Fatalf("store a proposal as the release before wrote it: %v", err)
			}
			if _, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, old.RefundID); err != nil {
				t.Fatalf("confirm a proposal with a 240-byte reason: %v", err)
			}
			if n := e.sim.RefundCount(""); n != 1 {
				t.Errorf("refunds at WeChat Pay: %d; want 1", n)
			}
		})
	}
}

// movingRefund is a store in which, once the refunds list has read the
// refunding orders, one order's refund changes its status before the next
// status is read: move runs once, after the first list of status from.
type movingRefund struct {
	fullStore
	from store.OrderStatus
	move func()
	once *sync.Once
}

func (s movingRefund) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	out, err := s.fullStore.ListOrders(ctx, f)
	if err == nil && f.Status == s.from {
		s.once.Do(s.move)
	}
	return out, err
}

// TestRefundsPageWhileARefundMoves: a refund whose status changes while a
// page of the refunds list is read (its REFUND.SUCCESS applied, or a
// second refund confirmed on a partly refunded order) is listed once, as it
// now stands: not twice on the page (refunding, then refunded), nor left
// off every page (partially_refunded when the refunding orders were read,
// refunding when the partly refunded ones were).
func TestRefundsPageWhileARefundMoves(t *testing.T) {
	for _, driver := range drivers(t) {
		for _, tc := range []struct {
			name     string
			from, to store.OrderStatus
			readAt   store.OrderStatus // the list read after which it moves
		}{
			{"refund succeeds", store.StatusRefunding, store.StatusRefunded, store.StatusRefunding},
			{"second refund confirmed", store.StatusPartiallyRefunded, store.StatusRefunding, store.StatusRefunding},
		} {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				st := openStore(t, driver)
				const no = "PGRFNDMOVE0001"
				s := movingRefund{fullStore: st, from: tc.readAt, once: &sync.Once{}}
				s.move = func() {
					o, err := st.GetOrder(ctx, no)
					if err != nil {
						t.Errorf("get: %v", err)
						return
					}
					o.Status = tc.to
					if err := st.UpdateOrder(ctx, o, tc.from); err != nil {
						t.Errorf("move: %v", err)
					}
				}
				e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) { o.Store = s }})
				at := e.clock.Now().Truncate(time.Second)
				for i, o := range []struct {
					no string
					st store.OrderStatus
				}{{"PGRFNDMOVE0000", store.StatusRefunded}, {no, tc.from}, {"PGRFNDMOVE0002", store.StatusPartiallyRefunded}} {
					if err := st.CreateOrder(ctx, &store.Order{OrderNo: o.no, Client: "shop-bot", User: "oUser-" + o.no, SKU: "premium-monthly",
						Quantity: 1, AmountFen: 4999, Currency: "CNY", PayMethod: "jsapi", Status: o.st, RefundedFen: 1000,
						ClaimKey: "k" + o.no, Generation: 1, CreatedAt: at.Add(time.Duration(i) * time.Second), ExpiresAt: at.Add(2 * time.Hour)}); err != nil {
						t.Fatal(err)
					}
				}
				entries, err := e.svc.RefundsPage(ctx, payments.Page{Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, en := range entries {
					got = append(got, en.Order.OrderNo+" "+string(en.Order.Status))
				}
				want := []string{"PGRFNDMOVE0002 partially_refunded", no + " " + string(tc.to), "PGRFNDMOVE0000 refunded"}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("listed %q; want %q", got, want)
				}
			})
		}
	}
}
