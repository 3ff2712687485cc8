package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// expiryUnrecorded is a store whose write of an order as expired fails
// with err.
type expiryUnrecorded struct {
	store.Store
	err error
}

func (s expiryUnrecorded) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	if o.Status == store.StatusExpired {
		return fmt.Errorf("write order: %w", s.err)
	}
	return s.Store.UpdateOrder(ctx, o, expect, ev...)
}

// TestAdminDecisionPastTheDeadlineOnAFailingStore: a manager approves or
// rejects an order held past its approval deadline, which the sweep has
// not expired yet, and the store fails as paygate records the expiry. The
// answer was a 409 saying the order expired, carrying the store's own
// error ("redis: dial tcp 10.9.8.7:6379: …"), which every other admin
// answer keeps to the log, while nothing was recorded: the order still
// waited in the queue. It is answered as the admin API answers a store
// that fails (503, and store.DataLostAdvice for one that lost its data),
// without the store's text; the order still waits, and no prepay was made.
func TestAdminDecisionPastTheDeadlineOnAFailingStore(t *testing.T) {
	cases := []struct {
		name, verb string
		err        error
		want       string
	}{
		{"approve, store down", "approve", storeDown, "the store is unavailable"},
		{"reject, store down", "reject", storeDown, "the store is unavailable"},
		{"approve, store lost its data", "approve", dataLost, store.DataLostAdvice},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			no := fmt.Sprintf("PGHELDLAPSEDSTORE%d", i)
			a := heldPastDeadline(t, no, "oUser-lapsed-store", io.Discard, func(st store.Store) store.Store { return expiryUnrecorded{st, tc.err} })
			admin := httptest.NewServer(a.adminHandler())
			t.Cleanup(admin.Close)
			ctx := context.Background()
			resp, b := adminDo(t, http.MethodPost, admin.URL+"/admin/api/approvals/"+no+"/"+tc.verb,
				map[string]string{"Authorization": "Bearer " + consoleToken, console.CSRFHeader: "1"})
			if msg := gjson.GetBytes(b, "error").Str; resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(msg, tc.want) {
				t.Errorf("%s past the deadline, its expiry unrecorded: %d %s; want 503 saying %q", tc.verb, resp.StatusCode, b, tc.want)
			}
			for _, raw := range []string{storeAddr, "dial tcp", "connection refused", "is empty"} {
				if strings.Contains(string(b), raw) {
					t.Errorf("the answer carries the store's own error (%q): %s", raw, b)
				}
			}
			if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusApprovalRequired {
				t.Errorf("order %+v %v; want it still approval_required (its expiry not recorded)", o, err)
			}
			if n := a.sim.Prepays(no); n != 0 {
				t.Errorf("prepays %d; want none", n)
			}
		})
	}
}

// goneAtExpiry is a store whose write of an order as expired finds the
// caller gone: cancel ends the caller's context, and the write fails with
// its cancel as the Redis driver passes it on.
type goneAtExpiry struct {
	store.Store
	cancel *context.CancelFunc
}

func (s goneAtExpiry) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	if o.Status == store.StatusExpired {
		(*s.cancel)()
		return fmt.Errorf("write order: %w", ctx.Err())
	}
	return s.Store.UpdateOrder(ctx, o, expect, ev...)
}

// TestAdminDecisionPastTheDeadlineClientGone: a manager's console that goes
// away while paygate records the expiry of an order held past its approval
// deadline (the Redis driver passes the cancel on as it is) is a client
// that left, 499 as for any other admin call, not a store that failed:
// the cancel was dropped with the store's text, and the call answered 500
// "internal error", counted among the server's errors and logged as a
// failure of the admin API.
func TestAdminDecisionPastTheDeadlineClientGone(t *testing.T) {
	for i, verb := range []string{"approve", "reject"} {
		t.Run(verb, func(t *testing.T) {
			var logs strings.Builder
			var cancel context.CancelFunc
			no := fmt.Sprintf("PGHELDLAPSEDGONE%d", i)
			a := heldPastDeadline(t, no, "oUser-lapsed-gone", &logs, func(st store.Store) store.Store { return goneAtExpiry{st, &cancel} })
			ctx := context.Background()
			var gone context.Context
			gone, cancel = context.WithCancel(ctx) // the manager's console goes as the expiry is written
			defer cancel()
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/admin/api/approvals/"+no+"/"+verb, nil).WithContext(gone)
			req.Header.Set("Authorization", "Bearer "+consoleToken)
			req.Header.Set(console.CSRFHeader, "1")
			rec := httptest.NewRecorder()
			a.adminHandler().ServeHTTP(rec, req)
			if rec.Code != 499 {
				t.Errorf("%s past the deadline, the console gone: %d %s; want 499", verb, rec.Code, rec.Body)
			}
			if strings.Contains(logs.String(), "admin API failed") {
				t.Errorf("logged a failure for a manager who went away:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("logged an error for a manager who went away:\n%s", logs.String())
			}
		})
	}
}

// heldPastDeadline serves paygate with its store wrapped by wrap and its
// JSON log to logs, with order no of user (two years of premium) held for
// approval past its deadline, which the sweep has not expired yet, and
// returns the app.
func heldPastDeadline(t *testing.T, no, user string, logs io.Writer, wrap func(store.Store) store.Store) *app {
	t.Helper()
	_, a := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
admin: {token: `+consoleToken+`}
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: fake, base_url: "http://127.0.0.1:1/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
`, logs, withStoreWrap(wrap))
	deadline := time.Now().Add(-time.Second).Truncate(time.Second)
	if err := a.store.CreateOrder(context.Background(), &store.Order{OrderNo: no, Client: "bot", User: user, SKU: "premium-yearly",
		Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi",
		Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1, CreatedAt: deadline.Add(-time.Hour), ExpiresAt: deadline}); err != nil {
		t.Fatal(err)
	}
	return a
}
