package webhook_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestStalledRelaysRetryLeavesAnotherRelaysClaim: relay A's POST of an
// order.paid stalls past its lease; relay B (another replica) claims the
// event and POSTs it; A's POST then answers 503, and A records its
// failure while B's POST is still in flight (or A is stopped meanwhile,
// and gives its lease back). A's record must not replace B's lease: were
// it written (due after A's backoff, or at once), a third replica's poll
// within B's lease claimed and POSTed the event again, a third copy of it
// while B's was still in flight. The stall forces two copies, not three.
func TestStalledRelaysRetryLeavesAnotherRelaysClaim(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop bool   // A is stopped during its POST (a deploy's SIGTERM)
		log  string // what A says of its record
	}{
		{"A's POST fails", false, "another relay claimed it meanwhile"},
		{"A is stopped", true, "ran out, and another relay claimed the event"},
	} {
		for _, driver := range drivers(t) {
			t.Run(tc.name+"/"+driver, func(t *testing.T) {
				ctx := context.Background()
				actx, stopA := context.WithCancel(ctx)
				defer stopA()
				clk := newClock()
				st := testdrivers.Open(t, driver, nil)
				o := orders{t, st}.create("PSTALERETRY"+driver, store.StatusAwaitingPayment)
				ev := webhook.NewEvent(webhook.TypeOrderPaid, o, nil, clk.Now())
				ev.Key = webhook.QueuePrefix + o.OrderNo
				if err := st.EnqueueEvents(ctx, ev); err != nil {
					t.Fatal(err)
				}
				var ra, rb *webhook.Relay
				var during func()
				if tc.stop {
					during = stopA
				}
				srv := newStall(t, ctx, clk, &ra, &rb, during)
				var logs logtest.Buffer
				ra = newRelay(t, st, srv.URL, clk.Now, func(o *webhook.Options) {
					o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
				})
				rb = newRelay(t, st, srv.URL, clk.Now, nil)
				rc := newRelay(t, st, srv.URL, clk.Now, nil)
				ra.RunOnce(actx) // A's POST fails; it records its failure
				clk.Advance(ra.Delay(1) + time.Second)
				rc.RunOnce(ctx) // a third replica polls: A's retry would be due, B's lease holds
				third := srv.posts.Load()
				close(srv.answer)
				<-srv.done
				if third != 2 {
					t.Errorf("%d POSTs of the event while B's was in flight; want 2 (A's stalled one and B's)", third)
				}
				if s, err := st.OutboxStats(ctx); err != nil || s.Pending != 0 {
					t.Errorf("outbox: %d pending, %v; want 0 (B's POST delivered it)", s.Pending, err)
				}
				if l := logs.String(); !strings.Contains(l, tc.log) || strings.Contains(l, "lease runs out") {
					t.Errorf("A's log:\n%s\nwant %q, and no record promised once a lease runs out", l, tc.log)
				}
			})
		}
	}
}

// stall is a merchant's endpoint for a stalled POST: the first POST (relay
// a's) moves clk past a's lease and has relay b, another replica, claim
// and POST the event on a goroutine of its own (done is closed when that
// pass ends); once b's POST arrived, during runs and a's POST is answered
// 503. b's POST is held until answer is closed, then answered 204, as is
// any later POST. posts counts them.
type stall struct {
	*httptest.Server
	posts        atomic.Int32
	answer, done chan struct{}
}

func newStall(t *testing.T, ctx context.Context, clk *clock, a, b **webhook.Relay, during func()) *stall {
	s := &stall{answer: make(chan struct{}), done: make(chan struct{})}
	bPosting := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		switch s.posts.Add(1) {
		case 1: // a's POST stalls past its lease; b claims and POSTs the event
			clk.Advance(webhook.LeaseOf(*a) + time.Second)
			go func() { defer close(s.done); (*b).RunOnce(ctx) }()
			<-bPosting
			if during != nil {
				during()
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2: // b's POST, in flight until the test answers it
			close(bPosting)
			<-s.answer
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(s.Close)
	return s
}
