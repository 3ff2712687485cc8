package proxy

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestNoMoneyToolsOfferedWithoutPaymentCalls: with
// payments.budget.max_payment_calls 0 ("runs none", README) the model is
// offered query_order only, for every client: create_order and
// request_refund could only ever be refused, and were offered anyway, so a
// user who asked to buy heard the refusal "only 0 payment actions are
// allowed per message; ask the user to confirm …", confirmed, and was
// refused again, turn after turn. A call made anyway is still refused, in
// words that say no payment action runs here; a bot tool of the same name
// still clashes.
func TestNoMoneyToolsOfferedWithoutPaymentCalls(t *testing.T) {
	fp := newFakeProvider(t, roundByRound(callsRound(false, `[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`),
		textRound(false, "I cannot place orders here.")))
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, func(c *config.Config) {
		c.Payments.Budget.MaxPaymentCalls = 0
		price, _ := config.ParseDecimal("49.99")
		c.Payments.Catalog = []config.CatalogItem{{SKU: "premium-monthly", Name: "Premium", Price: price, MaxQuantity: 12}}
		c.Clients = append(c.Clients, config.Client{Name: "kiosk", Key: "sk-paygate-kiosk-key", AllowedSKUs: []string{"premium-monthly"}})
	})
	hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	for _, key := range []string{testClientKey, "sk-paygate-kiosk-key"} {
		h := map[string]string{"X-WeChat-OpenID": "o-user-1", "Authorization": "Bearer " + key}
		readAll(t, post(t, url, "/v1/chat/completions", chatBody(false, ""), h).Body)
	}
	reqs := fp.requests()
	if len(reqs) < 3 {
		t.Fatalf("%d upstream requests; want 3", len(reqs))
	}
	for i, r := range []seenRequest{reqs[0], reqs[2]} {
		var names []string
		gjson.GetBytes(r.Body, "tools.#.function.name").ForEach(func(_, n gjson.Result) bool {
			names = append(names, n.Str)
			return true
		})
		if len(names) != 1 || names[0] != "query_order" {
			t.Errorf("client %d: tools offered %q; want query_order only", i, names)
		}
	}
	if got := tools.executed(); len(got) != 0 {
		t.Errorf("executed %q; want nothing", got)
	}
	res := gjson.GetBytes(reqs[1].Body, `messages.#(tool_call_id=="call_pg_1_0").content`).Str
	if want := "no order or refund can be made in this conversation"; !gjson.Valid(res) || gjson.Get(res, "error").Str != want {
		t.Errorf("the refused create_order's result %s; want the error %q", res, want)
	}
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","tools":[{"type":"function","function":{"name":"create_order","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"x"}]}`, hdr)
	if resp.StatusCode != 400 {
		t.Errorf("a bot tool named create_order: %d; want the clash's 400", resp.StatusCode)
	}
}
