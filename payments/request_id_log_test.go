package payments_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// failingWindowStore fails AllowWindow, the per-minute call count, as a
// store that went down would.
type failingWindowStore struct{ payments.Store }

func (failingWindowStore) AllowWindow(context.Context, string, int, time.Duration, string) (bool, error) {
	return false, store.ErrUnavailable
}

// TestToolFailureLinesCarryRequestID: the payment tools' lines written
// while serving a request (a call refused by a rule, a rule that could not
// be checked, a request_refund that failed) carry the request's id from
// the context, as every other line of the request does, or an operator
// cannot tie the refusal to the X-Request-Id the client was answered with;
// a failed request_refund names the user's order it was for as order_no.
func TestToolFailureLinesCarryRequestID(t *testing.T) {
	tests := []struct {
		name    string
		service func(*payments.Options, *atomic.Bool)
		// calls are one caller's calls of tool, in order; the last is
		// the one logged.
		calls func(t *testing.T, e *env) (c payments.Caller, tool string, args []string)
		msg   string
	}{
		{"rate limited", func(o *payments.Options, _ *atomic.Bool) { o.Rules.MaxPaymentCallsPerMinute = 1 },
			func(*testing.T, *env) (payments.Caller, string, []string) {
				none := `{"order_no":"PG000000000000none"}`
				return caller("oUser-reqid-rate"), "query_order", []string{none, none}
			}, "payment tool call rate limited"},
		{"daily limit", func(o *payments.Options, _ *atomic.Bool) { o.Rules.MaxOrdersPerUserPerDay = 1 },
			func(*testing.T, *env) (payments.Caller, string, []string) {
				return caller("oUser-reqid-daily"), "create_order", []string{`{"sku":"premium-monthly","quantity":1}`, `{"sku":"premium-monthly","quantity":2}`}
			}, "order refused: daily limit"},
		{"rules not checked", func(o *payments.Options, _ *atomic.Bool) {
			o.Rules.MaxPaymentCallsPerMinute = 5
			o.Store = failingWindowStore{o.Store}
		}, func(*testing.T, *env) (payments.Caller, string, []string) {
			return caller("oUser-reqid-store"), "query_order", []string{`{"order_no":"PG000000000000none"}`}
		}, "payment rules could not be checked; call refused"},
		{"request_refund failed", func(o *payments.Options, fail *atomic.Bool) {
			o.Store = failingPutStore{Store: o.Store, fail: fail}
		}, func(t *testing.T, e *env) (payments.Caller, string, []string) {
			o := paidOrder(t, e, "oUser-reqid-refund", 1)
			return caller(o.User), "request_refund", []string{`{"order_no":"` + o.OrderNo + `","reason":"it broke"}`}
		}, "request_refund failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fail atomic.Bool
			e := newEnv(t, envOptions{storeClock: true, service: func(o *payments.Options) { tc.service(o, &fail) }})
			c, tool, args := tc.calls(t, e)
			fail.Store(true)
			logs := &logtest.Buffer{}
			tools := payments.NewTools(e.svc, toolNames, logging.New(logs, slog.LevelDebug, nil))
			const id = "req_tool_line_1"
			ctx := logging.WithRequestID(context.Background(), id)
			for _, a := range args {
				tools.Execute(ctx, c, tool, a)
			}
			found := false
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != tc.msg {
					continue
				}
				found = true
				if rec["request_id"] != id {
					t.Errorf("request_id %v; want %q: %s", rec["request_id"], id, line)
				}
				if no := gjson.Get(args[len(args)-1], "order_no"); tool == "request_refund" && rec["order_no"] != no.Str {
					t.Errorf("order_no %v; want the call's order %s: %s", rec["order_no"], no.Str, line)
				}
			}
			if !found {
				t.Fatalf("no %q line: %s", tc.msg, logs.String())
			}
		})
	}
}
