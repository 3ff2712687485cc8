package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestErrorEventWithTextFailsOver: an event named "error" whose data is no
// JSON, before the first token, is a provider's failure as any other there:
// the round goes to the next target, which answers it whole, and its
// payment call runs once, streamed or not (failover's whole-body assembler
// reads the event stream a provider that ignores "stream": false sends).
// As providers and relays write the name: "event: error", "event:error",
// with CRLF line ends; with text or no data.
func TestErrorEventWithTextFailsOver(t *testing.T) {
	const head = `data: {"id":"q1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
	round := head + `[{"index":0,"delta":{"role":"assistant","content":"Sure"},"finish_reason":null}]}` + "\n\n" +
		head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}` + "\n\n" +
		head + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n" + "data: [DONE]\n\n"
	for name, errEvent := range map[string]string{
		"text":          "event: error\ndata: Internal Server Error\n\n",
		"no data":       "event: error\ndata:\n\n",
		"no space CRLF": "event:error\r\ndata:upstream connect error\r\n\r\n",
	} {
		for _, stream := range []bool{true, false} {
			t.Run(name+map[bool]string{true: " streamed", false: " not streamed"}[stream], func(t *testing.T) {
				primary := newFakeProvider(t, eventsThenText(errEvent+round, stream))
				fallback := newFakeProvider(t, eventsThenText(round, stream))
				tools := &recordingTools{}
				url := toolsProxy(t, primary.URL, tools, withSecondProvider(fallback.URL))
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK || strings.Contains(body, `"error"`) || stream && !strings.Contains(body, "[DONE]") {
					t.Fatalf("status %d, answer %q; want the fallback's whole answer", resp.StatusCode, body)
				}
				if ran := tools.executed(); len(ran) != 1 || ran[0] != `create_order {"sku":"premium-monthly"}` {
					t.Errorf("ran %q; want the fallback's create_order once", ran)
				}
				if n := len(fallback.requests()); n == 0 {
					t.Errorf("the fallback was never asked")
				}
			})
		}
	}
}
