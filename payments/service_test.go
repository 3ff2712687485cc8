package payments_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

func TestCreateOrder(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			ctx := context.Background()
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-create", SKU: "premium-monthly", Quantity: 3}
			first, err := e.svc.CreateOrder(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			o := first.Order
			if o.Status != store.StatusAwaitingPayment || o.AmountFen != 14997 || o.Currency != "CNY" || o.PrepayID == "" || first.Payment == nil || first.Existing {
				t.Fatalf("first: got %+v payment=%v", o, first.Payment)
			}
			if err := wechatpay.ValidOutTradeNo(o.OrderNo); err != nil {
				t.Errorf("number: %v", err)
			}
			tx, ok := e.sim.Order(o.OrderNo)
			if !ok || tx.Amount.Total != 14997 || tx.Payer.OpenID != "oUser-create" {
				t.Errorf("at the simulator: got %+v; want 149.97 for the user", tx)
			}
			// Asked again: the same order, fresh payment parameters, no prepay.
			again, err := e.svc.CreateOrder(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if again.Order.OrderNo != o.OrderNo || !again.Existing || again.Payment == nil || again.Payment.Package != first.Payment.Package {
				t.Errorf("again: got %+v; want the same order and prepay_id", again.Order)
			}
			if n := e.sim.Prepays(o.OrderNo); n != 1 {
				t.Errorf("prepays: got %d; want 1", n)
			}
			// Another quantity is another purchase.
			other, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-create", SKU: "premium-monthly", Quantity: 1})
			if err != nil || other.Order.OrderNo == o.OrderNo {
				t.Errorf("other quantity: got %v, %v; want a new order", other, err)
			}
			// Native gives a code URL (another quantity: another purchase;
			// TestSwitchingPayMethod covers the same one paid another way).
			nat, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-create", SKU: "premium-monthly", Quantity: 2, PayMethod: "native"})
			if err != nil || !strings.HasPrefix(nat.CodeURL, "weixin://") || nat.Order.CodeURL != nat.CodeURL {
				t.Errorf("native: got %+v, %v", nat, err)
			}
			// Paid: the purchase answers already paid, no second order.
			if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
				t.Fatal(err)
			}
			paid, err := e.svc.CreateOrder(ctx, req)
			if err != nil || paid.Order.OrderNo != o.OrderNo || paid.Order.Status != store.StatusPaid {
				t.Errorf("after payment: got %+v, %v; want the paid order", paid, err)
			}
			// Closed: the next request starts a new generation with a new number.
			closed, err := e.svc.CloseOrder(ctx, other.Order.OrderNo)
			if err != nil || closed.Status != store.StatusClosed {
				t.Fatalf("close: got %v, %v", closed, err)
			}
			if tx, _ := e.sim.Order(other.Order.OrderNo); tx.TradeState != "CLOSED" {
				t.Errorf("closed at the simulator: got %s", tx.TradeState)
			}
			next, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oUser-create", SKU: "premium-monthly", Quantity: 1})
			if err != nil {
				t.Fatal(err)
			}
			if next.Order.OrderNo == other.Order.OrderNo || next.Order.Generation != other.Order.Generation+1 {
				t.Errorf("after close: got %s gen %d; want a new number, generation %d", next.Order.OrderNo, next.Order.Generation, other.Order.Generation+1)
			}
		})
	}
}

func TestCreateOrderRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name string
		req  payments.CreateRequest
		want error
	}{
		{name: "no user", req: payments.CreateRequest{Client: "c", SKU: "premium-monthly"}, want: payments.ErrUserRequired},
		{name: "unknown sku", req: payments.CreateRequest{Client: "c", User: "u", SKU: "free-money"}, want: payments.ErrUnknownSKU},
		{name: "quantity above max", req: payments.CreateRequest{Client: "c", User: "u", SKU: "premium-monthly", Quantity: 13}, want: payments.ErrQuantity},
		{name: "negative quantity", req: payments.CreateRequest{Client: "c", User: "u", SKU: "premium-monthly", Quantity: -1}, want: payments.ErrQuantity},
		{name: "unknown pay method", req: payments.CreateRequest{Client: "c", User: "u", SKU: "premium-monthly", PayMethod: "cash"}, want: payments.ErrPayMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.svc.CreateOrder(context.Background(), tt.req); !errors.Is(err, tt.want) {
				t.Errorf("got %v; want %v", err, tt.want)
			}
		})
	}
	if n := e.sim.OrderCount(); n != 0 {
		t.Errorf("orders at the simulator: got %d; want 0", n)
	}
}

// TestCreateOrderConcurrent: many concurrent create_order calls for one
// purchase make one order and one charge.
func TestCreateOrderConcurrent(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			const n = 20
			nos := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-race", SKU: "premium-monthly"})
					errs[i] = err
					if res != nil && res.Order != nil {
						nos[i] = res.Order.OrderNo
					}
				}()
			}
			close(start)
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Errorf("call %d: %v", i, errs[i])
				}
				if nos[i] != nos[0] {
					t.Errorf("call %d got order %s; call 0 got %s", i, nos[i], nos[0])
				}
			}
			if got := e.sim.OrderCount(); got != 1 {
				t.Errorf("orders at the simulator: got %d; want 1", got)
			}
		})
	}
}

func TestPrepayTimeoutRetryReusesNumber(t *testing.T) {
	e := newEnv(t, envOptions{client: func(c *wechatpay.Config) { c.AttemptTimeout = faultAttemptTimeout }})
	e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultTimeout})
	res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-timeout", SKU: "premium-monthly"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Order.Status != store.StatusAwaitingPayment {
		t.Errorf("status: got %s; want awaiting_payment", res.Order.Status)
	}
	if got := e.sim.Prepays(res.Order.OrderNo); got != 2 {
		t.Errorf("prepays of the number: got %d; want 2 (the lost one and its retry)", got)
	}
	if got := e.sim.OrderCount(); got != 1 {
		t.Errorf("orders at the simulator: got %d; want 1", got)
	}
}

func TestPrepayOrderPaidResolvesToPaid(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultOrderPaid})
	res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-orderpaid", SKU: "premium-monthly"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Order.Status != store.StatusPaid || res.Order.TransactionID == "" {
		t.Errorf("got %s txid=%q; want paid", res.Order.Status, res.Order.TransactionID)
	}
}

func TestPrepayRejectedClosesOrder(t *testing.T) {
	e := newEnv(t, envOptions{sim: wxsim.Options{AppIDs: []string{"wx-bound-app-only"}}})
	res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-rejected", SKU: "premium-monthly"})
	if !errors.Is(err, payments.ErrPrepayRejected) {
		t.Fatalf("got %v; want ErrPrepayRejected", err)
	}
	if res.Order.Status != store.StatusClosed {
		t.Errorf("order: got %s; want closed", res.Order.Status)
	}
}

type callerKey struct{}

func callerOf(ctx context.Context) string { s, _ := ctx.Value(callerKey{}).(string); return s }

// stallStore orders two CreateOrder calls for one purchase into the
// interleaving of a claimer that stalls before recording its order: caller
// "A" claims the purchase and then waits; caller "B" waits for A's record,
// finds none (each miss moves the clock a second on, so B's 3 s wait passes
// at once) and takes the claim over; A records its number only once B has
// started taking over, and B's claim advance lands only after A re-checked
// its claim, the last moment A looks before it prepays.
type stallStore struct {
	fullStore
	clock      *offsetClock
	aClaimed   chan struct{} // A holds the claim: B may start
	bTakesOver chan struct{} // B has decided A's number is gone
	aRechecked chan struct{} // A read the claim again after recording
	once       [3]sync.Once
	mu         sync.Mutex
	aClaims    int
}

func (h *stallStore) ClaimPurchase(ctx context.Context, key, no string, ttl time.Duration) (store.Claim, bool, error) {
	c, created, err := h.fullStore.ClaimPurchase(ctx, key, no, ttl)
	if callerOf(ctx) == "A" {
		h.mu.Lock()
		h.aClaims++
		n := h.aClaims
		h.mu.Unlock()
		switch n {
		case 1:
			h.once[0].Do(func() { close(h.aClaimed) })
		case 2:
			h.once[2].Do(func() { close(h.aRechecked) })
		}
	}
	return c, created, err
}

func (h *stallStore) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	o, err := h.fullStore.GetOrder(ctx, no)
	if callerOf(ctx) == "B" && errors.Is(err, store.ErrNotFound) {
		h.clock.Advance(time.Second)
	}
	return o, err
}

func (h *stallStore) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	switch callerOf(ctx) {
	case "A":
		<-h.bTakesOver
	case "B":
		h.once[1].Do(func() { close(h.bTakesOver) })
	}
	return h.fullStore.CreateOrder(ctx, o, ev...)
}

func (h *stallStore) AdvanceClaim(ctx context.Context, key string, from int, no string, ttl time.Duration) (store.Claim, bool, error) {
	if callerOf(ctx) == "B" {
		h.once[1].Do(func() { close(h.bTakesOver) })
		<-h.aRechecked
	}
	return h.fullStore.AdvanceClaim(ctx, key, from, no, ttl)
}

// TestCreateOrderStalledClaimerTakenOver: a claimer that stalls past the
// others' wait and then records its order, while another request for the
// same purchase takes the claim over, must not leave the purchase with two
// payable orders: both requests end on one order, prepaid once.
func TestCreateOrderStalledClaimerTakenOver(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			var h *stallStore
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				h = &stallStore{fullStore: o.Store.(fullStore), aClaimed: make(chan struct{}),
					bTakesOver: make(chan struct{}), aRechecked: make(chan struct{})}
				o.Store = h
				o.Rules.MaxOrdersPerUserPerDay = 2
			}})
			h.clock = e.clock
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-stall", SKU: "premium-monthly"}
			type result struct {
				res *payments.CreateResult
				err error
			}
			a, b := make(chan result, 1), make(chan result, 1)
			go func() {
				res, err := e.svc.CreateOrder(context.WithValue(context.Background(), callerKey{}, "A"), req)
				a <- result{res, err}
			}()
			<-h.aClaimed
			go func() {
				res, err := e.svc.CreateOrder(context.WithValue(context.Background(), callerKey{}, "B"), req)
				b <- result{res, err}
			}()
			ra, rb := <-a, <-b
			if ra.err != nil || rb.err != nil {
				t.Fatalf("errors: A %v, B %v", ra.err, rb.err)
			}
			if ra.res.Order.OrderNo != rb.res.Order.OrderNo {
				t.Errorf("one purchase, two orders: A got %s (%s), B got %s (%s)",
					ra.res.Order.OrderNo, ra.res.Order.Status, rb.res.Order.OrderNo, rb.res.Order.Status)
			}
			if got := ra.res.Order.Status; got != store.StatusAwaitingPayment {
				t.Errorf("status: got %s; want awaiting_payment", got)
			}
			if got := e.sim.OrderCount(); got != 1 {
				t.Errorf("orders at the simulator: got %d; want 1", got)
			}
			// One order was made, so one of the day's two is left: the
			// stalled claimer's count went back with its number.
			if _, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: req.User, SKU: "premium-monthly", Quantity: 2}); err != nil {
				t.Errorf("the user's second order of the day: %v; want it made", err)
			}
		})
	}
}

// TestCreateOrderToolReportsPrepayOutcome: the model is told what became of
// an order WeChat Pay did not open. A refusal closes the order for good, so it
// is "failed" with words the model can pass on (telling the user to wait
// would be a lie); an unknown outcome leaves the order for the reconciler and
// stays "pending".
func TestCreateOrderToolReportsPrepayOutcome(t *testing.T) {
	tests := []struct {
		name       string
		sim        wxsim.Options
		fault      *wxsim.Fault
		wantOrder  store.OrderStatus
		wantStatus string
		wantError  string // in the tool result's "error"; "" for none
	}{
		{name: "refused", sim: wxsim.Options{AppIDs: []string{"wx-bound-app-only"}},
			wantOrder: store.StatusClosed, wantStatus: "failed", wantError: "WeChat Pay refused the order"},
		{name: "no answer", fault: &wxsim.Fault{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 100},
			wantOrder: store.StatusCreating, wantStatus: "pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{sim: tt.sim})
			if tt.fault != nil {
				e.sim.InjectFault(*tt.fault)
			}
			tc := call(t, newTools(e), caller("oUser-outcome-"+tt.name), "create_order", `{"sku":"premium-monthly"}`)
			no, _ := tc.result["order_no"].(string)
			if got := e.order(no).Status; got != tt.wantOrder {
				t.Fatalf("order %s; want %s", got, tt.wantOrder)
			}
			msg, _ := tc.result["error"].(string)
			if tc.result["status"] != tt.wantStatus || (tt.wantError == "") != (msg == "") || !strings.Contains(msg, tt.wantError) {
				t.Errorf("tool result %s; want status %q, error %q", tc.out.Result, tt.wantStatus, tt.wantError)
			}
			if tc.out.Action != nil {
				t.Errorf("action %s for an order that cannot be paid", tc.out.Action)
			}
			if !tc.out.Failed || !tc.out.Executed {
				t.Errorf("outcome %+v; want executed and failed (the tool-call metric counts it as failed)", tc.out)
			}
		})
	}
}

// TestCreateOrderPastDedupeWindowKeepsOpenOrder: a purchase's claim lapses
// dedupe_window after the last ask, but its order stays payable for order_ttl
// (or waits for a manager for approval_ttl). Asked again in between, however
// many requests at once, the purchase must get that same order back — a
// second payable order would let the user pay twice for one purchase. Once
// the order is past its deadline, the next ask makes a new one.
func TestCreateOrderPastDedupeWindowKeepsOpenOrder(t *testing.T) {
	tests := []struct {
		name     string
		quantity int
		approval bool
		want     store.OrderStatus
	}{
		{name: "awaiting payment", quantity: 1, want: store.StatusAwaitingPayment},
		{name: "held for approval", quantity: 2, approval: true, want: store.StatusApprovalRequired},
	}
	for _, driver := range drivers(t) {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, envOptions{driver: driver, storeClock: true, service: func(o *payments.Options) {
					o.DedupeWindow = 10 * time.Minute // config defaults
					o.OrderTTL = 2 * time.Hour
					if tt.approval {
						o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
					}
				}})
				ctx := context.Background()
				req := payments.CreateRequest{Client: "shop-bot", User: "oUser-past-window", SKU: "premium-monthly", Quantity: tt.quantity}
				first, err := e.svc.CreateOrder(ctx, req)
				if err != nil || first.Order.Status != tt.want {
					t.Fatalf("first: %+v, %v; want %s", first, err, tt.want)
				}
				no := first.Order.OrderNo
				// Back after the window, twice (the claim lapses again).
				for round := range 2 {
					e.clock.Advance(11 * time.Minute)
					const n = 20
					got := make([]*payments.CreateResult, n)
					errs := make([]error, n)
					var wg sync.WaitGroup
					start := make(chan struct{})
					for i := range n {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							got[i], errs[i] = e.svc.CreateOrder(ctx, req)
						}()
					}
					close(start)
					wg.Wait()
					for i := range n {
						if errs[i] != nil || got[i] == nil || got[i].Order.OrderNo != no || got[i].Order.Status != tt.want {
							var o store.Order
							if got[i] != nil && got[i].Order != nil {
								o = *got[i].Order
							}
							t.Fatalf("round %d, call %d: order %q (%s, generation %d), %v; want %s (%s) again", round, i, o.OrderNo, o.Status, o.Generation, errs[i], no, tt.want)
						}
						if tt.want == store.StatusAwaitingPayment && got[i].Payment == nil {
							t.Errorf("round %d, call %d: no payment parameters", round, i)
						}
					}
				}
				list, _, err := e.svc.UserOrders(ctx, "shop-bot", req.User, "", 0)
				if err != nil || len(list) != 1 {
					t.Errorf("the user's orders: %d, %v; want the one", len(list), err)
				}
				if n := e.sim.OrderCount(); n != map[bool]int{false: 1, true: 0}[tt.approval] {
					t.Errorf("orders at the simulator: %d", n)
				}
				// Past the order's own deadline the purchase starts afresh.
				e.clock.Advance(first.Order.ExpiresAt.Sub(e.clock.Now()) + time.Minute)
				next, err := e.svc.CreateOrder(ctx, req)
				if err != nil || next.Order.OrderNo == no || next.Order.Status != tt.want {
					t.Fatalf("past the deadline: %+v, %v; want a new %s order", next, err, tt.want)
				}
				if s := e.order(no).Status; s != store.StatusExpired {
					t.Errorf("the first order past its deadline: %s; want expired", s)
				}
			})
		}
	}
}
