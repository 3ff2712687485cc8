package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestSignedInStreamUsageKeepsTokenDetails: the usage a signed-in user's bot
// receives on a stream is the provider's usage object, not a reduced copy:
// the cached-prompt and reasoning token counts OpenAI reports survive, as
// they do on the plain path for the same request without a user.
func TestSignedInStreamUsageKeepsTokenDetails(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
	const usage = `{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200,"prompt_tokens_details":{"cached_tokens":768},"completion_tokens_details":{"reasoning_tokens":128}}`
	fp := newFakeProvider(t, sseHandler(
		head+`{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}],"usage":null}`+"\n\n",
		head+`{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`+"\n\n",
		`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[],"usage":`+usage+`}`+"\n\n",
		"data: [DONE]\n\n"))
	cfg := testConfig(t, fp.URL, nil)
	s, ledger, _ := ledgerProxy(t, cfg, nil, noTools{})
	t.Cleanup(ledger.Close)
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	const req = `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	plain := streamUsage(t, post(t, srv.URL, "/v1/chat/completions", req, nil))
	signedIn := streamUsage(t, post(t, srv.URL, "/v1/chat/completions", req, map[string]string{"X-WeChat-OpenID": "o-user-1"}))
	for _, path := range []string{"prompt_tokens_details.cached_tokens", "completion_tokens_details.reasoning_tokens"} {
		if p, u := plain.Get(path), signedIn.Get(path); !u.Exists() || u.Int() != p.Int() {
			t.Errorf("usage.%s: %s for a signed-in user, %s without one; want the provider's (usage %s)", path, u.Raw, p.Raw, signedIn.Raw)
		}
	}
	if signedIn.Raw != usage {
		t.Errorf("a one-round turn's usage: %s; want the provider's byte for byte: %s", signedIn.Raw, usage)
	}
}

// TestSignedInUsageSumsTokenDetailsOverRounds: a turn of two rounds (a
// payment call, then the answer) hands the bot one usage summed over both,
// streamed or not: the three counts and every member of the token details
// objects, with no key that no round sent.
func TestSignedInUsageSumsTokenDetailsOverRounds(t *testing.T) {
	const (
		usage1 = `{"prompt_tokens":1000,"completion_tokens":20,"total_tokens":1020,"prompt_tokens_details":{"cached_tokens":768,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":10}}`
		usage2 = `{"prompt_tokens":1100,"completion_tokens":50,"total_tokens":1150,"prompt_tokens_details":{"cached_tokens":1024},"completion_tokens_details":{"reasoning_tokens":30,"accepted_prediction_tokens":2}}`
	)
	want := map[string]int64{
		"prompt_tokens": 2100, "completion_tokens": 70, "total_tokens": 2170,
		"prompt_tokens_details.cached_tokens": 1792, "prompt_tokens_details.audio_tokens": 0,
		"completion_tokens_details.reasoning_tokens": 40, "completion_tokens_details.accepted_prediction_tokens": 2,
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		req     string
		usage   func(*testing.T, *http.Response) gjson.Result
	}{
		{"non-stream", queryThenAnswer(false, usage1, usage2), `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
			func(t *testing.T, r *http.Response) gjson.Result { return gjson.Get(readAll(t, r.Body), "usage") }},
		{"stream", queryThenAnswer(true, usage1, usage2), `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"is X1 paid?"}]}`,
			streamUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.handler)
			cfg := testConfig(t, fp.URL, nil)
			s, ledger, _ := ledgerProxy(t, cfg, nil, queryTools{})
			t.Cleanup(ledger.Close)
			srv := h1test.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			u := tc.usage(t, post(t, srv.URL, "/v1/chat/completions", tc.req, map[string]string{"X-WeChat-OpenID": "o-user-1"}))
			if n := len(fp.requests()); n != 2 {
				t.Fatalf("%d upstream rounds; want 2", n)
			}
			for path, n := range want {
				if got := u.Get(path); !got.Exists() || got.Int() != n {
					t.Errorf("usage.%s = %s; want %d (usage %s)", path, got.Raw, n, u.Raw)
				}
			}
			keys := 0
			u.ForEach(func(k, v gjson.Result) bool {
				keys++
				if v.IsObject() {
					keys += len(v.Map())
				}
				return true
			})
			if keys != len(want)+2 { // the two details objects themselves
				t.Errorf("usage %s: %d members; want those of the rounds' only (%d)", u.Raw, keys, len(want)+2)
			}
		})
	}
}

// queryThenAnswer answers a payment turn of two rounds, streamed or not: a
// query_order call with usage1, then, once the call's result is in the
// conversation, "It is paid." with usage2 (each usage the round's whole
// usage object, on a chunk of its own when streamed).
func queryThenAnswer(stream bool, usage1, usage2 string) http.HandlerFunc {
	const msg = `"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model"`
	const chunk = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":`
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		first := !strings.Contains(string(b), `"role":"tool"`)
		switch {
		case !stream && first:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{`+msg+`,"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}],"usage":`+usage1+`}`)
		case !stream:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{`+msg+`,"choices":[{"index":0,"message":{"role":"assistant","content":"It is paid."},"finish_reason":"stop"}],"usage":`+usage2+`}`)
		case first:
			sseHandler(
				chunk+`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":null}]}`+"\n\n",
				chunk+`[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n",
				chunk+`[],"usage":`+usage1+`}`+"\n\n",
				"data: [DONE]\n\n")(w, r)
		default:
			sseHandler(
				chunk+`[{"index":0,"delta":{"role":"assistant","content":"It is paid."},"finish_reason":null}]}`+"\n\n",
				chunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
				chunk+`[],"usage":`+usage2+`}`+"\n\n",
				"data: [DONE]\n\n")(w, r)
		}
	}
}

// streamUsage returns the usage of the stream's usage chunk.
func streamUsage(t *testing.T, resp *http.Response) gjson.Result {
	t.Helper()
	b := readAll(t, resp.Body)
	for _, line := range strings.Split(b, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(d, "usage").IsObject() {
			return gjson.Get(d, "usage")
		}
	}
	t.Fatalf("no usage chunk in %s", b)
	return gjson.Result{}
}

// queryTools runs query_order, the payment tool that moves no money.
type queryTools struct{}

func (queryTools) IsPayment(name string) bool { return name == "query_order" || name == "create_order" }
func (queryTools) Execute(context.Context, payments.Caller, string, string) payments.Outcome {
	return payments.Outcome{Result: []byte(`{"order_no":"X1","status":"paid"}`), Executed: true}
}
func (queryTools) Refused(string, string) payments.Outcome {
	return payments.Outcome{Result: []byte(`{"error":"ask the user"}`), Clarify: true}
}
