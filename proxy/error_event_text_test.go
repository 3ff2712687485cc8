package proxy

import (
	"strings"
	"testing"
)

// TestErrorEventWithTextStopsThePayment: an event the provider names
// "error" whose data is no JSON ("event: error", "data: Internal Server
// Error", as a server or relay writes its failure in plain words, or with
// no data at all) is the provider's failure, as one with an error object
// is: the round it came in is not the model's whole answer, and its
// payment call is not run. Read as a malformed event, it was skipped, the
// stream read on, and create_order ran with the call the provider had
// flagged; the OpenAI SDKs, reading that stream themselves, raise at it.
// Before the first token and after it; the bot gets an error, never [DONE].
func TestErrorEventWithTextStopsThePayment(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	text := head + `[{"index":0,"delta":{"role":"assistant","content":"Sure"},"finish_reason":null}]}` + "\n\n"
	call := head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n"
	finish := head + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n" + "data: [DONE]\n\n"
	for _, errEvent := range []string{"event: error\ndata: Internal Server Error\n\n", "event: error\ndata:\n\n"} {
		for name, stream := range map[string]string{
			"before the first token":  errEvent + text + call + finish,
			"after the first token":   text + errEvent + call + finish,
			"between call and finish": text + call + errEvent + finish,
		} {
			t.Run(name+" "+strings.TrimSpace(strings.Split(errEvent, "\n")[1]), func(t *testing.T) {
				tools := &recordingTools{}
				url := toolsProxy(t, newFakeProvider(t, eventsThenText(stream, true)).URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if ran := tools.executed(); len(ran) > 0 {
					t.Errorf("ran %q after the provider's error event", ran)
				}
				if strings.Contains(body, "[DONE]") || !strings.Contains(body, `"error"`) {
					t.Errorf("status %d, answer %q; want an error, no [DONE]", resp.StatusCode, body)
				}
			})
		}
	}
}
