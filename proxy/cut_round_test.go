package proxy

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestCutRoundRunsNoPaymentCall: a round the provider says it cut
// (finish_reason "length" at max_tokens, "content_filter" mid-answer)
// carries its tool calls as far as they got, and a server that auto-closes
// the partial JSON of a cut call (vLLM sends what its partial-JSON parser
// made of it at the end of the stream) hands on arguments that parse:
// `{"sku":"premium-monthly","quantity":1}` of a model that was writing
// 12, or of a SKU whose name went on. Such a payment call ran, an order
// made and announced, where the bot's own calls of a cut round keep the
// "length" that tells it not to run them (TestMixedRoundKeepsLength). None
// runs: the model is told the call was cut and asks the user, stream and
// non-stream. Providers spell a cut their own way, in their own case:
// Mistral's "model_length" (the context window), Anthropic's
// "max_tokens" and Gemini's "MAX_TOKENS" / "SAFETY" as relays pass them
// on, Zhipu's and Hunyuan's "sensitive" (their content filter). A
// request_refund of such a round is no more run than a create_order.
func TestCutRoundRunsNoPaymentCall(t *testing.T) {
	calls := map[string]string{
		"create_order":   `[{"index":0,"id":"call_p","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"quantity\":1}"}}]`,
		"request_refund": `[{"index":0,"id":"call_r","type":"function","function":{"name":"request_refund","arguments":"{\"order_no\":\"X1\",\"reason\":\"wrong\"}"}}]`,
	}
	for _, finish := range []string{"length", "content_filter", "Length", "max_tokens", "MAX_TOKENS", "model_length", "model_context_window_exceeded", "sensitive", "SAFETY", "PROHIBITED_CONTENT"} {
		for _, tool := range []string{"create_order", "request_refund"} {
			if tool == "request_refund" && finish != "length" && finish != "MAX_TOKENS" {
				continue
			}
			for _, stream := range []bool{false, true} {
				t.Run(finish+"/"+tool+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
					fp, tools := paymentRoundThenText(t, stream, calls[tool], finish, "How many months would you like?")
					if got := tools.executed(); len(got) != 0 {
						t.Errorf("executed %q from a round cut with %q; want none", got, finish)
					}
					reqs := fp.requests()
					if len(reqs) != 2 {
						t.Fatalf("%d upstream rounds; want 2 (the model told the call was cut)", len(reqs))
					}
					result := gjson.GetBytes(reqs[1].Body, `messages.#(role=="tool").content`).Str
					if gjson.Get(result, "status").Str != "not_executed" {
						t.Errorf("the model's tool result %q; want not_executed", result)
					}
				})
			}
		}
	}
}

// TestCutMixedRoundRunsNoPaymentCall: a cut round with the bot's own call
// beside the payment call (a mixed round, SPEC 3 step 7) runs its payment
// call no more than a round of payment calls alone does, stream and
// non-stream; the bot gets its call with the provider's "length".
func TestCutMixedRoundRunsNoPaymentCall(t *testing.T) {
	const pay = `{"index":0,"id":"call_p","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"quantity\":1}"}}`
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			body, tools := weatherBotTurn(t, endedRound(stream, nil, `{"role":"assistant","content":null`, `[`+pay+`,`+weatherCall(1, "call_w")+`]`, "length"), stream)
			if got := tools.executed(); len(got) != 0 {
				t.Errorf("executed %q from a mixed round cut with \"length\"; want none", got)
			}
			if got := botCallIDs(stream, body); len(got) != 1 || got[0] != "call_w" {
				t.Errorf("the bot got calls %q; want its own, call_w: %s", got, body)
			}
		})
	}
}

// TestWholeRoundRunsPaymentCall: the finishes a provider ends a whole tool
// round with run its payment call: "tool_calls", the legacy
// "function_call", and "stop" as Gemini (and OpenAI at times) ends one, in
// any case (a relay passing Gemini's own "STOP" on).
func TestWholeRoundRunsPaymentCall(t *testing.T) {
	const call = `[{"index":0,"id":"call_p","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"quantity\":1}"}}]`
	for _, finish := range []string{"tool_calls", "function_call", "stop", "STOP", "TOOL_CALLS"} {
		for _, stream := range []bool{false, true} {
			t.Run(finish+map[bool]string{false: "/non-stream", true: "/stream"}[stream], func(t *testing.T) {
				_, tools := paymentRoundThenText(t, stream, call, finish, "Your order is ready.")
				if got := tools.executed(); len(got) != 1 {
					t.Errorf("executed %q from a whole round ended with %q; want the create_order", got, finish)
				}
			})
		}
	}
}

// paymentRoundThenText runs a signed-in turn whose first round carries
// calls (a tool_calls JSON array) and ends with finish, and whose next
// round answers text; it returns the provider, to read what the model was
// told, and the tools, to read what ran.
func paymentRoundThenText(t *testing.T, stream bool, calls, finish, text string) (*fakeProvider, *recordingTools) {
	t.Helper()
	fp := newFakeProvider(t, roundByRound(
		endedRound(stream, nil, `{"role":"assistant","content":null`, calls, finish),
		textRound(stream, text)))
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, nil)
	resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	if body := readAll(t, resp.Body); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return fp, tools
}
