package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// createOrderArgs are the arguments of the create_order calls of
// followUpAfterMixedRound's rounds, as a JSON string's contents.
const createOrderArgs = `{\"sku\":\"premium-monthly\"}`

// weatherAssistant is the bot's assistant message of
// followUpAfterMixedRound's follow-up: its own call of the mixed round.
const weatherAssistant = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`

// followUpAfterMixedRound runs, under max_payment_calls 1, a turn whose
// first round is mixed (its answer from mixed: the bot's get_weather call,
// call_w, beside a create_order), then the bot's follow-up with its tool's
// result after its assistant message (assistant), whose rounds are a
// second create_order and text. The kept exchange restored into the
// follow-up (SPEC 3.7) counts its create_order against the budget: it
// checks the bot got its own call alone and create_order ran once, never
// again for the user's one message, and returns the upstream requests,
// the follow-up's first at [1].
func followUpAfterMixedRound(t *testing.T, stream bool, mixed http.HandlerFunc, assistant string) []seenRequest {
	t.Helper()
	fp := newFakeProvider(t, roundByRound(mixed,
		callsRound(stream, `[{"index":0,"id":"call_again","type":"function","function":{"name":"create_order","arguments":"`+createOrderArgs+`"}}]`),
		textRound(stream, "Done.")))
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 1 })
	hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	const user = `{"role":"user","content":"buy premium; weather?"}`
	resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, user), hdr)
	body := readAll(t, resp.Body)
	if got := botCallIDs(stream, body); !slices.Equal(got, []string{"call_w"}) {
		t.Fatalf("the bot got calls %q; want its own (%d %s)", got, resp.StatusCode, body)
	}
	next := chatBodyWith(stream, weatherTool, user, assistant, `{"role":"tool","tool_call_id":"call_w","content":"sunny"}`)
	resp = post(t, url, "/v1/chat/completions", next, hdr)
	body = readAll(t, resp.Body)
	want := []string{`create_order {"sku":"premium-monthly"}`}
	if got := tools.executed(); !slices.Equal(got, want) {
		t.Errorf("executed %q; want %q: the follow-up's create_order ran again (the bot got %d %s)", got, want, resp.StatusCode, body)
	}
	reqs := fp.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d upstream requests; want 3 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
	}
	return reqs
}

// TestFollowUpWithEscapedToolCallsKeyGetsItsExchange: a bot's follow-up
// whose history spells the assistant message's tool calls with a JSON
// escape ("tool\u005fcalls", which every parser, gjson and the
// provider's, reads as tool_calls) is the follow-up of a mixed round all
// the same: it gets the kept payment exchange back, and the create_order
// run for the user's message counts against max_payment_calls 1, so the
// model's second create_order is refused, never run. The turn asked a byte
// search for `"tool_calls"` whether the body could carry calls at all, and
// on no skipped both the restore and the count: the model, shown no
// payment, ran a second create_order for the user's one message.
func TestFollowUpWithEscapedToolCallsKeyGetsItsExchange(t *testing.T) {
	for _, key := range []string{`tool\u005fcalls`, `\u0074ool_calls`, `tool_c\u0061lls`} {
		for _, stream := range []bool{false, true} {
			t.Run(key+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				mixed := callsRound(stream, `[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}},`+
					`{"index":1,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"`+createOrderArgs+`"}}]`)
				reqs := followUpAfterMixedRound(t, stream, mixed, strings.Replace(weatherAssistant, "tool_calls", key, 1))
				if n := gjson.GetBytes(reqs[1].Body, `messages.#(role=="tool")#`).Array(); len(n) != 2 {
					t.Errorf("the follow-up went upstream with %d tool results; want the bot's and the restored create_order's\n%s", len(n), reqs[1].Body)
				}
			})
		}
	}
}

// TestBotWrittenPaymentUnderEscapedKeyCounts: a follow-up whose history,
// after the user's last message, holds a create_order call and its result
// that no kept exchange restores (the bot wrote them itself) counts that
// payment against max_payment_calls 1 however the assistant message spells
// its tool_calls key, so the model's next create_order for the user's one
// message is refused, never run. paymentsSinceUser asked a byte search for
// `"tool_calls"` before reading the messages: with the key spelled
// "tool\u005fcalls" (which gjson and the provider read as tool_calls) it
// counted no payment.
func TestBotWrittenPaymentUnderEscapedKeyCounts(t *testing.T) {
	for _, key := range []string{`tool_calls`, `tool\u005fcalls`, `\u0074ool_calls`} {
		for _, stream := range []bool{false, true} {
			t.Run(key+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(
					callsRound(stream, `[{"index":0,"id":"call_again","type":"function","function":{"name":"create_order","arguments":"`+createOrderArgs+`"}}]`),
					textRound(stream, "Done.")))
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 1 })
				body := chatBodyWith(stream, weatherTool, `{"role":"user","content":"buy premium"}`,
					`{"role":"assistant","content":null,"`+key+`":[{"id":"pay_1","type":"function","function":{"name":"create_order","arguments":"`+createOrderArgs+`"}}]}`,
					`{"role":"tool","tool_call_id":"pay_1","content":"{\"order_no\":\"O0\",\"status\":\"awaiting_payment\"}"}`)
				resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
				got := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, got)
				}
				if ran := tools.executed(); len(ran) != 0 {
					t.Errorf("executed %q; want none: the create_order the history holds did not count (the bot got %s)", ran, got)
				}
			})
		}
	}
}

// TestSeveralChoicesOfFollowUpWithEscapedToolCallsKeyRefused: a request for
// n 2 that leaves the payment tools out (tool_choice "none") is served
// plainly, but not one whose messages carry tool calls: a kept payment
// exchange may be restored into it, which only the turn does, and the turn
// serves one choice. So too when the assistant message spells its
// tool_calls key with an escape, which the provider reads as tool_calls:
// asked by a byte search for `"tool_calls"`, such a follow-up of a mixed
// round went upstream plainly, without the payment its user's message made.
func TestSeveralChoicesOfFollowUpWithEscapedToolCallsKeyRefused(t *testing.T) {
	for _, key := range []string{`tool_calls`, `tool\u005fcalls`, `tool_c\u0061lls`} {
		t.Run(key, func(t *testing.T) {
			fp := newFakeProvider(t, textRound(false, "Sunny."))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			body := chatBodyWith(false, weatherTool+`"tool_choice":"none","n":2,`, `{"role":"user","content":"buy premium; weather?"}`,
				strings.Replace(weatherAssistant, "tool_calls", key, 1), `{"role":"tool","tool_call_id":"call_w","content":"sunny"}`)
			resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			got := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusBadRequest || gjson.Get(got, "error.param").Str != "n" {
				t.Errorf("status %d %s; want 400 on n: the follow-up went upstream plainly (%d requests)", resp.StatusCode, got, len(fp.requests()))
			}
		})
	}
}
