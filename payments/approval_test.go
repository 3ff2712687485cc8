package payments_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
)

// approvalEnv holds orders above 50.00 CNY for a manager: premium-monthly x2
// (99.98) waits, x1 (49.99) does not.
func approvalEnv(t *testing.T, driver string) *env {
	return newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
		o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
	}})
}

func TestApproveCreatesThePrepay(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := approvalEnv(t, driver)
			ctx := context.Background()
			tools := newTools(e)
			u := caller("oUser-approve")
			tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			no, _ := tc.result["order_no"].(string)
			if tc.result["status"] != "approval_required" || e.sim.Prepays(no) != 0 {
				t.Fatalf("create: %s, %d prepays; want approval_required and none", tc.out.Result, e.sim.Prepays(no))
			}
			if msg, _ := tc.result["message"].(string); !strings.Contains(msg, "50.00 CNY") {
				t.Errorf("tool result message %q does not name the approval limit", msg)
			}
			queue, err := e.svc.Approvals(ctx, 0)
			if err != nil || len(queue) != 1 || queue[0].OrderNo != no {
				t.Fatalf("approvals: %v, %v; want [%s]", queue, err, no)
			}
			// The order is not payable while it waits.
			if p, code, err := e.svc.PayableParams(ctx, e.order(no)); p != nil || code != "" || err != nil {
				t.Errorf("payable params of a held order: %v %q %v; want none", p, code, err)
			}

			// Ten managers click approve at once: one prepay.
			var wg sync.WaitGroup
			var mu sync.Mutex
			won, lost := 0, 0
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := e.svc.Approve(ctx, no)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && res.Order.Status == store.StatusAwaitingPayment && res.Payment != nil:
						won++
					case errors.Is(err, payments.ErrNotAwaitingApproval):
						lost++
					default:
						t.Errorf("approve: %+v, %v", res, err)
					}
				}()
			}
			wg.Wait()
			if won != 1 || lost != 9 {
				t.Errorf("approvals won %d lost %d; want 1 and 9", won, lost)
			}
			if got := e.sim.Prepays(no); got != 1 {
				t.Errorf("prepays at WeChat Pay %d; want 1", got)
			}
			o := e.order(no)
			if o.Status != store.StatusAwaitingPayment || !o.ExpiresAt.After(testNow()) {
				t.Errorf("approved order: %s expires %v; want awaiting_payment with a future deadline", o.Status, o.ExpiresAt)
			}
			p, _, err := e.svc.PayableParams(ctx, o)
			if err != nil || p == nil || p.Package != "prepay_id="+o.PrepayID || p.PaySign == "" {
				t.Errorf("payable params: %+v, %v; want signed JSAPI parameters for %s", p, err, o.PrepayID)
			}
			if _, err := e.svc.Reject(ctx, no); !errors.Is(err, payments.ErrNotAwaitingApproval) {
				t.Errorf("reject after approval: %v; want ErrNotAwaitingApproval", err)
			}
			// The user's repeated ask returns the approved order, payable.
			again := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			if again.result["order_no"] != no || again.action["type"] != "order_created" || again.action["request_payment"] == nil {
				t.Errorf("repeat after approval: %s %s; want order_created for %s with payment parameters", again.out.Result, again.out.Action, no)
			}
			if queue, _ := e.svc.Approvals(ctx, 0); len(queue) != 0 {
				t.Errorf("approval queue after approval: %d orders; want none", len(queue))
			}
		})
	}
}

func TestRejectNeverReachesWeChatPay(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := approvalEnv(t, driver)
			ctx := context.Background()
			tools := newTools(e)
			u := caller("oUser-reject")
			tc := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			no, _ := tc.result["order_no"].(string)
			o, err := e.svc.Reject(ctx, no)
			if err != nil || o.Status != store.StatusRejected {
				t.Fatalf("reject: %+v, %v", o, err)
			}
			if _, err := e.svc.Approve(ctx, no); !errors.Is(err, payments.ErrNotAwaitingApproval) {
				t.Errorf("approve after rejection: %v; want ErrNotAwaitingApproval", err)
			}
			if _, err := e.svc.Approve(ctx, "PG000000000000nosuchorder"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("approve unknown: %v; want store.ErrNotFound", err)
			}
			if n := e.sim.OrderCount(); n != 0 {
				t.Errorf("simulator orders %d; want 0", n)
			}
			// Asking again starts a new order, held again.
			next := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			if next.result["status"] != "approval_required" || next.result["order_no"] == no {
				t.Errorf("after rejection: %s; want a new approval_required order", next.out.Result)
			}
		})
	}
}

// TestHeldOrderExpires: an order held for a manager waits at most
// payments.rules.approval_ttl (default 72h). Past it the sweep expires it
// (audited, order.closed to the merchant), a manager can no longer approve
// it — a month-old request must not be prepaid and announced to the user —
// and the user's next ask holds a new order instead of returning the dead
// one. A held order recorded before held orders had a deadline expires
// approval_ttl after it was made.
func TestHeldOrderExpires(t *testing.T) {
	const ttl = 72 * time.Hour // the default
	hold := func(t *testing.T, e *env, user string) *store.Order {
		t.Helper()
		tc := call(t, newTools(e), caller(user), "create_order", `{"sku":"premium-monthly","quantity":2}`)
		no, _ := tc.result["order_no"].(string)
		if tc.result["status"] != "approval_required" {
			t.Fatalf("create: %s; want approval_required", tc.out.Result)
		}
		return e.order(no)
	}
	expired := func(t *testing.T, e *env, no string) {
		t.Helper()
		tr := e.await(func(tr payments.Transition) bool {
			return tr.After.OrderNo == no && tr.After.Status == store.StatusExpired
		})
		if tr.Before.Status != store.StatusApprovalRequired || tr.Cause != "expire" {
			t.Errorf("transition %s -> %s (%s); want approval_required -> expired, cause expire", tr.Before.Status, tr.After.Status, tr.Cause)
		}
		if evs := webhook.Events(tr); len(evs) != 1 || !strings.Contains(string(evs[0].Payload), `"order.closed"`) {
			t.Errorf("merchant events of the expiry: %d; want one order.closed", len(evs))
		}
		if evs := audit.TransitionEvents(tr); len(evs) == 0 {
			t.Error("the expiry is not audited")
		}
		if got := e.order(no).Status; got != store.StatusExpired {
			t.Errorf("order %s; want expired", got)
		}
		if n := e.sim.Prepays(no); n != 0 {
			t.Errorf("prepays %d; want none", n)
		}
	}
	// A manager's decision on a held order: either is refused past the
	// deadline, and the order is expired, as the sweep would have it.
	decisions := []struct {
		name, past string
		decide     func(e *env, no string) error
	}{
		{"approve", "approved", func(e *env, no string) error { _, err := e.svc.Approve(context.Background(), no); return err }},
		{"reject", "rejected", func(e *env, no string) error { _, err := e.svc.Reject(context.Background(), no); return err }},
	}
	refused := func(t *testing.T, e *env, no string) {
		t.Helper()
		for _, d := range decisions {
			if err := d.decide(e, no); !errors.Is(err, payments.ErrNotAwaitingApproval) || !strings.Contains(err.Error(), "expired") {
				t.Errorf("%s past the deadline: %v; want ErrNotAwaitingApproval saying it expired", d.name, err)
			}
		}
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Run("held with a deadline", func(t *testing.T) {
				e := approvalEnv(t, driver)
				o := hold(t, e, "oUser-held-deadline")
				want := testNow().Add(ttl)
				if d := o.ExpiresAt.Sub(want); d < -2*time.Second || d > 2*time.Second {
					t.Errorf("held order expires %v; want about %v", o.ExpiresAt, want)
				}
				if v := payments.OrderView(o)["expires_at"]; v == nil {
					t.Error("the order view of a held order shows no deadline")
				}
			})
			t.Run("swept", func(t *testing.T) {
				e := approvalEnv(t, driver)
				young := hold(t, e, "oUser-held-young")
				e.clock.Advance(ttl / 2)
				old := hold(t, e, "oUser-held-old")
				e.clock.Advance(ttl/2 + time.Minute) // past the first's deadline only
				if _, err := e.svc.Sweep(context.Background()); err != nil {
					t.Fatal(err)
				}
				expired(t, e, young.OrderNo)
				refused(t, e, young.OrderNo)
				if got := e.order(old.OrderNo).Status; got != store.StatusApprovalRequired {
					t.Errorf("held order within its deadline: %s after the sweep; want approval_required", got)
				}
			})
			for _, d := range decisions {
				t.Run(d.past+" past the deadline before a sweep", func(t *testing.T) {
					e := approvalEnv(t, driver)
					o := hold(t, e, "oUser-held-late-"+d.name)
					e.clock.Advance(ttl + time.Minute)
					err := d.decide(e, o.OrderNo)
					if !errors.Is(err, payments.ErrApprovalExpired) {
						t.Errorf("%s past the deadline: %v; want ErrApprovalExpired", d.name, err)
					}
					expired(t, e, o.OrderNo)
					refused(t, e, o.OrderNo)
				})
			}
			t.Run("asked again past the deadline", func(t *testing.T) {
				e := approvalEnv(t, driver)
				o := hold(t, e, "oUser-held-again")
				e.clock.Advance(ttl + time.Minute)
				next := hold(t, e, "oUser-held-again")
				if next.OrderNo == o.OrderNo {
					t.Fatalf("asked again past the deadline: the expired held order %s again", o.OrderNo)
				}
				expired(t, e, o.OrderNo)
			})
			t.Run("recorded without a deadline", func(t *testing.T) {
				e := approvalEnv(t, driver)
				ctx := context.Background()
				made := testNow().Add(-ttl - time.Hour)
				legacy := &store.Order{OrderNo: "PG000000000000legacyheld01", Client: "shop-bot", User: "oUser-held-legacy",
					SKU: "premium-monthly", Description: "Premium tier, 1 month x2", Quantity: 2, AmountFen: 9998,
					Currency: "CNY", PayMethod: "jsapi", Status: store.StatusApprovalRequired,
					ClaimKey: "legacy", Generation: 1, CreatedAt: made}
				if err := e.st.CreateOrder(ctx, legacy); err != nil {
					t.Fatal(err)
				}
				if _, err := e.svc.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				expired(t, e, legacy.OrderNo)
				refused(t, e, legacy.OrderNo)
			})
		})
	}
}

// walkPages lists every page of an admin list, limit orders a page, each
// page asked after the last order of the one before (as the admin API's
// next_before does), until a page is not full; it returns the order
// numbers in the order listed.
func walkPages(t *testing.T, limit int, list func(payments.Page) ([]*store.Order, error)) []string {
	t.Helper()
	var seen []string
	p := payments.Page{Limit: limit}
	for range 20 {
		got, err := list(p)
		if err != nil {
			t.Fatalf("list after %v: %v", seen, err)
		}
		for _, o := range got {
			seen = append(seen, o.OrderNo)
		}
		if len(got) < limit {
			return seen
		}
		last := got[len(got)-1]
		p.Before, p.BeforeOrderNo = last.CreatedAt, last.OrderNo
	}
	t.Fatalf("no end after 20 pages: %v", seen)
	return nil
}

// TestApprovalsPage: the approval queue is listed newest first and capped,
// so its oldest orders, the nearest their approval deadline, are reached
// only by paging on: every page size shows every held order once, those of
// one instant told apart by number, and nothing else.
func TestApprovalsPage(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := approvalEnv(t, driver)
			ctx := context.Background()
			base := testNow().Add(-time.Hour).Truncate(time.Second)
			for _, o := range []struct {
				no string
				st store.OrderStatus
				at time.Duration
			}{
				{"PGHELDPAGE0000", store.StatusApprovalRequired, 100 * time.Millisecond},
				{"PGHELDPAGE0001", store.StatusApprovalRequired, 500 * time.Millisecond},
				{"PGHELDPAGE0002", store.StatusApprovalRequired, 500 * time.Millisecond},
				{"PGHELDPAGE0003", store.StatusApprovalRequired, 500 * time.Millisecond},
				{"PGHELDPAGE0004", store.StatusRejected, 700 * time.Millisecond}, // decided: not listed
				{"PGHELDPAGE0005", store.StatusApprovalRequired, 1500 * time.Millisecond},
			} {
				if err := e.st.CreateOrder(ctx, &store.Order{OrderNo: o.no, Client: "shop-bot", User: "oUser-" + o.no, SKU: "premium-monthly",
					Quantity: 2, AmountFen: 9998, Currency: "CNY", PayMethod: "jsapi", Status: o.st, ClaimKey: "k" + o.no, Generation: 1,
					CreatedAt: base.Add(o.at), ExpiresAt: base.Add(72 * time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			want := "[PGHELDPAGE0005 PGHELDPAGE0003 PGHELDPAGE0002 PGHELDPAGE0001 PGHELDPAGE0000]"
			for _, limit := range []int{1, 2, 3, 5, 6} {
				got := walkPages(t, limit, func(p payments.Page) ([]*store.Order, error) { return e.svc.ApprovalsPage(ctx, p) })
				if fmt.Sprint(got) != want {
					t.Errorf("limit %d: paged through %v; want %s", limit, got, want)
				}
			}
		})
	}
}
