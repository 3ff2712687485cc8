package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestDeepSeekUsageSummedWithCacheTokens: DeepSeek (without thinking) puts
// usage on the finish chunk, with no usage chunk of its own, reports
// prompt_cache_hit_tokens / prompt_cache_miss_tokens at the usage object's
// top level (https://api-docs.deepseek.com/api/create-chat-completion),
// starts non-stream bodies with keep-alive blank lines and streams
// ": keep-alive" comments. A two-round payment turn hands the bot one usage
// summed over both rounds, those members included, stream or not, and no
// comment.
func TestDeepSeekUsageSummedWithCacheTokens(t *testing.T) {
	h := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		tool := strings.Contains(body, `"role":"tool"`)
		if !strings.Contains(body, `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "\n\n\n")
			w.(http.Flusher).Flush()
			if !tool {
				_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"index":0,"id":"call_0","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_cache_hit_tokens":8,"prompt_cache_miss_tokens":2}}`)
				return
			}
			_, _ = io.WriteString(w, `{"id":"c2","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"It is paid."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25,"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":4}}`)
			return
		}
		const c = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"deepseek-chat","system_fingerprint":"fp","choices":`
		if !tool {
			sseHandler(
				": keep-alive\n\n",
				c+`[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_0","type":"function","function":{"name":"query_order","arguments":""}}]},"logprobs":null,"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"order_no\":\"X1\"}"}}]},"logprobs":null,"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_cache_hit_tokens":8,"prompt_cache_miss_tokens":2}}`+"\n\n",
				"data: [DONE]\n\n")(w, r)
			return
		}
		sseHandler(
			c+`[{"index":0,"delta":{"role":"assistant","content":"It is paid."},"logprobs":null,"finish_reason":null}]}`+"\n\n",
			c+`[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25,"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":4}}`+"\n\n",
			"data: [DONE]\n\n")(w, r)
	}
	want := map[string]int64{"prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40,
		"prompt_cache_hit_tokens": 24, "prompt_cache_miss_tokens": 6}
	for _, tc := range []struct {
		name, req string
		usage     func(*testing.T, *http.Response) gjson.Result
	}{
		{"stream", `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"is X1 paid?"}]}`,
			func(t *testing.T, r *http.Response) gjson.Result {
				b := readAll(t, r.Body)
				if strings.Contains(b, ": keep-alive") {
					t.Errorf("the provider's comment was passed on: %s", b)
				}
				if !strings.Contains(b, "It is paid.") {
					t.Errorf("no answer: %s", b)
				}
				for _, line := range strings.Split(b, "\n") {
					if d, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(d, "usage").IsObject() {
						return gjson.Get(d, "usage")
					}
				}
				t.Fatalf("no usage in %s", b)
				return gjson.Result{}
			}},
		{"non-stream", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
			func(t *testing.T, r *http.Response) gjson.Result {
				b := readAll(t, r.Body)
				if !strings.Contains(b, "It is paid.") {
					t.Errorf("no answer: %s", b)
				}
				return gjson.Get(b, "usage")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, h)
			s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, queryTools{})
			t.Cleanup(ledger.Close)
			srv := h1test.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			u := tc.usage(t, post(t, srv.URL, "/v1/chat/completions", tc.req, map[string]string{"X-WeChat-OpenID": "o-user-1"}))
			for k, n := range want {
				if got := u.Get(k); got.Type != gjson.Number || got.Int() != n {
					t.Errorf("usage.%s = %s; want %d (usage %s)", k, got.Raw, n, u.Raw)
				}
			}
			if keys := len(u.Map()); keys != len(want) {
				t.Errorf("usage %s: %d members; want the rounds' %d", u.Raw, keys, len(want))
			}
		})
	}
}
