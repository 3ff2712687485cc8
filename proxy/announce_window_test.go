package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// payableReconciler stands in for payments.Service: it refreshes nothing and
// hands a code URL for every awaiting_payment order, as PayableParams does
// for an order within its payment window.
type payableReconciler struct{}

func (payableReconciler) RefreshPending(_ context.Context, orders []*store.Order) []*store.Order {
	return orders
}

func (payableReconciler) UnsentRefunds(_ context.Context, orders []*store.Order) []*store.Order {
	return orders
}

func (payableReconciler) PayableParams(_ context.Context, o *store.Order) (*wechatpay.RequestPayment, string, error) {
	if o.Status != store.StatusAwaitingPayment {
		return nil, "", nil
	}
	return nil, "weixin://wxpay/bizpayurl?pr=" + o.OrderNo, nil
}

// announceTurns serves a proxy over st and returns a function that runs one
// turn of user and counts the actions of type kind in its answer.
func announceTurns(t *testing.T, st store.Store, user, kind string) func() int {
	t.Helper()
	return announceTurnsWith(t, st, payableReconciler{}, user, kind)
}

// announceTurnsWith is announceTurns with payment parameters from rc.
func announceTurnsWith(t *testing.T, st store.Store, rc Reconciler, user, kind string) func() int {
	t.Helper()
	fp := newFakeProvider(t, jsonHandler(http.StatusOK,
		`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	url := paymentProxy(t, fp.URL, nil, queryTools{}, st, rc)
	return func() int {
		resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hello"}]}`,
			map[string]string{"X-WeChat-OpenID": user})
		body := readAll(t, resp.Body)
		resp.Body.Close()
		return len(gjson.Get(body, `paygate.actions.#(type=="`+kind+`")#`).Array())
	}
}

// TestPaymentConfirmedAnnouncedOnceEver: the "announced:" claim
// lives 30 days from the first announcement; an order paid long ago and
// still among the user's recent orders must not be announced again once it
// expires. Each order is announced at most once, ever.
func TestPaymentConfirmedAnnouncedOnceEver(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now) // Redis: a prefix of its own, required under CI
			const user = "o-subscriber"
			o := storetest.NewOrder("PAID-1", "shop-bot", user, clock.Now())
			o.Status = store.StatusPaid
			o.PaidAt = clock.Now()
			if err := st.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			turn := announceTurns(t, st, user, "payment_confirmed")
			if n := turn(); n != 1 {
				t.Fatalf("first turn after payment: %d payment_confirmed; want 1", n)
			}
			if n := turn(); n != 0 {
				t.Fatalf("second turn: %d payment_confirmed; want 0", n)
			}
			for day := 1; day <= 40; day++ {
				clock.Advance(24 * time.Hour)
				if n := turn(); n != 0 {
					t.Fatalf("day %d after the payment: order PAID-1 (paid long ago) announced as payment_confirmed again (%d); want exactly once ever", day, n)
				}
			}
		})
	}
}

// TestPaymentConfirmedOnLateReturn: the announcement window must not make an
// ordinary late return miss the confirmation: paid, the user's first turn two
// days later hears of it, once. A user back only after the window hears
// nothing (the merchant's order.paid webhook is the reliable channel).
func TestPaymentConfirmedOnLateReturn(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now) // Redis: a prefix of its own, required under CI
			for _, no := range []string{"PAID-LATE", "PAID-GONE"} {
				o := storetest.NewOrder(no, "shop-bot", "o-"+no, clock.Now())
				o.Status = store.StatusPaid
				o.PaidAt = clock.Now()
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			late := announceTurns(t, st, "o-PAID-LATE", "payment_confirmed")
			gone := announceTurns(t, st, "o-PAID-GONE", "payment_confirmed")
			clock.Advance(48 * time.Hour)
			if n := late(); n != 1 {
				t.Fatalf("first turn 2 days after the payment: %d payment_confirmed; want 1", n)
			}
			if n := late(); n != 0 {
				t.Fatalf("second turn: %d payment_confirmed; want 0", n)
			}
			clock.Advance(announceWindow - 48*time.Hour)
			if n := gone(); n != 0 {
				t.Fatalf("first turn %v after the payment (past the announcement window): %d payment_confirmed; want 0", announceWindow, n)
			}
		})
	}
}

// TestPayableAnnouncedOnce: an order that became payable outside a turn (a
// manager's approval) is announced with its payment parameters once, and
// not again once the "payable:" claim expires, however long the order
// stays awaiting payment (an order_ttl of weeks).
func TestPayableAnnouncedOnce(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now) // Redis: a prefix of its own, required under CI
			const user = "o-approved"
			o := storetest.NewOrder("APPROVED-1", "shop-bot", user, clock.Now())
			o.ExpiresAt = clock.Now().Add(60 * 24 * time.Hour)
			if err := st.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			turn := announceTurns(t, st, user, "order_created")
			clock.Advance(3 * time.Hour)
			if n := turn(); n != 1 {
				t.Fatalf("first turn after the approval: %d order_created; want 1", n)
			}
			if n := turn(); n != 0 {
				t.Fatalf("second turn: %d order_created; want 0", n)
			}
			for day := 1; day <= 40; day++ {
				clock.Advance(24 * time.Hour)
				if n := turn(); n != 0 {
					t.Fatalf("day %d after the approval: order APPROVED-1 announced as payable again (%d); want once ever", day, n)
				}
			}
		})
	}
}

// flakyParams fails its first PayableParams, as WeChat Pay or the store
// may once.
type flakyParams struct {
	payableReconciler
	calls atomic.Int32
}

func (f *flakyParams) PayableParams(ctx context.Context, o *store.Order) (*wechatpay.RequestPayment, string, error) {
	if f.calls.Add(1) == 1 {
		return nil, "", errors.New("wechat pay: timeout")
	}
	return f.payableReconciler.PayableParams(ctx, o)
}

// TestPayableSurvivesAFailedParamsRead: an approved order's payment
// parameters are announced by the next turn when a turn could not get them:
// the order's one announcement was used up before they were read, and the
// user never got them.
func TestPayableSurvivesAFailedParamsRead(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now)
			const user = "o-approved-flaky"
			o := storetest.NewOrder("APPROVED-F", "shop-bot", user, clock.Now())
			if err := st.CreateOrder(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute)
			turn := announceTurnsWith(t, st, &flakyParams{}, user, "order_created")
			if n := turn(); n != 0 {
				t.Fatalf("the turn whose parameters read failed: %d order_created; want 0", n)
			}
			if n := turn(); n != 1 {
				t.Errorf("the next turn: %d order_created; want 1 (the failed read used nothing up)", n)
			}
			if n := turn(); n != 0 {
				t.Errorf("a third turn: %d order_created; want 0 (announced once)", n)
			}
		})
	}
}

// TestOldOrderAnnounced: an order approved, then paid, after the user
// created store.UserStateOrders newer orders is announced, payable once and
// paid once. The user's state held only the newest created orders, so
// neither announcement was ever made (a soak saw approval orders paid after
// 20 newer ones never confirmed).
func TestOldOrderAnnounced(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now) // Redis: a prefix of its own, required under CI
			const user = "o-busy"
			old := storetest.NewOrder("APPROVAL-OLD", "shop-bot", user, clock.Now())
			old.Status = store.StatusApprovalRequired
			if err := st.CreateOrder(ctx, old); err != nil {
				t.Fatal(err)
			}
			for i := range store.UserStateOrders {
				clock.Advance(time.Minute)
				o := storetest.NewOrder(fmt.Sprintf("NEWER-%02d", i), "shop-bot", user, clock.Now())
				o.Status = store.StatusClosed
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			payable := announceTurns(t, st, user, "order_created")
			confirmed := announceTurns(t, st, user, "payment_confirmed")

			clock.Advance(time.Minute)
			old.Status = store.StatusAwaitingPayment // a manager approved it
			if err := st.UpdateOrder(ctx, old, store.StatusApprovalRequired); err != nil {
				t.Fatal(err)
			}
			if n := payable(); n != 1 {
				t.Fatalf("first turn after the approval of an order older than the user's %d newest: %d order_created; want 1", store.UserStateOrders, n)
			}
			if n := payable(); n != 0 {
				t.Fatalf("second turn after the approval: %d order_created; want 0", n)
			}

			clock.Advance(time.Minute)
			old.Status, old.PaidAt = store.StatusPaid, clock.Now()
			if err := st.UpdateOrder(ctx, old, store.StatusAwaitingPayment); err != nil {
				t.Fatal(err)
			}
			if n := confirmed(); n != 1 {
				t.Fatalf("first turn after the payment of an order older than the user's %d newest: %d payment_confirmed; want 1", store.UserStateOrders, n)
			}
			if n := confirmed(); n != 0 {
				t.Fatalf("second turn after the payment: %d payment_confirmed; want 0", n)
			}
		})
	}
}

// TestDeliveredMarkOutlivesTheClient: payment parameters that left in an
// answer are marked delivered even when the client hung up right after
// reading them (go-openai closes its connection at [DONE], which cancels the
// request's context). The mark was written with that context, so it failed,
// and the next turn handed the same order again.
func TestDeliveredMarkOutlivesTheClient(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			st := testdrivers.Open(t, driver, nil)
			fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{}`))
			cfg := testConfig(t, fp.URL, nil)
			router, err := failover.New(cfg, failover.Options{Logger: logging.New(&logtest.Buffer{}, slog.LevelDebug, cfg.Secrets()), Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = router.Close() })
			s, err := New(Options{Config: cfg, Upstream: router, Logger: logging.New(&logtest.Buffer{}, slog.LevelDebug, cfg.Secrets()),
				Registry: prometheus.NewRegistry(), HashKey: []byte(cfg.Privacy.HashKey), Tools: queryTools{}, State: st})
			if err != nil {
				t.Fatal(err)
			}
			gone, cancel := context.WithCancel(context.Background())
			cancel() // the client hung up as the answer left
			c := payments.Caller{Client: "shop-bot", User: "o-handed"}
			s.markDelivered(gone, c, []json.RawMessage{json.RawMessage(`{"type":"order_created","order":{"order_no":"PG-HANDED"}}`)})
			if s.firstTime(context.Background(), c, kindPayable, "PG-HANDED") {
				t.Errorf("the order handed in an answer whose client then hung up was not marked delivered: the next turn announces it again")
			}
		})
	}
}

// TestSettledOrdersJudgedByTheStoresClock: one turn judges "settled long
// ago" (payments.state_injection.settled_after) by the clock that judges its
// announcements, the store's. The wall clock kept an order closed 48 hours
// ago by the store's clock in front of the model.
func TestSettledOrdersJudgedByTheStoresClock(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	st := testdrivers.Open(t, "embedded", clock.Now)
	const user = "o-settled"
	o := storetest.NewOrder("CLOSED-OLD", "shop-bot", user, clock.Now())
	o.Status = store.StatusClosed
	if err := st.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	clock.Advance(48 * time.Hour)
	fp := newFakeProvider(t, jsonHandler(http.StatusOK,
		`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	url := paymentProxy(t, fp.URL, nil, queryTools{}, st, payableReconciler{})
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hello"}]}`,
		map[string]string{"X-WeChat-OpenID": user})
	readAll(t, resp.Body)
	resp.Body.Close()
	reqs := fp.requests()
	if len(reqs) == 0 {
		t.Fatal("no upstream request")
	}
	if body := string(reqs[0].Body); strings.Contains(body, "CLOSED-OLD") {
		t.Errorf("an order closed 48 h ago by the store's clock is in the state message sent upstream: %s", body)
	}
}

// writeCountingStore counts the store writes a turn makes to tell what
// was announced: announcement claims and counters.
type writeCountingStore struct {
	store.Store
	writes atomic.Int64
}

func (c *writeCountingStore) IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	c.writes.Add(1)
	return c.Store.IncrCounter(ctx, key, ttl)
}

func (c *writeCountingStore) ClaimAnnouncement(ctx context.Context, client, user, kind, orderNo string, ttl time.Duration) (bool, error) {
	c.writes.Add(1)
	return c.Store.ClaimAnnouncement(ctx, client, user, kind, orderNo, ttl)
}

// TestAnnouncedOrdersCostNoWrite: once an order's payment_confirmed was
// announced, the turns after it know so from the state they load (SPEC 3
// step 2: one round trip) and write nothing for it. Each turn of a user
// with orders paid within the announcement window wrote once per such
// order (an fsync each on the embedded store), between the answer's last
// text and its finish chunk.
func TestAnnouncedOrdersCostNoWrite(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := &writeCountingStore{Store: testdrivers.Open(t, driver, clock.Now)}
			const user = "o-subscriber"
			for i, no := range []string{"PAID-A", "PAID-B", "PAID-C"} {
				o := storetest.NewOrder(no, "shop-bot", user, clock.Now().Add(time.Duration(i)*time.Second))
				o.Status = store.StatusPaid
				o.PaidAt = clock.Now()
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			turn := announceTurns(t, st, user, "payment_confirmed")
			if n := turn(); n != 3 {
				t.Fatalf("first turn: %d payment_confirmed; want 3", n)
			}
			before := st.writes.Load()
			for range 10 {
				if n := turn(); n != 0 {
					t.Fatalf("a later turn: %d payment_confirmed; want 0", n)
				}
			}
			if extra := st.writes.Load() - before; extra != 0 {
				t.Errorf("10 turns after the announcements made %d store writes for them; want 0", extra)
			}
		})
	}
}

// countingParams counts PayableParams calls: a store read and an RSA
// signature each.
type countingParams struct {
	payableReconciler
	n atomic.Int64
}

func (c *countingParams) PayableParams(ctx context.Context, o *store.Order) (*wechatpay.RequestPayment, string, error) {
	c.n.Add(1)
	return c.payableReconciler.PayableParams(ctx, o)
}

// TestAnnouncedPayableNotSignedAgain: once an order that became payable
// outside a turn was announced with its payment parameters, later turns
// neither sign them again nor write. Every turn signed them (PayableParams:
// a store read and an RSA signature) only to find the announcement used.
func TestAnnouncedPayableNotSignedAgain(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := &writeCountingStore{Store: testdrivers.Open(t, driver, clock.Now)}
			const user = "o-approved-once"
			if err := st.CreateOrder(ctx, storetest.NewOrder("AWAIT-A", "shop-bot", user, clock.Now())); err != nil {
				t.Fatal(err)
			}
			rc := &countingParams{}
			turn := announceTurnsWith(t, st, rc, user, "order_created")
			if n := turn(); n != 1 {
				t.Fatalf("first turn: %d order_created; want 1", n)
			}
			signed, wrote := rc.n.Load(), st.writes.Load()
			for range 10 {
				if n := turn(); n != 0 {
					t.Fatalf("a later turn: %d order_created; want 0", n)
				}
			}
			if extra := rc.n.Load() - signed; extra != 0 {
				t.Errorf("10 turns after the announcement signed payment parameters %d more times; want 0", extra)
			}
			if extra := st.writes.Load() - wrote; extra != 0 {
				t.Errorf("10 turns after the announcement made %d store writes for it; want 0", extra)
			}
		})
	}
}

// TestAnnouncedBeforeUpgradeNotAgain: an order announced by an earlier
// version, which claimed with the counter "announced:"+order (payable:
// likewise), is not announced again by this one.
func TestAnnouncedBeforeUpgradeNotAgain(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now)
			paid := storetest.NewOrder("OLD-PAID", "shop-bot", "o-old-paid", clock.Now())
			paid.Status, paid.PaidAt = store.StatusPaid, clock.Now()
			payable := storetest.NewOrder("OLD-PAYABLE", "shop-bot", "o-old-payable", clock.Now())
			for _, o := range []*store.Order{paid, payable} {
				if err := st.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			for _, key := range []string{"announced:OLD-PAID", "payable:OLD-PAYABLE"} {
				if _, err := st.IncrCounter(ctx, key, announcedTTL); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(time.Hour)
			for _, tc := range []struct{ user, kind string }{{"o-old-paid", "payment_confirmed"}, {"o-old-payable", "order_created"}} {
				turn := announceTurns(t, st, tc.user, tc.kind)
				for i := range 2 {
					if n := turn(); n != 0 {
						t.Errorf("%s, turn %d after the upgrade: %d %s; want 0 (announced before it)", tc.user, i+1, n, tc.kind)
					}
				}
			}
		})
	}
}
