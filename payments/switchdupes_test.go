package payments_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// guardStore orders two switches of pay method of one order: A raises the
// switch guard and waits until B has raised it too, so that B finds the
// guard raised before A has written its mark.
type guardStore struct {
	fullStore
	aRaised, bRaised chan struct{}
	aOnce, bOnce     sync.Once
}

func (g *guardStore) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	n, err := g.fullStore.IncrCounter(ctx, key, ttl)
	if strings.HasPrefix(key, "switch-guard:") {
		switch callerOf(ctx) {
		case "A":
			g.aOnce.Do(func() {
				close(g.aRaised)
				<-g.bRaised
			})
		case "B":
			g.bOnce.Do(func() { close(g.bRaised) })
		}
	}
	return n, err
}

// codeURLOf is the code_url and order number of a create_order outcome's
// action ("" when there is none).
func codeURLOf(t *testing.T, out payments.Outcome) (codeURL, orderNo string) {
	t.Helper()
	if out.Action == nil {
		return "", ""
	}
	var a struct {
		CodeURL string `json:"code_url"`
		Order   struct {
			OrderNo string `json:"order_no"`
		} `json:"order"`
	}
	if err := json.Unmarshal(out.Action, &a); err != nil {
		t.Fatalf("action %s: %v", out.Action, err)
	}
	return a.CodeURL, a.Order.OrderNo
}

// TestDuplicateSwitchWhileGuardRaisedGetsTheReplacement: a JSAPI order is
// open and the bot asks for a QR code twice (an SDK retry, a double tap).
// The copy that lands while the first has raised the switch guard but not
// yet written its mark waits for the switch and gets the same native order
// with its code_url (SPEC 4: a repeated create_order returns the same order
// however many concurrent requests see it), not "failed".
func TestDuplicateSwitchWhileGuardRaisedGetsTheReplacement(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var g *guardStore
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				g = &guardStore{fullStore: o.Store.(fullStore), aRaised: make(chan struct{}), bRaised: make(chan struct{})}
				o.Store = g
				o.Rules.MaxOrdersPerUserPerDay = 20
			}})
			user := "oUser-switch-dupes"
			first := e.create(user, 1)
			tools := newTools(e)
			args := `{"sku":"premium-monthly","pay_method":"native"}`
			a := make(chan payments.Outcome, 1)
			go func() {
				a <- tools.Execute(context.WithValue(context.Background(), callerKey{}, "A"), caller(user), "create_order", args)
			}()
			<-g.aRaised
			b := tools.Execute(context.WithValue(context.Background(), callerKey{}, "B"), caller(user), "create_order", args)
			ra := <-a
			aURL, aNo := codeURLOf(t, ra)
			bURL, bNo := codeURLOf(t, b)
			if aURL == "" || ra.Failed {
				t.Fatalf("A: %s %s; want a native order with its code_url", ra.Result, ra.Action)
			}
			if b.Failed || bURL != aURL || bNo != aNo {
				t.Errorf("the duplicate request: %s %s (failed %v); want A's native order %s with its code_url", b.Result, b.Action, b.Failed, aNo)
			}
			if s := e.order(first.OrderNo).Status; s != store.StatusClosed {
				t.Errorf("the JSAPI order is %s; want closed, replaced", s)
			}
			if n := e.sim.OrderCount(); n != 2 {
				t.Errorf("orders at the simulator: %d; want 2 (the JSAPI order and its one replacement)", n)
			}
		})
	}
}

// TestConcurrentSwitchesAllGetTheReplacement: eight copies of the request
// for a QR code at once; every one gets the one native order that replaced
// the JSAPI order, with its code_url.
func TestConcurrentSwitchesAllGetTheReplacement(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Rules.MaxOrdersPerUserPerDay = 20
			}})
			user := "oUser-switch-eight"
			first := e.create(user, 1)
			tools := newTools(e)
			args := `{"sku":"premium-monthly","pay_method":"native"}`
			const n = 8
			outs := make([]payments.Outcome, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i] = tools.Execute(context.Background(), caller(user), "create_order", args)
				}()
			}
			wg.Wait()
			want, wantNo := codeURLOf(t, outs[0])
			for i, out := range outs {
				url, no := codeURLOf(t, out)
				if out.Failed || url == "" || url != want || no != wantNo {
					t.Errorf("request %d: %s %s (failed %v); want the one native order with its code_url", i, out.Result, out.Action, out.Failed)
				}
			}
			if s := e.order(first.OrderNo).Status; s != store.StatusClosed {
				t.Errorf("the JSAPI order is %s; want closed, replaced", s)
			}
			if n := e.sim.OrderCount(); n != 2 {
				t.Errorf("orders at the simulator: %d; want 2", n)
			}
		})
	}
}

// raisedGuard is a store in which every switch guard is already raised by a
// counter that never writes its mark (it stalls, or its replica died).
type raisedGuard struct{ fullStore }

func (g raisedGuard) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	n, err := g.fullStore.IncrCounter(ctx, key, ttl)
	if strings.HasPrefix(key, "switch-guard:") {
		n++
	}
	return n, err
}

// TestSwitchWhileGuardStuckIsPending: a switch whose guard stays raised
// with no mark past the wait is answered pending with the open order, never
// failed, and the order is left payable as it was.
func TestSwitchWhileGuardStuckIsPending(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = raisedGuard{o.Store.(fullStore)}
		o.Rules.MaxOrdersPerUserPerDay = 20
	}})
	payments.SetSwitchWait(e.svc, 20*time.Millisecond)
	user := "oUser-switch-stuck"
	first := e.create(user, 1)
	tc := call(t, newTools(e), caller(user), "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
	if tc.out.Failed || tc.result["status"] != "pending" || tc.result["order_no"] != first.OrderNo || tc.out.Action != nil {
		t.Errorf("switch with the guard stuck: %s %s (failed %v); want pending with %s, no action", tc.out.Result, tc.out.Action, tc.out.Failed, first.OrderNo)
	}
	if s := e.order(first.OrderNo).Status; s != store.StatusAwaitingPayment {
		t.Errorf("the JSAPI order is %s; want awaiting_payment, untouched", s)
	}
}
