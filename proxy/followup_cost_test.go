package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestFollowupRoundPricedAtItsTarget: the round after a payment call that
// payments.followup_model answers is priced at that model's target (its
// provider and configured upstream model, the price table's key), not at
// the turn's model, and not by the model name its answer gives (a dated
// snapshot, "vendor/cheap-2025-01-01", as OpenAI names gpt-4o-mini's): each
// round under its own provider in the stats and the LLM spend their sum,
// stream or not.
func TestFollowupRoundPricedAtItsTarget(t *testing.T) {
	const callUsage = `{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}`
	const textUsage = `{"prompt_tokens":1200,"completion_tokens":50,"total_tokens":1250,"prompt_tokens_details":{"cached_tokens":0}}`
	const call = `[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
	own := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"stream":true`) {
			const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"vendor/upstream-model","choices":[`
			sseHandler(head+`{"index":0,"delta":{"role":"assistant","tool_calls":`+call+`},"finish_reason":null}]}`+"\n\n",
				head+`{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n",
				head+`],"usage":`+callUsage+`}`+"\n\n", "data: [DONE]\n\n")(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":`+
			strings.ReplaceAll(call, `"index":0,`, ``)+`},"finish_reason":"tool_calls"}],"usage":`+callUsage+`}`)
	}
	cheap := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"stream":true`) {
			const head = `data: {"id":"c2","object":"chat.completion.chunk","created":2,"model":"vendor/cheap-2025-01-01","choices":[`
			sseHandler(head+`{"index":0,"delta":{"role":"assistant","content":"Order X1 awaits your payment."},"finish_reason":null}]}`+"\n\n",
				head+`{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
				head+`],"usage":`+textUsage+`}`+"\n\n", "data: [DONE]\n\n")(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c2","object":"chat.completion","created":2,"model":"vendor/cheap-2025-01-01","choices":[{"index":0,"message":{"role":"assistant","content":"Order X1 awaits your payment."},"finish_reason":"stop"}],"usage":`+textUsage+`}`)
	}
	price := func(in, out string) config.Price {
		i, err := config.ParseDecimal(in)
		if err != nil {
			t.Fatal(err)
		}
		o, err := config.ParseDecimal(out)
		if err != nil {
			t.Fatal(err)
		}
		return config.Price{Input: i, Output: o}
	}
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			a, b := newFakeProvider(t, own), newFakeProvider(t, cheap)
			cfg := testConfig(t, a.URL, followupModel(b.URL))
			cfg.Providers[0].Prices = map[string]config.Price{"vendor/upstream-model": price("2.50", "10.00")}
			cfg.Providers[1].Prices = map[string]config.Price{"vendor/cheap": price("0.15", "0.60")}
			tools := &countingTools{}
			s, ledger, _ := ledgerProxy(t, cfg, nil, tools)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			req := `{"model":"gpt-test","messages":[{"role":"user","content":"I want premium"}]}`
			if stream {
				req = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"I want premium"}]}`
			}
			resp := post(t, srv.URL, "/v1/chat/completions", req, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			if body := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Order X1 awaits your payment.") {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			handled.Wait()
			if tools.executed.Load() != 1 {
				t.Fatalf("the payment call ran %d times; want 1", tools.executed.Load())
			}
			// 1000 × 2.50/M + 100 × 10.00/M = 0.0035; 1200 × 0.15/M + 50 × 0.60/M = 0.00021.
			want := map[string]string{"fake/vendor/upstream-model": "0.003500", "budget/vendor/cheap": "0.000210"}
			st := ledger.Stats()
			got := map[string]string{}
			for _, m := range st.ByModel {
				got[m.Provider+"/"+m.Model] = m.LLMCost
			}
			if len(got) != len(want) || got["fake/vendor/upstream-model"] != want["fake/vendor/upstream-model"] || got["budget/vendor/cheap"] != want["budget/vendor/cheap"] {
				t.Errorf("cost by model %v; want %v", got, want)
			}
			if st.LLMCost != "0.003710" || st.Turns != 1 {
				t.Errorf("LLM spend %s over %d turns; want 0.003710 over 1", st.LLMCost, st.Turns)
			}
		})
	}
}
