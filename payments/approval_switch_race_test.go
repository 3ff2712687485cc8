package payments_test

import (
	"context"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// decideOnRead is a store that, once armed with an order number, runs
// decide right after the next read of that order and hands the caller the
// record as it was read: a manager's decision landing between the moment a
// request read the held order and the moment it acts on it.
type decideOnRead struct {
	fullStore
	mu     sync.Mutex
	no     string
	decide func()
}

func (d *decideOnRead) arm(no string, decide func()) {
	d.mu.Lock()
	d.no, d.decide = no, decide
	d.mu.Unlock()
}

func (d *decideOnRead) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	o, err := d.fullStore.GetOrder(ctx, no)
	d.mu.Lock()
	f := d.decide
	if no != d.no {
		f = nil
	}
	if f != nil {
		d.no, d.decide = "", nil
	}
	d.mu.Unlock()
	if f != nil {
		f()
	}
	return o, err
}

// TestSwitchOfAHeldOrderApprovedMeanwhile: the user asks for their held
// order to be paid the other way (a QR code) just as a manager approves it.
// The approval opened the order at WeChat Pay in the old method, so the
// ask must be judged as an ask for an open order: switched to the method
// asked for, with a payment the user can use, the approval carried. It was
// answered with the approved order as if it were still held: an
// order_created with no payment parameters at all, of the method the user
// did not ask for, which also used up the approved order's one
// announcement, so the user was never handed a way to pay. Rejected
// meanwhile, the ask is a new ask after a rejection: a new held order, as
// asking again after a rejection always is, not the rejected one reported
// as if it still stood.
func TestSwitchOfAHeldOrderApprovedMeanwhile(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var st *decideOnRead
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
				st = &decideOnRead{fullStore: o.Store.(fullStore)}
				o.Store = st
			}})
			ctx := context.Background()
			tools := newTools(e)
			u := caller("oUser-switch-approved")
			held := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":2}`)
			no, _ := held.result["order_no"].(string)
			if held.result["status"] != "approval_required" {
				t.Fatalf("create: %s; want approval_required", held.out.Result)
			}
			st.arm(no, func() {
				if _, err := e.svc.Approve(ctx, no); err != nil {
					t.Errorf("approve: %v", err)
				}
			})
			got := call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":2,"pay_method":"native"}`)
			if e.order(no).Status == store.StatusApprovalRequired {
				t.Fatalf("the approval did not land between the read and the switch")
			}
			if got.action["type"] != "order_created" {
				t.Fatalf("switch after approval: %s %s; want an order_created action", got.out.Result, got.out.Action)
			}
			order, _ := got.action["order"].(map[string]any)
			if order["pay_method"] != "native" || got.action["code_url"] == nil {
				t.Errorf("switch after approval handed %s; want a native order with its code_url", got.out.Action)
			}
			if order["status"] != "awaiting_payment" || got.result["status"] != "awaiting_payment" {
				t.Errorf("switch after approval: %s; want awaiting_payment, not held again", got.out.Result)
			}

			// Rejected between the read and the switch.
			u = caller("oUser-switch-rejected")
			held = call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":3}`)
			no, _ = held.result["order_no"].(string)
			st.arm(no, func() {
				if _, err := e.svc.Reject(ctx, no); err != nil {
					t.Errorf("reject: %v", err)
				}
			})
			got = call(t, tools, u, "create_order", `{"sku":"premium-monthly","quantity":3,"pay_method":"native"}`)
			if e.order(no).Status != store.StatusRejected {
				t.Fatalf("the rejection did not land between the read and the switch")
			}
			order, _ = got.action["order"].(map[string]any)
			if got.result["status"] != "approval_required" || got.result["order_no"] == no || order["pay_method"] != "native" {
				t.Errorf("switch after rejection: %s %s; want a new native order held for approval", got.out.Result, got.out.Action)
			}
		})
	}
}
