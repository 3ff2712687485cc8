package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestPaymentStatePerClient: the same OpenID under two clients (two
// mini-programs of one merchant, or two merchants' bots behind one
// paygate) is two users. A turn of one client gives its model the payment
// state of that client's orders alone, and announces payment_confirmed of
// that client's orders alone: the other client's turn, asked first, neither
// names the order nor takes its announcement, which its own client then
// still gets, once.
func TestPaymentStatePerClient(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, driver, clock.Now)
			const user = "o-two-apps-user"
			orders := map[string][]string{ // client: its order numbers
				"shop-bot":  {"SHOP-PAID-1", "SHOP-OPEN-1"},
				"other-bot": {"OTHER-PAID-1", "OTHER-OPEN-1"},
			}
			for client, nos := range orders {
				paid := storetest.NewOrder(nos[0], client, user, clock.Now())
				paid.Status, paid.PaidAt = store.StatusPaid, clock.Now()
				open := storetest.NewOrder(nos[1], client, user, clock.Now())
				open.ClaimKey = "claim-other-sku-" + nos[1]
				for _, o := range []*store.Order{paid, open} {
					if err := st.CreateOrder(ctx, o); err != nil {
						t.Fatal(err)
					}
				}
			}
			fp := newFakeProvider(t, jsonHandler(http.StatusOK,
				`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
			url := paymentProxy(t, fp.URL, func(c *config.Config) {
				c.Clients = append(c.Clients, config.Client{Name: "other-bot", Key: otherClientKey})
			}, queryTools{}, st, payableReconciler{})
			keys := map[string]string{"shop-bot": testClientKey, "other-bot": otherClientKey}
			turn := func(client string) (confirmed []string, state string) {
				t.Helper()
				resp := post(t, url, "/v1/chat/completions",
					`{"model":"gpt-test","messages":[{"role":"user","content":"did my payment go through?"}]}`,
					map[string]string{"X-WeChat-OpenID": user, "Authorization": "Bearer " + keys[client]})
				body := readAll(t, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %s", client, resp.StatusCode, body)
				}
				reqs := fp.requests()
				for _, m := range gjson.GetBytes(reqs[len(reqs)-1].Body, "messages").Array() {
					if m.Get("role").Str == "system" {
						state += m.Get("content").Str
					}
				}
				for _, a := range gjson.Get(body, `paygate.actions.#(type=="payment_confirmed")#`).Array() {
					confirmed = append(confirmed, a.Get("order.order_no").Str)
				}
				return confirmed, state
			}
			other := map[string]string{"shop-bot": "other-bot", "other-bot": "shop-bot"}
			for _, client := range []string{"other-bot", "shop-bot"} {
				confirmed, state := turn(client)
				if len(confirmed) != 1 || confirmed[0] != orders[client][0] {
					t.Errorf("%s's first turn announced payment_confirmed of %v; want %s alone", client, confirmed, orders[client][0])
				}
				for _, no := range orders[client] {
					if !strings.Contains(state, no) {
						t.Errorf("%s's payment state %q does not name its order %s", client, state, no)
					}
				}
				for _, no := range orders[other[client]] {
					if strings.Contains(state, no) {
						t.Errorf("%s's payment state %q names %s's order %s", client, state, other[client], no)
					}
				}
			}
			for _, client := range []string{"shop-bot", "other-bot"} {
				if confirmed, _ := turn(client); len(confirmed) != 0 {
					t.Errorf("%s's second turn announced payment_confirmed of %v again", client, confirmed)
				}
			}
		})
	}
}

// TestClientKeyPrefixOfAnother: one client's key a prefix of another's
// (a key extended when it was rotated, "…-2") names each client by the whole
// key: each key's turn is its own client's, with that client's payment
// state, and the shared prefix cut shorter, or a key with a byte more, is
// no client (401) rather than the one it begins with.
func TestClientKeyPrefixOfAnother(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	st := testdrivers.Open(t, "embedded", clock.Now)
	const user = "o-prefix-key-user"
	keys := map[string]string{"shop-bot": testClientKey, "rotated-bot": testClientKey + "-2"}
	for client := range keys {
		o := storetest.NewOrder("ORDER-OF-"+client, client, user, clock.Now())
		if err := st.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	fp := newFakeProvider(t, jsonHandler(http.StatusOK,
		`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	url := paymentProxy(t, fp.URL, func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{Name: "rotated-bot", Key: keys["rotated-bot"]})
	}, queryTools{}, st, payableReconciler{})
	turn := func(key string) (int, string) {
		t.Helper()
		before := len(fp.requests())
		resp := post(t, url, "/v1/chat/completions",
			`{"model":"gpt-test","messages":[{"role":"user","content":"my orders?"}]}`,
			map[string]string{"X-WeChat-OpenID": user, "Authorization": "Bearer " + key})
		readAll(t, resp.Body)
		resp.Body.Close()
		reqs := fp.requests()
		if len(reqs) == before {
			return resp.StatusCode, ""
		}
		state := ""
		for _, m := range gjson.GetBytes(reqs[len(reqs)-1].Body, "messages").Array() {
			if m.Get("role").Str == "system" {
				state += m.Get("content").Str
			}
		}
		return resp.StatusCode, state
	}
	for client, key := range keys {
		status, state := turn(key)
		if status != http.StatusOK || !strings.Contains(state, "ORDER-OF-"+client) {
			t.Errorf("%s's key: %d, payment state %q; want 200 naming ORDER-OF-%s", client, status, state, client)
		}
		for other := range keys {
			if other != client && strings.Contains(state, "ORDER-OF-"+other) {
				t.Errorf("%s's key: payment state %q names %s's order", client, state, other)
			}
		}
	}
	for _, key := range []string{testClientKey[:len(testClientKey)-1], testClientKey + "-", testClientKey + "-22"} {
		if status, _ := turn(key); status != http.StatusUnauthorized {
			t.Errorf("key %q (a prefix or an extension of a client's): %d; want 401", key, status)
		}
	}
}

// TestKeptExchangeIsTheClientsOwn: a round with a payment call and a bot's
// own call keeps the payment exchange for the bot's next request, keyed by
// the bot's call id. Another client's bot whose conversation of the same
// OpenID (the same default session) carries the same call id (providers
// that number ids per answer give every bot call_1) is another
// conversation: its request reaches the provider as it sent it, without
// the first client's create_order; the first client's follow-up still
// gets it back.
func TestKeptExchangeIsTheClientsOwn(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			st := testdrivers.Open(t, driver, nil)
			mixed := `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
				`{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]`
			fp := newFakeProvider(t, roundByRound(callsRound(false, mixed), textRound(false, "Done.")))
			url := paymentProxy(t, fp.URL, func(c *config.Config) {
				c.Clients = append(c.Clients, config.Client{Name: "other-bot", Key: otherClientKey})
			}, &recordingTools{}, st, nil)
			hdr := func(key string) map[string]string {
				return map[string]string{"X-WeChat-OpenID": "o-two-bots", "Authorization": "Bearer " + key}
			}
			msgs := []string{`{"role":"user","content":"buy"}`}
			readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(false, weatherTool, msgs...), hdr(testClientKey)).Body)
			msgs = append(msgs,
				`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]}`,
				`{"role":"tool","tool_call_id":"call_1","content":"sunny"}`)
			next := chatBodyWith(false, weatherTool, msgs...)
			for _, c := range []struct {
				key  string
				want string
			}{
				{otherClientKey, "user: assistant:get_weather tool:get_weather"},
				{testClientKey, "user: assistant:create_order,get_weather tool:create_order tool:get_weather"},
			} {
				readAll(t, post(t, url, "/v1/chat/completions", next, hdr(c.key)).Body)
				reqs := fp.requests()
				if got := strings.Join(messageShape(reqs[len(reqs)-1].Body), " "); got != c.want {
					t.Errorf("the follow-up of the client of key %s…: upstream messages %q; want %q", c.key[:8], got, c.want)
				}
			}
		})
	}
}
