package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestValuesBelowTheirFloor: a number or duration below what its reader can
// use is refused at its file:line and key, not read as something else.
// payments reads a per-user cap of 0 or less as "no cap", so -1 would turn
// the limit off as a written 0 would (already refused). A period of a few
// nanoseconds (audit.head_every: 1ns, or 1ms typed for 1m) runs its work,
// and its log line, thousands of times a second.
func TestValuesBelowTheirFloor(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"negative daily order cap", "payments:\n  rules:\n    max_orders_per_user_per_day: -1\n",
			"c.yaml:3: payments.rules.max_orders_per_user_per_day: -1: give the cap, at least 1"},
		{"negative per-minute call cap", "payments: {rules: {max_payment_calls_per_minute: -5}}\n",
			"c.yaml:1: payments.rules.max_payment_calls_per_minute: -5: give the cap, at least 1"},
		{"caps of 1", "payments: {rules: {max_orders_per_user_per_day: 1, max_payment_calls_per_minute: 1}}\n", ""},
		{"head_every 1ns", "audit:\n  head_every: 1ns\n", "c.yaml:2: audit.head_every: 1ns is below 1s"},
		{"head_every 1ms", "audit: {head_every: 1ms}\n", "c.yaml:1: audit.head_every: 1ms is below 1s"},
		{"head_every 1s", "audit: {head_every: 1s}\n", ""},
		{"sweep_interval 999ms", "payments:\n  reconcile:\n    sweep_interval: 999ms\n", "c.yaml:3: payments.reconcile.sweep_interval: 999ms is below 1s"},
		{"sweep_interval 1s", "payments: {reconcile: {sweep_interval: 1s}}\n", ""},
		{"sse_keepalive 5ms", "server:\n  sse_keepalive: 5ms\n", "c.yaml:2: server.sse_keepalive: 5ms is below 1s: each period writes a keep-alive (a blank line, not a comment) to every stream waiting between rounds"},
		{"sse_keepalive 1s", "server: {sse_keepalive: 1s}\n", ""},
		{"sse_keepalive 0: never", "server: {sse_keepalive: 0s}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(cfg *Config) string {
				r := cfg.Payments.Rules
				return fmt.Sprintf("caps %d/day %d/min, head_every %v, sweep_interval %v, sse_keepalive %v",
					r.MaxOrdersPerUserPerDay, r.MaxPaymentCallsPerMinute, cfg.Audit.HeadEvery.D(),
					cfg.Payments.Reconcile.SweepInterval.D(), cfg.Server.SSEKeepalive.D())
			})
		})
	}
}

// loadsOrRefused parses src as c.yaml and asserts that it loads (want "")
// or is refused with an error starting with want; seen describes what a
// config that loaded when it should not have holds.
func loadsOrRefused(t *testing.T, src, want string, seen func(*Config) string) {
	t.Helper()
	cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
	switch {
	case want == "" && err != nil:
		t.Fatalf("got %v; want it to load", err)
	case want != "" && err == nil:
		t.Fatalf("loaded (%s); want %s", seen(cfg), want)
	case want != "" && !strings.HasPrefix(err.Error(), want):
		t.Fatalf("got %q; want it to start with %q", err, want)
	}
}

// TestDurationsAboveTheirCeiling: a duration near time.Duration's largest
// (2562047h) loaded, and the store's expiries, a TTL plus a grace, wrapped
// round to a negative sum: the Redis driver then set a 1 ms expiry, and an
// order or a claim vanished at once. No duration paygate reads needs more
// than 10 years; a longer one is an error at its line.
func TestDurationsAboveTheirCeiling(t *testing.T) {
	const above = `is above the longest duration paygate takes, 87600h (10 years)`
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"the largest duration", "payments:\n  order_ttl: 2562047h\n", `c.yaml:2: payments.order_ttl: "2562047h" ` + above},
		{"just above 10 years", "payments: {dedupe_window: 87600h1ns}\n", `c.yaml:1: payments.dedupe_window: "87600h1ns" ` + above},
		{"a provider's timeout", "providers:\n  - name: p\n    base_url: http://x/v1\n    timeouts: {idle: 100000h}\n" +
			"models: [{name: m, targets: [{provider: p, model: x}]}]\n", `c.yaml:4: providers[0].timeouts.idle: "100000h" ` + above},
		{"from a variable", "audit:\n  retain_text: ${KEEP}\n", `c.yaml:2: audit.retain_text: "${KEEP}" ` + above}, // a variable's value is named, not printed
		{"10 years", "audit: {retain_text: 87600h}\n", ""},
		{"7 years of text", "audit: {retain_text: 61320h}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(map[string]string{"KEEP": "2000000h"}))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded (order_ttl %v, dedupe_window %v, retain_text %v); want %s",
					cfg.Payments.OrderTTL.D(), cfg.Payments.DedupeWindow.D(), cfg.Audit.RetainText.D(), tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestOrderTTLWithinPrepayValidity: payments.order_ttl above 2h is refused
// at its line. WeChat Pay's prepay_id (JSAPI) and code_url (Native) are
// valid for 2 hours whatever time_expire says, and an order is paid with
// the parameters of its one prepay, re-signed: an order still "payable"
// after 2 hours handed the bot parameters wx.requestPayment refuses.
func TestOrderTTLWithinPrepayValidity(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"the default", "payments: {}\n", ""},
		{"30m", "payments: {order_ttl: 30m}\n", ""},
		{"2h", "payments:\n  order_ttl: 2h\n", ""},
		{"2h and a second", "payments:\n  order_ttl: 2h0m1s\n", "c.yaml:2: payments.order_ttl: 2h0m1s is above 2h"},
		{"a day", "payments: {order_ttl: 24h}\n", "c.yaml:1: payments.order_ttl: 24h0m0s is above 2h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(cfg *Config) string { return fmt.Sprintf("order_ttl %v", cfg.Payments.OrderTTL.D()) })
		})
	}
}

// TestOrderTTLLongEnoughForWeChatPay: payments.order_ttl under 2m is
// refused at its line. WeChat Pay raises a time_expire under a minute after
// the order is placed to that minute, so a 30s order stayed payable there
// 30s past the expires_at the user was shown; and the sweep resolves an
// order left creating only after its grace (30s) and opens it only with a
// minute to go (payments' minPayWindow), so under 2m such an order was
// never opened at all.
func TestOrderTTLLongEnoughForWeChatPay(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"30s", "payments: {order_ttl: 30s}\n", "c.yaml:1: payments.order_ttl: 30s is below 2m0s"},
		{"a minute", "payments:\n  order_ttl: 1m\n", "c.yaml:2: payments.order_ttl: 1m0s is below 2m0s"},
		{"2m", "payments: {order_ttl: 2m}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(cfg *Config) string { return fmt.Sprintf("order_ttl %v", cfg.Payments.OrderTTL.D()) })
		})
	}
}

// TestConfirmTTLWithinItsClaim: payments.refunds.confirm_ttl above 72h is
// refused at its line. A refund proposal's claim, which keeps it the only
// open proposal of its amount, is kept at most 3.5 days (well inside the
// store's tombstones); a proposal living longer outlived it, and the same
// request_refund then made a second open proposal the user could confirm
// too. Refused only by the payments service, it stopped the start with
// no line to look at.
func TestConfirmTTLWithinItsClaim(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"the default", "payments: {}\n", ""},
		{"72h", "payments:\n  refunds:\n    confirm_ttl: 72h\n", ""},
		{"72h and a second", "payments:\n  refunds:\n    confirm_ttl: 72h0m1s\n", "c.yaml:3: payments.refunds.confirm_ttl: 72h0m1s is above 72h"},
		{"a week", "payments: {refunds: {confirm_ttl: 168h}}\n", "c.yaml:1: payments.refunds.confirm_ttl: 168h0m0s is above 72h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(cfg *Config) string { return fmt.Sprintf("confirm_ttl %v", cfg.Payments.Refunds.ConfirmTTL.D()) })
		})
	}
}

// TestDedupeWindowFloor: payments.dedupe_window is how long after its
// payment a purchase asked for again is answered already_paid rather than
// with a second payable order (SPEC 4). A window of milliseconds (10ms
// typed for 10m, 1ns) loaded silently and turned that protection off: the
// model's create_order right after the payment made a second order the
// user could pay as well. Below 1m it is refused at its line.
func TestDedupeWindowFloor(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"10ms", "payments:\n  dedupe_window: 10ms\n", "c.yaml:2: payments.dedupe_window: 10ms is below 1m0s: a user who has just paid and asks again"},
		{"1ns", "payments: {dedupe_window: 1ns}\n", "c.yaml:1: payments.dedupe_window: 1ns is below 1m0s"},
		{"59s", "payments: {dedupe_window: 59s}\n", "c.yaml:1: payments.dedupe_window: 59s is below 1m0s"},
		{"1m", "payments: {dedupe_window: 1m}\n", ""},
		{"the default", "log: {level: info}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(cfg *Config) string {
				return fmt.Sprintf("dedupe_window %v", cfg.Payments.DedupeWindow.D())
			})
		})
	}
}

// TestTargetWeightCeiling: a target's weight is bounded, so the weighted
// strategy's sum of a model's weights cannot overflow. Two weights near
// the largest int loaded, and their sum wrapped round to a negative
// total: every round drew the same target first, whatever the weights
// said, with no word of it.
func TestTargetWeightCeiling(t *testing.T) {
	const head = "providers: [{name: p, base_url: \"http://x/v1\"}]\nmodels:\n  - name: m\n    strategy: weighted\n    targets:\n      - {provider: p, model: a, weight: 1}\n"
	tests := []struct {
		name, weight string
		want         string // the error's start; "" when it loads
	}{
		{"the largest int", "9223372036854775807", "c.yaml:7: models[0].targets[1].weight: 9223372036854775807 is above 1000000, the largest weight"},
		{"just above the ceiling", "1000001", "c.yaml:7: models[0].targets[1].weight: 1000001 is above 1000000, the largest weight"},
		{"the ceiling", "1000000", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, head+"      - {provider: p, model: b, weight: "+tc.weight+"}\n", tc.want, func(cfg *Config) string {
				return fmt.Sprintf("weights %d and %d", cfg.Models[0].Targets[0].Weight, cfg.Models[0].Targets[1].Weight)
			})
		})
	}
}

// TestDecisionTTLFloors: payments.refunds.confirm_ttl is how long the user
// may confirm a refund proposal, payments.rules.approval_ttl how long a
// manager may approve an order held for one. A written 0 is refused (a
// proposal must be answerable, a held order approvable), but a TTL of
// milliseconds (15ms typed for 15m, 72ms for 72h) loaded silently and was
// as unanswerable: every proposal expired before the user saw it, every
// held order before a manager could open it, its user told it awaits
// approval. Below 1s each is refused at its line.
func TestDecisionTTLFloors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"confirm_ttl 15ms", "payments:\n  refunds:\n    confirm_ttl: 15ms\n", "c.yaml:3: payments.refunds.confirm_ttl: 15ms is below 1s"},
		{"confirm_ttl 1ns", "payments: {refunds: {confirm_ttl: 1ns}}\n", "c.yaml:1: payments.refunds.confirm_ttl: 1ns is below 1s"},
		{"confirm_ttl 2s", "payments: {refunds: {confirm_ttl: 2s}}\n", ""},
		{"approval_ttl 72ms", "payments:\n  rules:\n    approval_ttl: 72ms\n", "c.yaml:3: payments.rules.approval_ttl: 72ms is below 1s"},
		{"approval_ttl 1s", "payments: {rules: {approval_ttl: 1s}}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(cfg *Config) string {
				return fmt.Sprintf("confirm_ttl %v, approval_ttl %v", cfg.Payments.Refunds.ConfirmTTL.D(), cfg.Payments.Rules.ApprovalTTL.D())
			})
		})
	}
}
