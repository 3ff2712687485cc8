package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/proxy/h1/h1test"
)

// kimiHead begins a chunk as Moonshot (Kimi) streams it.
const kimiHead = `data: {"id":"cmpl-k","object":"chat.completion.chunk","created":1,"model":"kimi-k2","choices":[{"index":0,`

// kimiFinish is Moonshot's finish chunk: its usage is in the choice, and no
// usage chunk follows.
func kimiFinish(reason string) string {
	return kimiHead + `"delta":{},"finish_reason":"` + reason + `","usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}]}` + "\n\n"
}

// TestChoiceLevelUsageSummed: Moonshot (Kimi) streams its usage in
// choices[0].usage of the finish chunk, with no top-level usage. A turn of
// two such rounds hands the bot that asked for usage one top-level usage,
// summed over both, and no per-round figure inside the choice; the ledger
// counts both rounds' tokens.
func TestChoiceLevelUsageSummed(t *testing.T) {
	up := newFakeProvider(t, roundByRound(
		sseHandler(kimiHead+`"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"p","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}`+"\n\n",
			kimiFinish("tool_calls"), "data: [DONE]\n\n"),
		sseHandler(kimiHead+`"delta":{"role":"assistant","content":"Done."},"finish_reason":null}]}`+"\n\n",
			kimiFinish("stop"), "data: [DONE]\n\n"),
	))
	cfg := testConfig(t, up.URL, nil)
	s, ledger, reg := ledgerProxy(t, cfg, nil, &recordingTools{})
	t.Cleanup(ledger.Close)
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	resp := post(t, srv.URL, "/v1/chat/completions", chatBody(true, `"stream_options":{"include_usage":true},`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	var top []string
	for _, c := range streamChunks(body) {
		if u := gjson.Get(c, "usage"); u.IsObject() {
			top = append(top, u.Raw)
		}
		if u := gjson.Get(c, "choices.0.usage"); u.Exists() {
			t.Errorf("a chunk carries a round's usage in its choice: %s", c)
		}
	}
	if len(top) != 1 || gjson.Get(top[0], "total_tokens").Int() != 30 || gjson.Get(top[0], "prompt_tokens").Int() != 20 {
		t.Errorf("top-level usage the bot got: %q; want one, total_tokens 30 (two rounds of 15)\n%s", top, body)
	}
	ledger.Close()
	for kind, want := range map[string]float64{"prompt": 20, "completion": 10} {
		if got := tokensCounted(t, reg, kind); got != want {
			t.Errorf("%s tokens counted: %v; want %v", kind, got, want)
		}
	}
}

// TestPlainStreamChoiceLevelUsageCounted: on the plain path (no end user)
// Moonshot's stream reaches the bot as sent, and its choice-level usage is
// counted.
func TestPlainStreamChoiceLevelUsageCounted(t *testing.T) {
	fp := newFakeProvider(t, sseHandler(kimiHead+`"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`+"\n\n",
		kimiFinish("stop"), "data: [DONE]\n\n"))
	cfg := testConfig(t, fp.URL, nil)
	s, ledger, reg := ledgerProxy(t, cfg, nil, nil)
	t.Cleanup(ledger.Close)
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if b := readAll(t, resp.Body); !strings.Contains(b, `"usage":{"prompt_tokens":10`) {
		t.Fatalf("stream: %s; want Moonshot's chunks as sent", b)
	}
	ledger.Close()
	for kind, want := range map[string]float64{"prompt": 10, "completion": 5} {
		if got := tokensCounted(t, reg, kind); got != want {
			t.Errorf("%s tokens counted: %v; want %v", kind, got, want)
		}
	}
}
