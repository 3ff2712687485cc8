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
	"github.com/paygate/paygate/store"
)

// errStoreDown is what a store outage looks like to payments.
var errStoreDown = fmt.Errorf("redis: %w: connection refused", store.ErrUnavailable)

// recordedAnswer checks the tool result of a create_order whose order was
// recorded before the store failed: it names the order, says pending (the
// sweep finishes it), counts as failed on the tool-call metric, and never
// says that no order was created.
func recordedAnswer(t *testing.T, e *env, tc toolCall) *store.Order {
	t.Helper()
	if strings.Contains(string(tc.out.Result), "no order was created") {
		t.Errorf("tool result %s tells the model no order was created; the order is recorded", tc.out.Result)
	}
	no, _ := tc.result["order_no"].(string)
	if no == "" || tc.result["status"] != "pending" {
		t.Fatalf("tool result %s; want status pending with the recorded order's number", tc.out.Result)
	}
	if msg, _ := tc.result["message"].(string); !strings.Contains(msg, "temporarily unavailable") {
		t.Errorf("tool result %s; want a message saying payments are temporarily unavailable", tc.out.Result)
	}
	if !tc.out.Failed || !tc.out.Executed || tc.out.Action != nil {
		t.Errorf("outcome %+v; want executed, failed (an outage), no action", tc.out)
	}
	return e.order(no)
}

// downAfterPrepay goes down right after WeChat Pay opened the order: the
// write that records the prepay (creating -> awaiting_payment) fails.
type downAfterPrepay struct{ fullStore }

func (d *downAfterPrepay) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	if expect == store.StatusCreating && o.Status == store.StatusAwaitingPayment {
		return errStoreDown
	}
	return d.fullStore.UpdateOrder(ctx, o, expect, ev...)
}

// TestCreateOrderStoreDownAfterPrepayAnswersPending: WeChat Pay holds an
// open order and the store has it as creating; only the prepay's record
// failed. The model is told the order is pending under its number, not
// that no order was created.
func TestCreateOrderStoreDownAfterPrepayAnswersPending(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = &downAfterPrepay{o.Store.(fullStore)}
	}})
	tc := call(t, newTools(e), caller("oUser-down-after-prepay"), "create_order", `{"sku":"premium-monthly"}`)
	if n := e.sim.OrderCount(); n != 1 {
		t.Fatalf("orders at WeChat Pay: %d; want 1", n)
	}
	if o := recordedAnswer(t, e, tc); o.Status != store.StatusCreating {
		t.Errorf("order %s; want creating (the sweep resolves it)", o.Status)
	}
}

// downAfterRecord records the order, then fails every claim read (the
// create_order's re-check of its claim).
type downAfterRecord struct {
	fullStore
	mu       sync.Mutex
	recorded bool
}

func (d *downAfterRecord) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	err := d.fullStore.CreateOrder(ctx, o, ev...)
	d.mu.Lock()
	d.recorded = err == nil
	d.mu.Unlock()
	return err
}

func (d *downAfterRecord) ClaimPurchase(ctx context.Context, key, orderNo string, ttl time.Duration) (store.Claim, bool, error) {
	d.mu.Lock()
	down := d.recorded
	d.mu.Unlock()
	if down {
		return store.Claim{}, false, errStoreDown
	}
	return d.fullStore.ClaimPurchase(ctx, key, orderNo, ttl)
}

// TestCreateOrderClaimRecheckDownAnswersPending: the order is recorded as
// creating, and the re-check of its claim fails: it is pending under its
// number, not "no order was created".
func TestCreateOrderClaimRecheckDownAnswersPending(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = &downAfterRecord{fullStore: o.Store.(fullStore)}
	}})
	tc := call(t, newTools(e), caller("oUser-recheck-down"), "create_order", `{"sku":"premium-monthly"}`)
	if o := recordedAnswer(t, e, tc); o.Status != store.StatusCreating {
		t.Errorf("order %s; want creating (the sweep resolves it)", o.Status)
	}
	if n := e.sim.OrderCount(); n != 0 {
		t.Errorf("orders at WeChat Pay: %d; want none (an unchecked claim is not prepaid)", n)
	}
}

// recordUnacked applies the order's record and reports it unavailable, as
// the Redis driver does when WAIT sees too few replicas in time; down also
// fails every read after it (an outage that began with that write).
type recordUnacked struct {
	fullStore
	apply bool // the record is applied before the error
	mu    sync.Mutex
	down  bool
}

func (r *recordUnacked) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	if o.Status != store.StatusCreating {
		return r.fullStore.CreateOrder(ctx, o, ev...)
	}
	if r.apply {
		if err := r.fullStore.CreateOrder(ctx, o, ev...); err != nil {
			return err
		}
		return fmt.Errorf("redis create order: 0 of 1 replicas within 1s: %w", store.ErrUnavailable)
	}
	r.mu.Lock()
	r.down = true
	r.mu.Unlock()
	return errStoreDown
}

func (r *recordUnacked) GetOrder(ctx context.Context, no string) (*store.Order, error) {
	r.mu.Lock()
	down := r.down
	r.mu.Unlock()
	if down {
		return nil, errStoreDown
	}
	return r.fullStore.GetOrder(ctx, no)
}

// TestCreateOrderRecordUnackedAnswersPending: the order's record applied but
// was reported unavailable. Looked up, it is found: the answer names it as
// pending, and nothing is prepaid on a record the store did not confirm.
func TestCreateOrderRecordUnackedAnswersPending(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = &recordUnacked{fullStore: o.Store.(fullStore), apply: true}
	}})
	tc := call(t, newTools(e), caller("oUser-record-unacked"), "create_order", `{"sku":"premium-monthly"}`)
	if o := recordedAnswer(t, e, tc); o.Status != store.StatusCreating {
		t.Errorf("order %s; want creating (the sweep resolves it)", o.Status)
	}
	if n := e.sim.OrderCount(); n != 0 {
		t.Errorf("orders at WeChat Pay: %d; want none", n)
	}
}

// TestCreateOrderRecordUnknownSaysMay: the order's record write got no
// answer and the store cannot be read to find out: the order may exist
// (the write may have applied), so the model is told it may, never that no
// order was created.
func TestCreateOrderRecordUnknownSaysMay(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = &recordUnacked{fullStore: o.Store.(fullStore)}
	}})
	tc := call(t, newTools(e), caller("oUser-record-unknown"), "create_order", `{"sku":"premium-monthly"}`)
	msg, _ := tc.result["error"].(string)
	if tc.result["status"] != "failed" || strings.Contains(msg, "no order was created") || !strings.Contains(msg, "may") {
		t.Errorf("tool result %s; want failed, saying the order may have been created", tc.out.Result)
	}
	if !tc.out.Failed {
		t.Errorf("outcome %+v; want failed", tc.out)
	}
}

// downFromStart fails the first step of create_order, the claim.
type downFromStart struct{ fullStore }

func (d *downFromStart) ClaimPurchase(context.Context, string, string, time.Duration) (store.Claim, bool, error) {
	return store.Claim{}, false, errStoreDown
}

// TestCreateOrderStoreDownBeforeRecordSaysNoOrder: a store that fails
// before anything was written has made no order, and the model may say so.
func TestCreateOrderStoreDownBeforeRecordSaysNoOrder(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = &downFromStart{o.Store.(fullStore)}
	}})
	tc := call(t, newTools(e), caller("oUser-down-at-start"), "create_order", `{"sku":"premium-monthly"}`)
	msg, _ := tc.result["error"].(string)
	if tc.result["status"] != "failed" || !strings.Contains(msg, "no order was created") || !tc.out.Failed {
		t.Errorf("tool result %s (failed %v); want failed: no order was created", tc.out.Result, tc.out.Failed)
	}
}

// readsDown fails every order read.
type readsDown struct{ fullStore }

func (r *readsDown) GetOrder(context.Context, string) (*store.Order, error) { return nil, errStoreDown }

// TestQueryOrderStoreDownSaysStatusUnknown: a query_order the store cannot
// answer says the status could not be read; "no order was created" would
// tell the model the order it asked about does not exist.
func TestQueryOrderStoreDownSaysStatusUnknown(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = &readsDown{o.Store.(fullStore)}
	}})
	tc := call(t, newTools(e), caller("oUser-query-down"), "query_order", `{"order_no":"PG-any"}`)
	msg, _ := tc.result["error"].(string)
	if tc.result["status"] != "unknown" || strings.Contains(msg, "no order was created") || !strings.Contains(msg, "temporarily unavailable") || !tc.out.Failed {
		t.Errorf("tool result %s (failed %v); want status unknown: temporarily unavailable, the status could not be read", tc.out.Result, tc.out.Failed)
	}
}

// hangUpAfterRecord cancels the caller's context right after the order is
// recorded: the bot hung up, or the shutdown's cut ended the request, at
// that moment.
type hangUpAfterRecord struct {
	fullStore
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (h *hangUpAfterRecord) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	err := h.fullStore.CreateOrder(ctx, o, ev...)
	h.mu.Lock()
	if h.cancel != nil {
		h.cancel()
		h.cancel = nil
	}
	h.mu.Unlock()
	return err
}

// TestCreateOrderCallerGoneAfterRecordFinishes: a caller that goes away
// once its order is recorded does not leave the order creating with no
// prepay made: the claim's re-check and the prepay run on, so the bot's
// immediate retry gets the payable order instead of waiting out
// PrepayTimeout for ErrInProgress.
func TestCreateOrderCallerGoneAfterRecordFinishes(t *testing.T) {
	h := &hangUpAfterRecord{}
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		h.fullStore = o.Store.(fullStore)
		o.Store = h
	}})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	req := payments.CreateRequest{Client: "shop-bot", User: "oUser-gone-after-record", SKU: "premium-monthly"}
	res, err := e.svc.CreateOrder(ctx, req)
	if err != nil || res == nil || res.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("the call whose caller left: %+v, %v; want the order awaiting payment", res, err)
	}
	if n := e.sim.OrderCount(); n != 1 {
		t.Errorf("orders at WeChat Pay: %d; want 1", n)
	}
	again, err := e.svc.CreateOrder(context.Background(), req) // the bot's retry
	if err != nil || again.Order.OrderNo != res.Order.OrderNo || again.Order.Status != store.StatusAwaitingPayment || again.Payment == nil {
		t.Errorf("the retry: %+v, %v; want the same order awaiting payment, with payment parameters", again, err)
	}
}

// recordRefused fails the first record of a creating order with an error
// that cannot have applied it (the embedded store's disk full), and
// remembers its number.
type recordRefused struct {
	fullStore
	mu     sync.Mutex
	failed string
}

func (r *recordRefused) CreateOrder(ctx context.Context, o *store.Order, ev ...store.Event) error {
	r.mu.Lock()
	first := r.failed == "" && o.Status == store.StatusCreating
	if first {
		r.failed = o.OrderNo
	}
	r.mu.Unlock()
	if first {
		return fmt.Errorf("write %s: no space left on device", o.OrderNo)
	}
	return r.fullStore.CreateOrder(ctx, o, ev...)
}

// TestCreateOrderRecordRefusedGivesBack: an order whose record failed for
// sure was never made: its count of the day's orders goes back and its
// claim is let go, so the user's next ask makes the order at once (no
// wait for the claimer, no abandoned number) within the daily limit.
func TestCreateOrderRecordRefusedGivesBack(t *testing.T) {
	r := &recordRefused{}
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		r.fullStore = o.Store.(fullStore)
		o.Store = r
		o.Rules.MaxOrdersPerUserPerDay = 1
	}})
	req := payments.CreateRequest{Client: "shop-bot", User: "oUser-record-refused", SKU: "premium-monthly"}
	if _, err := e.svc.CreateOrder(context.Background(), req); err == nil || r.failed == "" {
		t.Fatalf("the first ask: %v; want its record to fail", err)
	}
	res, err := e.svc.CreateOrder(context.Background(), req)
	if err != nil || res.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("the next ask: %+v, %v; want an order awaiting payment (the failed one was not counted)", res, err)
	}
	if _, err := e.st.GetOrder(context.Background(), r.failed); err == nil {
		t.Errorf("the failed number %s was recorded (abandoned); want its claim let go instead", r.failed)
	}
}

// TestCreateOrderRecordUnackedKeepsCount: an order whose record may have
// applied keeps its count of the day's orders: here it did, so with a
// limit of one, the user's next purchase that day is refused.
func TestCreateOrderRecordUnackedKeepsCount(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Store = &recordUnacked{fullStore: o.Store.(fullStore), apply: true}
		o.Rules.MaxOrdersPerUserPerDay = 1
	}})
	res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-unacked-count", SKU: "premium-monthly"})
	if err == nil || res == nil || res.Order == nil {
		t.Fatalf("the first ask: %+v, %v; want the recorded order with the store's error", res, err)
	}
	if _, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: "oUser-unacked-count", SKU: "tip"}); !errors.Is(err, payments.ErrDailyLimit) {
		t.Errorf("a second purchase the same day: %v; want ErrDailyLimit (the recorded order counts)", err)
	}
}
