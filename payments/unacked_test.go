package payments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// paidWriteUnacked makes the first write of a paid order report the store
// unavailable: as the Redis driver does when WAIT sees too few replicas in
// time (applied, and the driver says so: the order carries its new version,
// mode "unreplicated"), when the reply is lost after the write applied
// (nothing comes back: mode "lost-applied"), or when the write never got
// there (mode "lost").
type paidWriteUnacked struct {
	fullStore
	mode string
	mu   sync.Mutex
	done bool
}

func (p *paidWriteUnacked) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	p.mu.Lock()
	first := o.Status == store.StatusPaid && !p.done
	if first {
		p.done = true
	}
	p.mu.Unlock()
	if !first {
		return p.fullStore.UpdateOrder(ctx, o, expect, ev...)
	}
	errUnavailable := fmt.Errorf("redis update order: i/o timeout: %w", store.ErrUnavailable)
	if p.mode == "lost" {
		return errUnavailable
	}
	version, updated := o.Version, o.UpdatedAt
	if err := p.fullStore.UpdateOrder(ctx, o, expect, ev...); err != nil {
		return err
	}
	if p.mode == "lost-applied" {
		o.Version, o.UpdatedAt = version, updated // no reply: the caller learns nothing
	}
	return errUnavailable
}

// paidCommits counts the transitions to paid Committed reported so far.
func paidCommits(ch <-chan payments.Transition) int {
	n := 0
	for {
		select {
		case tr := <-ch:
			if tr.After.Status == store.StatusPaid {
				n++
			}
		default:
			return n
		}
	}
}

// TestPaidWriteUnackedCommittedOnce: a paid write that applied though the
// store reported it unavailable is announced (Options.Committed: the
// ledger's completed transaction; the transitions metric) once a later call
// finds it applied: WeChat Pay's retry of the notification, answered 500
// the first time, or the sweep. Before, the retry found the order paid, a
// duplicate, and nothing was ever announced.
func TestPaidWriteUnackedCommittedOnce(t *testing.T) {
	for _, tc := range driverModes(t, "unreplicated", "lost-applied") {
		mode := tc.mode
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: tc.driver, service: func(o *payments.Options) {
				o.Store = &paidWriteUnacked{fullStore: o.Store.(fullStore), mode: mode}
			}})
			o := e.create("oUser-unacked-"+mode, 1)
			n := e.buildPayment(e.paidTx(o), nil)
			if s, body := e.post(n.Header, n.Body); s != http.StatusInternalServerError {
				t.Fatalf("notification: %d %s; want 500 (WeChat Pay retries)", s, body)
			}
			if s, body := e.post(n.Header, n.Body); s != http.StatusNoContent { // WeChat Pay's retry
				t.Fatalf("retry: %d %s; want 204", s, body)
			}
			if _, err := e.svc.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.order(o.OrderNo).Status; got != store.StatusPaid {
				t.Fatalf("order %s; want paid", got)
			}
			if n := paidCommits(e.transitions()); n != 1 {
				t.Errorf("Committed saw %d transitions to paid; want 1", n)
			}
			if got := e.counter("paygate_order_transitions_total", map[string]string{"to": "paid"}); got != 1 {
				t.Errorf("transitions to paid counted: %v; want 1", got)
			}
		})
	}
}

// TestPaidWriteUnackedRetryOnAnotherReplica: WeChat Pay's retry reaches
// replica B. When A's write had applied, B finds a duplicate and announces
// nothing, and A's sweep, finding A's write, announces it; when A's write
// never got there, B makes and announces the payment, and A, whose write
// is not the one in the store, announces nothing: once across replicas.
func TestPaidWriteUnackedRetryOnAnotherReplica(t *testing.T) {
	for _, tc := range driverModes(t, "unreplicated", "lost-applied", "lost") {
		mode := tc.mode
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: tc.driver, service: func(o *payments.Options) {
				o.Store = &paidWriteUnacked{fullStore: o.Store.(fullStore), mode: mode}
			}})
			onB := make(chan payments.Transition, 16)
			b := replicaOn(t, e, e.st, func(o *payments.Options) {
				o.Committed = func(tr payments.Transition) { onB <- tr }
			})
			o := e.create("oUser-unacked-b-"+mode, 1)
			n := e.buildPayment(e.paidTx(o), nil)
			if s, _ := e.post(n.Header, n.Body); s != http.StatusInternalServerError {
				t.Fatalf("notification on A: %d; want 500", s)
			}
			nb := httptest.NewServer(b.NotifyHandler())
			defer nb.Close()
			if s := postTo(t, nb.URL+payments.NotifyPath, n); s != http.StatusNoContent {
				t.Fatalf("retry on B: %d; want 204", s)
			}
			if _, err := e.svc.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.order(o.OrderNo).Status; got != store.StatusPaid {
				t.Fatalf("order %s; want paid", got)
			}
			onA := paidCommits(e.transitions())
			if got := onA + paidCommits(onB); got != 1 {
				t.Errorf("transitions to paid announced: %d on A, %d in all; want 1 in all", onA, got)
			}
		})
	}
}

// TestUnackedNotKeptLineCarriesRequestID: past the bound of unconfirmed
// writes kept, the line saying one is not kept is written during the
// request whose write it was, and carries that request's id, as the
// request's other lines do: it was logged without the request's context,
// and an operator could not tie it to the notification it came from.
func TestUnackedNotKeptLineCarriesRequestID(t *testing.T) {
	logs := &logtest.Buffer{}
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.Logger = logging.New(logs, slog.LevelDebug, nil)
		o.Store = &paidWriteUnacked{fullStore: o.Store.(fullStore), mode: "lost"}
	}})
	payments.SetMaxUnacked(e.svc, 0)
	o := e.create("oUser-unacked-full", 1)
	n := e.buildPayment(e.paidTx(o), nil)
	if s, body := e.post(n.Header, n.Body); s != http.StatusInternalServerError {
		t.Fatalf("notification: %d %s; want 500 (WeChat Pay retries)", s, body)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(line, "too many kept") {
			continue
		}
		found = true
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if id, _ := rec["request_id"].(string); !strings.HasPrefix(id, "req_") || rec["order_no"] != o.OrderNo {
			t.Errorf("line without the request's id or the order's number %s: %s", o.OrderNo, line)
		}
	}
	if !found {
		t.Errorf("no line says the write was not kept:\n%s", logs.String())
	}
}
