package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/payments"
	redisstore "github.com/paygate/paygate/store/redis"
)

// TestStoreDownMixedRoundAnswers: with the store down, chat goes on and the
// payment tools fail closed with a clear tool result (SPEC 6). A
// create_order beside the bot's own call is refused before the payment
// service, its rules (max_payment_calls_per_minute, on by default) unread:
// nothing can have moved money, so the exchange the store cannot keep
// binds the user's message to nothing, and the bot gets its call, with the
// refusal in the exchange for the model, rather than an answer withdrawn
// (payment_round_not_recorded) for every purchase asked for during the
// outage.
func TestStoreDownMixedRoundAnswers(t *testing.T) {
	dead := redistest.RefusedAddr // every dial is refused
	st, err := redisstore.Open(redisstore.Options{Addrs: []string{dead}, KeyPrefix: "pgtest:storedown:", MaxRetries: -1})
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
	const calls = `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
		`{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`
	for _, stream := range []bool{false, true} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(callsRound(stream, calls)))
			url := paymentProxy(t, fp.URL, nil, tools, st, nil)
			msgs := `{"role":"user","content":"buy premium and tell me the weather"}`
			resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			errObj := gjson.Get(body, "error")
			if stream {
				for _, c := range streamChunks(body) {
					if e := gjson.Get(c, "error"); e.Exists() {
						errObj = e
					}
				}
			}
			if resp.StatusCode != http.StatusOK || errObj.Exists() {
				t.Fatalf("a mixed round with the store down: %d %s; want the bot's call, chat going on", resp.StatusCode, body)
			}
			if got := botCallIDs(stream, body); len(got) != 1 || got[0] != "call_1" {
				t.Errorf("the bot got calls %q; want its call_1 (%s)", got, body)
			}
		})
	}
}
