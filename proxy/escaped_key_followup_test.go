package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestFollowUpWithEscapedToolCallsKeyGetsItsExchange: a bot's follow-up
// whose history spells the assistant message's tool calls with a JSON
// escape ("tool\u005fcalls", which every parser, gjson and the
// provider's, reads as tool_calls) is the follow-up of a mixed round all
// the same: it gets the kept payment exchange back (SPEC 3.7), and the
// create_order run for the user's message counts against
// max_payment_calls 1, so the model's second create_order is refused,
// never run. The turn asked a byte search for `"tool_calls"` whether the
// body could carry calls at all, and on no skipped both the restore and
// the count: the model, shown no payment, ran a second create_order for
// the user's one message.
func TestFollowUpWithEscapedToolCallsKeyGetsItsExchange(t *testing.T) {
	const args = `{\"sku\":\"premium-monthly\"}`
	for _, key := range []string{`tool\u005fcalls`, `\u0074ool_calls`, `tool_c\u0061lls`} {
		for _, stream := range []bool{false, true} {
			t.Run(key+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(
					callsRound(stream, `[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}},`+
						`{"index":1,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"`+args+`"}}]`),
					callsRound(stream, `[{"index":0,"id":"call_again","type":"function","function":{"name":"create_order","arguments":"`+args+`"}}]`),
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
				assistant := `{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`
				next := chatBodyWith(stream, weatherTool, user, strings.Replace(assistant, "tool_calls", key, 1),
					`{"role":"tool","tool_call_id":"call_w","content":"sunny"}`)
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
				if n := gjson.GetBytes(reqs[1].Body, `messages.#(role=="tool")#`).Array(); len(n) != 2 {
					t.Errorf("the follow-up went upstream with %d tool results; want the bot's and the restored create_order's\n%s", len(n), reqs[1].Body)
				}
			})
		}
	}
}
