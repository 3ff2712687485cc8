package payments_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestHeldOrderEndedUnopenedGivesBackItsCount: an order held for a manager
// that ends without ever reaching WeChat Pay (rejected, lapsed past its
// approval deadline and expired by the sweep, or by a decision that came too
// late) is no order the user made, so its count of the day's orders goes
// back, as a prepay refused at approval gives its count back
// (TestDailyLimitRefusalTakesNoCount). Kept, a user on a day limited to one
// order was refused every purchase for the rest of the day.
func TestHeldOrderEndedUnopenedGivesBackItsCount(t *testing.T) {
	const approvalTTL = time.Minute
	ctx := context.Background()
	for _, driver := range drivers(t) {
		for _, tc := range []struct {
			name string
			end  func(e *env, no string) error
		}{
			{"rejected", func(e *env, no string) error {
				_, err := e.svc.Reject(ctx, no)
				return err
			}},
			{"expired by the sweep", func(e *env, no string) error {
				e.clock.Advance(approvalTTL + time.Second)
				st, err := e.svc.Sweep(ctx)
				if err == nil && st.Errors != 0 {
					t.Errorf("sweep: %+v", st)
				}
				return err
			}},
			{"expired by a late approval", func(e *env, no string) error {
				e.clock.Advance(approvalTTL + time.Second)
				if _, err := e.svc.Approve(ctx, no); !errors.Is(err, payments.ErrApprovalExpired) {
					t.Errorf("late approval: %v; want ErrApprovalExpired", err)
				}
				return nil
			}},
		} {
			t.Run(driver+", "+tc.name, func(t *testing.T) {
				e := limitOneEnv(t, driver, approvalTTL, nil) // lapses within the day, on the held order's day's count
				const user = "oUser-held-ended-count"
				held := holdOrder(t, e, user)
				if err := tc.end(e, held.OrderNo); err != nil {
					t.Fatalf("end the held order: %v", err)
				}
				if got := e.order(held.OrderNo).Status; got != store.StatusRejected && got != store.StatusExpired {
					t.Fatalf("held order is %s; want rejected or expired", got)
				}
				oneOrderLeft(t, e, user, 1)
			})
		}
	}
}

// TestHeldOrderEndedNextDayGivesBackItsOwnDaysCount: a held order made at
// 23:59:30 China time and rejected or expired on the next day gives back the
// count it took, on its own day's counter: the next day's order, counted on
// the next day, stays counted, so under a limit of one the user is refused
// a second order that day. Given back on the day it ended, the user made
// two orders on a day limited to one.
func TestHeldOrderEndedNextDayGivesBackItsOwnDaysCount(t *testing.T) {
	ctx := context.Background()
	cst := time.FixedZone("CST", 8*3600)
	for _, driver := range drivers(t) {
		for _, tc := range []struct {
			name string
			ttl  time.Duration
			end  func(e *env, no string) error
		}{
			{"rejected", time.Hour, func(e *env, no string) error {
				_, err := e.svc.Reject(ctx, no)
				return err
			}},
			{"expired by the sweep", time.Minute, func(e *env, no string) error {
				_, err := e.svc.Sweep(ctx)
				return err
			}},
		} {
			t.Run(driver+", "+tc.name, func(t *testing.T) {
				e := limitOneEnv(t, driver, tc.ttl, nil)
				now := time.Now()
				y, m, d := now.In(cst).Date()
				e.clock.Advance(time.Date(y, m, d+1, 0, 0, 0, 0, cst).Add(-30 * time.Second).Sub(now)) // 23:59:30 China time
				const user = "oUser-held-ended-next-day"
				held := holdOrder(t, e, user)
				e.clock.Advance(time.Minute + time.Second) // 00:00:31 the next day, past a minute's approval_ttl
				dayOrders(t, e, user, 1)
				if err := tc.end(e, held.OrderNo); err != nil {
					t.Fatalf("end the held order: %v", err)
				}
				if got := e.order(held.OrderNo).Status; got != store.StatusRejected && got != store.StatusExpired {
					t.Fatalf("held order is %s; want rejected or expired", got)
				}
				if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 3}); !errors.Is(err, payments.ErrDailyLimit) {
					t.Errorf("a second order on the next day: %v; want ErrDailyLimit (the held order's count was the day before's)", err)
				}
			})
		}
	}
}

// TestHeldOrderLapsedAskedAgainIsMadeAgain: the user who asks again for a
// purchase whose held order lapsed past approval_ttl (nobody swept it yet)
// expires it on that ask, and its count goes back before the new order is
// counted: under a limit of one the purchase is made again (held for a
// manager again), not refused as the day's second order.
func TestHeldOrderLapsedAskedAgainIsMadeAgain(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := limitOneEnv(t, driver, time.Minute, nil)
			req := payments.CreateRequest{Client: "shop-bot", User: "oUser-held-lapsed-asked-again", SKU: "premium-monthly", Quantity: 2}
			held := holdOrder(t, e, req.User)
			e.clock.Advance(time.Minute + time.Second)
			again, err := e.svc.CreateOrder(ctx, req)
			if err != nil {
				t.Fatalf("the purchase asked again past the held order's deadline: %v; want it made again (the lapsed order took nothing of the day)", err)
			}
			if again.Order.OrderNo == held.OrderNo || again.Order.Status != store.StatusApprovalRequired {
				t.Errorf("asked again: %s %s; want a new order held for a manager", again.Order.OrderNo, again.Order.Status)
			}
			if got := e.order(held.OrderNo).Status; got != store.StatusExpired {
				t.Errorf("the lapsed order is %s; want expired", got)
			}
		})
	}
}

// failGiveBackOnce is a store whose first give-back of a daily count
// (DecrCounter) fails, as a store down for that moment, or a process that
// died between the order's write and its give-back, leaves it.
type failGiveBackOnce struct {
	fullStore
	failed atomic.Bool
}

func (s *failGiveBackOnce) DecrCounter(ctx context.Context, key, token string) error {
	if s.failed.CompareAndSwap(false, true) {
		return errStoreDown
	}
	return s.fullStore.DecrCounter(ctx, key, token)
}

// TestRejectSentAgainGivesBackACountLeftTaken: a rejection whose give-back
// was lost (the store failed for it) left the user's count taken for the
// rest of the day, and the manager's second click, told the order is
// already rejected, changed nothing. That second rejection gives the count
// back (once: the order's token), so under a limit of one the user still
// has one order.
func TestRejectSentAgainGivesBackACountLeftTaken(t *testing.T) {
	ctx := context.Background()
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := limitOneEnv(t, driver, 0, func(st fullStore) payments.Store { return &failGiveBackOnce{fullStore: st} })
			const user = "oUser-reject-sent-again"
			held := holdOrder(t, e, user)
			if _, err := e.svc.Reject(ctx, held.OrderNo); err != nil {
				t.Fatalf("reject: %v", err)
			}
			for range 2 {
				if _, err := e.svc.Reject(ctx, held.OrderNo); !errors.Is(err, payments.ErrNotAwaitingApproval) {
					t.Fatalf("reject sent again: %v; want ErrNotAwaitingApproval", err)
				}
			}
			oneOrderLeft(t, e, user, 1)
			if _, err := e.svc.Reject(ctx, held.OrderNo); !errors.Is(err, payments.ErrNotAwaitingApproval) {
				t.Fatalf("reject sent a third time: %v; want ErrNotAwaitingApproval", err)
			}
			if _, err := e.svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 5}); !errors.Is(err, payments.ErrDailyLimit) {
				t.Errorf("an order after a third rejection: %v; want ErrDailyLimit (the count goes back once)", err)
			}
		})
	}
}

// limitOneEnv is an env on driver under a daily limit of one order that
// holds orders above 50.00 for a manager for ttl (0: the default); wrap,
// if set, wraps its store.
func limitOneEnv(t *testing.T, driver string, ttl time.Duration, wrap func(fullStore) payments.Store) *env {
	t.Helper()
	return newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
		if wrap != nil {
			o.Store = wrap(o.Store.(fullStore))
		}
		o.Rules.MaxOrdersPerUserPerDay = 1
		o.Rules.ApprovalAboveFen = payments.FenPtr(5000)
		if ttl != 0 {
			o.Rules.ApprovalTTL = ttl
		}
	}})
}

// holdOrder makes user's order of two premium-monthly (99.98, held for a
// manager), failing the test if it is not held.
func holdOrder(t *testing.T, e *env, user string) *store.Order {
	t.Helper()
	res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: 2})
	if err != nil || res.Order.Status != store.StatusApprovalRequired {
		t.Fatalf("held order: %+v, %v", res, err)
	}
	return res.Order
}
