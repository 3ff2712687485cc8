package proxy

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRepeatedPaymentArguments: some OpenAI-compatible servers stream a
// call's arguments and then send the whole JSON again in a later delta
// (GLM-style servers in anomalyco/opencode#17339; servers that resend the
// complete object, NousResearch/hermes-agent#35718), so the arguments read
// by index are one object twice: {"sku":"premium-monthly"}{"sku":"premium-monthly"}.
// The create_order was refused as "not a JSON object", the model asked
// the user to confirm, and the same server doubled the next call too: no
// sale through such a server. Arguments that are one object repeated,
// byte for byte, are that object (every reading of them is the same call):
// the order is made once, and the provider gets the object back once.
// Two different objects stay refused, as any arguments that are not one
// object: which the model meant is not paygate's to guess.
func TestRepeatedPaymentArguments(t *testing.T) {
	const one = `{"sku":"premium-monthly"}`
	tests := []struct {
		name   string
		deltas []string // the arguments' deltas
		made   bool     // an order is made
	}{
		{"whole, then whole again", []string{one, one}, true},
		{"in pieces, then whole again", []string{`{"sku":`, `"premium-monthly"}`, one}, true},
		{"whole, then again after a space", []string{one, " " + one + "\n"}, true},
		{"two different objects", []string{one, `{"sku":"premium-monthly","quantity":2}`}, false},
		{"a whole object after a piece of one", []string{`{"sku":"prem`, one}, false},
	}
	st, _, svc := premiumSimPayments(t)
	for i, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				var round http.HandlerFunc
				if stream {
					deltas := []string{callDelta(`{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":""}}`)}
					for _, d := range tc.deltas {
						deltas = append(deltas, callDelta(`{"index":0,"function":{"arguments":`+strconv.Quote(d)+`}}`))
					}
					round = callRound(deltas...)
				} else {
					var all string
					for _, d := range tc.deltas {
						all += d
					}
					round = callsRound(false, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":`+strconv.Quote(all)+`}}]`)
				}
				// A user of its own per case: a purchase is deduplicated per user.
				user := "o-repeated-args-" + strconv.Itoa(i) + "-" + strconv.FormatBool(stream) + "-0123456789"
				result, sent := orderCallResult(t, st, svc, round, stream, user)
				made := gjson.Get(result, "order_no").Str != ""
				if made != tc.made {
					t.Errorf("order made: %v; want %v; the call's result: %s", made, tc.made, result)
				}
				if tc.made && sent != one {
					t.Errorf("the provider got the call's arguments back as %q; want %q", sent, one)
				}
			})
		}
	}
}

// TestFencedPaymentArguments: some models and gateways send a call's
// arguments inside a Markdown code fence, "```json\n{…}\n```"
// (earendil-works/pi#8858, from DeepSeek; OpenRouter in
// just-every/code#355). The create_order was refused as "not a JSON
// object", and the model, asked to confirm with the user, fenced the next
// one too. Arguments that are one fence around one object, and nothing
// else, are that object: the order is made and the provider gets the object
// back bare. A fence with more than the object in it, or an unclosed one,
// stays refused.
func TestFencedPaymentArguments(t *testing.T) {
	const one = `{"sku":"premium-monthly"}`
	tests := []struct {
		name, args string
		made       bool
	}{
		{"json fence", "```json\n" + one + "\n```", true},
		{"bare fence", "```\n" + one + "\n```", true},
		{"fence on one line", "```json " + one + " ```", true},
		{"text after the fence", "```json\n" + one + "\n```\nbuying it now", false},
		{"two objects in the fence", "```json\n" + one + one + "\n```", false},
		{"unclosed fence", "```json\n" + one, false},
		{"another language", "```python\n" + one + "\n```", false},
	}
	st, _, svc := premiumSimPayments(t)
	for i, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				round := callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":`+strconv.Quote(tc.args)+`}}]`)
				user := "o-fenced-args-" + strconv.Itoa(i) + "-" + strconv.FormatBool(stream) + "-0123456789"
				result, sent := orderCallResult(t, st, svc, round, stream, user)
				if made := gjson.Get(result, "order_no").Str != ""; made != tc.made {
					t.Errorf("order made: %v; want %v; the call's result: %s", made, tc.made, result)
				}
				if tc.made && sent != one {
					t.Errorf("the provider got the call's arguments back as %q; want %q", sent, one)
				}
			})
		}
	}
}

// TestEncodedPaymentArguments: a payment call whose arguments are a JSON
// string holding one JSON object, the object encoded twice, runs as that
// object. Models and servers that serialize arguments already serialized
// (vLLM's hermes parser with Granite 4, vllm-project/vllm#54964; Qwen2.5,
// FoundationAgents/OpenManus#989) had every create_order refused as not a
// JSON object, and the user, asked to confirm, was refused again turn after
// turn, the model writing its calls so each time. A string holding
// anything else (an array, text, a string again, an object and more) is
// not read: which part is the call is not for a reader to guess.
func TestEncodedPaymentArguments(t *testing.T) {
	const one = `{"sku":"premium-monthly","quantity":2}`
	tests := []struct {
		name, args string
		made       bool
	}{
		{"an object encoded twice", strconv.Quote(one), true},
		{"with white space", " " + strconv.Quote("\n"+one+" ") + "\n", true},
		{"a string holding an array", strconv.Quote(`[` + one + `]`), false},
		{"a string holding text", strconv.Quote(`buy ` + one), false},
		{"a string holding two objects", strconv.Quote(one + one), false},
		{"an object encoded three times", strconv.Quote(strconv.Quote(one)), false},
		{"a string holding no JSON", strconv.Quote(`{"sku":"premium-monthly",}`), false},
	}
	st, sim, svc := premiumSimPayments(t)
	for i, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				round := callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":`+strconv.Quote(tc.args)+`}}]`)
				user := "o-encoded-args-" + strconv.Itoa(i) + "-" + strconv.FormatBool(stream) + "-0123456789"
				result, sent := orderCallResult(t, st, svc, round, stream, user)
				no := gjson.Get(result, "order_no").Str
				if made := no != ""; made != tc.made {
					t.Fatalf("order made: %v; want %v; the call's result: %s", made, tc.made, result)
				}
				if !tc.made {
					if sent != "{}" {
						t.Errorf("the provider got the refused call's arguments back as %q; want {}", sent)
					}
					return
				}
				if sent != one {
					t.Errorf("the provider got the call's arguments back as %q; want %q", sent, one)
				}
				tx, ok := sim.Order(no)
				if !ok || tx.Amount.Total != 2*4999 {
					t.Errorf("WeChat Pay has order %s at %+v (found %v); want 2 x 4999 fen", no, tx.Amount, ok)
				}
			})
		}
	}
}

// premiumSimPayments is payments on an embedded store of the test's own,
// against the WeChat Pay simulator, selling premium-monthly (49.99, up to
// 12): what the payment-arguments tests in this file make their orders
// with, so that each reads as the arguments it tries.
func premiumSimPayments(t *testing.T) (store.Store, *wxsim.Server, *payments.Service) {
	t.Helper()
	st := testdrivers.Open(t, "embedded", nil)
	sim, svc := newSimPayments(t, st, simPayments{Sim: wxsim.Options{}, AttemptTimeout: 5 * time.Second,
		Catalog: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99", MaxQuantity: 12}}})
	return st, sim, svc
}

// orderCallResult serves user one turn through a proxy running svc's
// payment tools on st: the model's first round is round (a create_order
// call, call_pay), its second says "Done.". It returns what the model was
// told of the call (the tool result of call_pg_1_0) and the arguments the
// provider got back on it. It exists because every payment-arguments test
// asks these two things of the same turn, after the same checks (200, two
// rounds); a test gives each case a user of its own, a purchase being
// deduplicated per user.
func orderCallResult(t *testing.T, st store.Store, svc *payments.Service, round http.HandlerFunc, stream bool, user string) (result, sent string) {
	t.Helper()
	fp := newFakeProvider(t, roundByRound(round, textRound(stream, "Done.")))
	_, url := servePaygate(t, testConfig(t, fp.URL, nil), Options{Tools: simTools(svc), State: st, Reconciler: svc, UserPayments: svc}, nil)
	resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": user})
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	seen := fp.requests()
	if len(seen) != 2 {
		t.Fatalf("%d upstream requests; want 2\n%s", len(seen), body)
	}
	return gjson.GetBytes(seen[1].Body, `messages.#(tool_call_id=="call_pg_1_0").content`).Str,
		gjson.GetBytes(seen[1].Body, `messages.#(role=="assistant").tool_calls.0.function.arguments`).Str
}
