package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// metricSum adds the values of every sample of name whose labels include all
// of want (a Prometheus text exposition scraped from /metrics).
func metricSum(t *testing.T, exposition, name string, want map[string]string) float64 {
	t.Helper()
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		labels := ""
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			labels, rest = rest[1:end], rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // another metric sharing the prefix
		}
		ok := true
		for k, v := range want {
			if !strings.Contains(","+labels+",", ","+k+`="`+v+`",`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestMetricsAfterPurchaseAndFailover: a purchase whose rounds fail over from
// a broken primary, then its payment, move the right counters by the right
// amounts; the accounting prices each round and closes the conversation's
// cost as one completed transaction.
func TestMetricsAfterPurchaseAndFailover(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"message":"primary down","type":"server_error"}}`)
	}))
	defer broken.Close()
	good := newScriptedProvider(t, purchaseScript)

	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
admin: {token: adm-metrics-1}
store: {path: "` + t.TempDir() + `/p.db"}
providers:
  - {name: primary, base_url: "` + broken.URL + `/v1", api_key: k1}
  - name: fallback
    base_url: "` + good.URL + `/v1"
    api_key: k2
    prices: {"openai/gpt-4o": {input: "2.50", output: "10.00"}}
models:
  - {name: gpt-4o, targets: [{provider: primary, model: openai/gpt-4o}, {provider: fallback, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
	base, a := serveConfig(t, src, io.Discard)

	ans := chatJSON(t, base, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	orderNo := ans.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
	if orderNo == "" {
		t.Fatalf("no order: %s", ans.Raw)
	}
	if d, err := a.sim.Pay(context.Background(), orderNo); err != nil || !d.Acked {
		t.Fatalf("payment notification: %+v %v", d, err)
	}
	a.ledger.Flush() // the notification does not wait for the ledger's writer
	m := scrape(t, base)

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"paygate_requests_total", map[string]string{"route": "chat", "status": "200"}, 1},
		// Two rounds, each: the primary's 500, its one retry, then the fallback.
		{"paygate_upstream_attempts_total", map[string]string{"provider": "primary"}, 4},
		{"paygate_upstream_attempts_total", map[string]string{"provider": "fallback", "outcome": "ok"}, 2},
		{"paygate_upstream_failovers_total", map[string]string{"provider": "primary"}, 2},
		{"paygate_tool_calls_total", map[string]string{"tool": "create_order", "outcome": "executed"}, 1},
		{"paygate_order_transitions_total", map[string]string{"to": "awaiting_payment"}, 1},
		{"paygate_order_transitions_total", map[string]string{"from": "awaiting_payment", "to": "paid"}, 1},
		{"paygate_notifications_total", map[string]string{"outcome": "applied"}, 1},
		{"paygate_wechatpay_requests_total", map[string]string{"op": "prepay", "outcome": "ok"}, 1},
		// Rounds used 100+20 and 150+10 tokens (the scripted usage).
		{"paygate_llm_tokens_total", map[string]string{"provider": "fallback", "kind": "prompt"}, 250},
		{"paygate_llm_tokens_total", map[string]string{"provider": "fallback", "kind": "completion"}, 30},
		// 250 × 2.50/M + 30 × 10.00/M = 0.000625 + 0.0003 = 0.000925
		{"paygate_llm_cost_total", map[string]string{"provider": "fallback"}, 0.000925},
		{"paygate_transactions_completed_total", nil, 1},
		{"paygate_transaction_llm_cost_total", nil, 0.000925},
		{"paygate_cost_per_transaction", nil, 0.000925},
	}
	for _, tc := range tests {
		if got := metricSum(t, m, tc.name, tc.labels); got < tc.want-1e-12 || got > tc.want+1e-12 {
			t.Errorf("%s%v = %v; want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// An LLM latency the server can measure lands in a finite bucket: an
	// attempt waits for a non-streamed answer's headers up to its
	// provider's timeouts.total (5 minutes by default), and a turn takes
	// that and more; a quantile over a histogram whose last finite bucket
	// is shorter reads that bucket's bound, whatever the latency.
	longest := a.cfg.Providers[0].Timeouts.Total.D().Seconds()
	for _, name := range []string{"paygate_request_duration_seconds", "paygate_upstream_time_to_first_byte_seconds"} {
		if top := topBucket(t, m, name); top < longest {
			t.Errorf("%s's last finite bucket is %gs; want at least %gs (providers[].timeouts.total)", name, top, longest)
		}
	}
	// The WeChat Pay client's ALERT counter is served, at 0 before its first.
	if !strings.Contains(m, `paygate_wechatpay_merchant_errors_total{code="SIGN_ERROR"} 0`+"\n") {
		t.Errorf("/metrics has no paygate_wechatpay_merchant_errors_total at 0:\n%s", m)
	}

	admin := httptest.NewServer(a.adminHandler())
	defer admin.Close()
	req, _ := http.NewRequest(http.MethodGet, admin.URL+"/admin/api/stats", nil)
	req.Header.Set("Authorization", "Bearer adm-metrics-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	st := gjson.ParseBytes(b)
	if resp.StatusCode != 200 || st.Get("paid_orders").Int() != 1 || st.Get("cost_per_transaction").Str != "0.000925" ||
		st.Get("series.#").Int() != 1 || st.Get(`by_model.#(provider=="fallback").prompt_tokens`).Int() != 250 {
		t.Errorf("stats %d %s", resp.StatusCode, b)
	}
}

// topBucket is the largest finite le of histogram name's buckets in an
// exposition.
func topBucket(t *testing.T, exposition, name string) float64 {
	t.Helper()
	top := -1.0
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `le="`)
		le, _, _ := strings.Cut(rest, `"`)
		if le == "+Inf" {
			continue
		}
		v, err := strconv.ParseFloat(le, 64)
		if err != nil {
			t.Fatalf("bucket line %q: %v", line, err)
		}
		top = max(top, v)
	}
	if top < 0 {
		t.Fatalf("no buckets of %s in:\n%s", name, exposition)
	}
	return top
}
