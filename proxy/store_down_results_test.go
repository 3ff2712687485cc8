package proxy

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/payments"
	redisstore "github.com/paygate/paygate/store/redis"
)

// TestStoreDownToolResultsSayWhatFailed: with the store down every payment
// call fails closed before its own step, at the per-minute call count
// (max_payment_calls_per_minute, on by default). The tool result the next
// round carries must say what the call could not do: a query_order was
// told "no order was created", which the model passed on to a user asking
// whether the order they had paid went through, and a request_refund the
// same, about an order that exists. Each says what its own store failure
// says: the status could not be read, nothing was changed.
func TestStoreDownToolResultsSayWhatFailed(t *testing.T) {
	st, err := redisstore.Open(redisstore.Options{Addrs: []string{redistest.RefusedAddr}, KeyPrefix: "pgtest:storedownres:", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	catalog, err := payments.NewCatalog([]payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99"}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := payments.New(payments.Options{Store: st, Backend: noWeChatPay{}, Catalog: catalog, MchID: "1900000001",
		Registerer: prometheus.NewRegistry(), Rules: payments.Rules{MaxPaymentCallsPerMinute: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	tools := payments.NewTools(svc, payments.ToolNames{CreateOrder: "create_order", QueryOrder: "query_order", RequestRefund: "request_refund"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	tests := []struct {
		tool, args string
		status     string
		says       string // in the result's error
	}{
		{tool: "create_order", args: `{"sku":"premium-monthly"}`, status: "failed", says: "no order was created"},
		{tool: "query_order", args: `{"order_no":"PG2612041200000000000001"}`, status: "unknown", says: "status could not be read"},
		{tool: "request_refund", args: `{"order_no":"PG2612041200000000000001","reason":"changed my mind"}`, status: "failed", says: "nothing was changed"},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tc.tool+map[bool]string{false: " non-stream", true: " stream"}[stream], func(t *testing.T) {
				call := `[{"index":0,"id":"call_0","type":"function","function":{"name":"` + tc.tool + `","arguments":` + string(jsonstr.Append(nil, tc.args)) + `}}]`
				fp := newFakeProvider(t, roundByRound(callsRound(stream, call), textRound(stream, "Sorry.")))
				url := paymentProxy(t, fp.URL, nil, tools, st, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				readAll(t, resp.Body)
				reqs := fp.requests()
				if len(reqs) != 2 {
					t.Fatalf("provider saw %d requests; want 2 (the call's round, then its result)", len(reqs))
				}
				result := gjson.GetBytes(reqs[1].Body, `messages.#(role=="tool").content`).Str
				r := gjson.Parse(result)
				if r.Get("status").Str != tc.status || !strings.Contains(r.Get("error").Str, tc.says) {
					t.Errorf("%s result with the store down: %s; want status %q and an error saying %q", tc.tool, result, tc.status, tc.says)
				}
				if tc.tool != "create_order" && strings.Contains(result, "no order was created") {
					t.Errorf("%s result %s tells the model no order was created: it looked for or at an existing one", tc.tool, result)
				}
				if tc.tool != "create_order" && r.Get("order_no").Str != gjson.Get(tc.args, "order_no").Str {
					t.Errorf("%s result %s does not name the order asked about", tc.tool, result)
				}
			})
		}
	}
}
