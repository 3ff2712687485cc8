package proxy

import (
	"testing"

	"github.com/tidwall/gjson"
)

// Non-stream usage summed over rounds whose usage has no total_tokens: the
// total is prompt+completion, as on the stream path, not 0.
func TestNonStreamUsageTotalFilledIn(t *testing.T) {
	a := `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5}}`
	b := `{"id":"c2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"paid"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":3}}`
	fp := newFakeProvider(t, scriptedAnswers(a, b))
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"x"}]}`,
		map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
	if got := gjson.Get(body, "usage.total_tokens").Int(); got != 38 {
		t.Errorf("usage %s; want total_tokens 38", gjson.Get(body, "usage").Raw)
	}
}
