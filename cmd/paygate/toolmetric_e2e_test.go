package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// wechatPayDown answers every WeChat Pay call 503 SYSTEM_ERROR.
type wechatPayDown struct{}

func (wechatPayDown) RoundTrip(r *http.Request) (*http.Response, error) {
	b := `{"code":"SYSTEM_ERROR","message":"system busy"}`
	return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(b)), Request: r}, nil
}

// TestToolMetricCountsAWeChatPayOutage: a create_order WeChat Pay did not
// take is counted as failed on paygate_tool_calls_total, not as executed:
// an outage must not look like success.
func TestToolMetricCountsAWeChatPayOutage(t *testing.T) {
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + t.TempDir() + `/p.db"}
providers: [{name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: m}]}]
payments:
  catalog: [{sku: premium-monthly, name: "Premium", price: "49.99", max_quantity: 12}]
`
	url, _ := serveConfig(t, src, io.Discard, withWeChatPayTransport(wechatPayDown{}))
	ans := chatAs(t, url, "oUser-metric-1", "premium please")
	last := up.requests()[len(up.requests())-1]
	if !strings.Contains(last, `pending`) && !strings.Contains(last, `failed`) {
		t.Fatalf("expected a failed/pending tool result, upstream got %s\nanswer %s", last, ans.Raw)
	}
	m := scrape(t, url)
	ok := metricSum(t, m, "paygate_tool_calls_total", map[string]string{"tool": "create_order", "outcome": "executed"})
	failed := metricSum(t, m, "paygate_tool_calls_total", map[string]string{"tool": "create_order", "outcome": "failed"})
	if ok != 0 || failed != 1 {
		t.Errorf("create_order WeChat Pay did not take: executed %v, failed %v; want 0 and 1", ok, failed)
	}
}

// TestToolMetricCountsAStoreOutage: with the store down, a create_order
// fails closed ("payments are temporarily unavailable"); README and
// payments.Outcome.Failed say the store failing is outcome "failed", so an
// outage does not hide among budget refusals ("not_executed").
func TestToolMetricCountsAStoreOutage(t *testing.T) {
	dead := "127.0.0.1:1" // nothing listens: connections are refused
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {driver: redis, redis: {addrs: ["` + dead + `"]}}
privacy: {hash_key: fixed-key-for-this-test}
providers: [{name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: m}]}]
payments:
  catalog: [{sku: premium-monthly, name: "Premium", price: "49.99", max_quantity: 12}]
`
	url, _ := serveConfig(t, src, io.Discard)
	chatAs(t, url, "oUser-metric-2", "premium please")
	last := up.requests()[len(up.requests())-1]
	if !strings.Contains(last, `temporarily unavailable`) {
		t.Fatalf("expected the fail-closed tool result, upstream got %s", last)
	}
	m := scrape(t, url)
	failed := metricSum(t, m, "paygate_tool_calls_total", map[string]string{"tool": "create_order", "outcome": "failed"})
	notExec := metricSum(t, m, "paygate_tool_calls_total", map[string]string{"tool": "create_order", "outcome": "not_executed"})
	if failed != 1 {
		t.Errorf("create_order with the store down: failed %v, not_executed %v; want failed 1", failed, notExec)
	}
}
