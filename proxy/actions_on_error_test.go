package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// teeBot is a go-openai client's transport: it sends the bot's user and
// keeps a copy of each answer's body as the SDK reads it, since go-openai
// drops the paygate member (SPEC 2.3) the test reads.
type teeBot struct {
	user   string
	mu     sync.Mutex
	bodies []*bytes.Buffer
}

func (b *teeBot) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-WeChat-OpenID", b.user)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	buf := &bytes.Buffer{}
	b.mu.Lock()
	b.bodies = append(b.bodies, buf)
	b.mu.Unlock()
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(resp.Body, buf), resp.Body}
	return resp, nil
}

// last is the body of the last answer the SDK read.
func (b *teeBot) last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bodies[len(b.bodies)-1].String()
}

// hasToolResult reports whether an upstream request carries a tool result:
// the round after paygate ran a payment call.
func hasToolResult(body []byte) bool {
	return gjson.GetBytes(body, `messages.#(role=="tool")`).Exists()
}

// failingAfterCall answers a round without a tool result with a create_order
// call (streamed or not), and the round after it with later.
func failingAfterCall(stream bool, later http.HandlerFunc) http.HandlerFunc {
	call := callsRound(stream, `[{"index":0,"id":"call_buy","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`)
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if hasToolResult(b) {
			later(w, r)
			return
		}
		call(w, r)
	}
}

// overloaded is a provider's 500.
var overloaded = jsonHandler(http.StatusInternalServerError, `{"error":{"message":"upstream overloaded","type":"server_error","code":null}}`)

// cutAfterText streams the start of an answer and loses the connection.
func cutAfterText(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	_, _ = io.WriteString(w, roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Your order is "},"finish_reason":null}]}`+"\n\n")
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// TestRoundFailingAfterOrderCarriesItsActions: the model calls create_order,
// paygate makes the order at WeChat Pay (the simulator), and the round after
// it fails at every target: a 500, or, streaming, a cut after its first text
// that no provider recovers. The bot, a go-openai client, gets an
// error — non-stream an OpenAI error JSON, streaming an error event after
// what it was sent — and with it the order in paygate.actions, once, with
// its payment parameters: non-stream in the error object (error.paygate,
// where the SDKs hand it to the bot), whose own members stay as OpenAI
// writes them; streaming, on a chunk before the error event (the success
// path puts it on a chunk too). It was
// an error alone: a bot that shows the pay button from paygate.actions had
// nothing to show, and learnt of the order only on the user's next turn.
// The SDK's retry of the same request (the OpenAI SDKs retry a 5xx) makes
// no second order: the same order comes back, in that answer's actions too.
func TestRoundFailingAfterOrderCarriesItsActions(t *testing.T) {
	keys, err := simKeys()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		stream bool
		later  http.HandlerFunc // every target's answer to the round after the call
	}{
		{"non-stream, 500s", false, overloaded},
		{"stream, 500s", true, overloaded},
		// The round's text went out, and no provider finished it
		// (recovery asks the other, which is cut too).
		{"stream, cut mid-round", true, cutAfterText},
	}
	for _, driver := range testdrivers.Names(t) {
		for _, tc := range tests {
			stream := tc.stream
			t.Run(driver+", "+tc.name, func(t *testing.T) {
				ctx := context.Background()
				st := testdrivers.Open(t, driver, nil)
				sim, svc := newSimPayments(t, st, simPayments{Sim: wxsim.Options{Keys: keys}, AttemptTimeout: 5 * time.Second,
					Catalog: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99", MaxQuantity: 12}}})

				first := newFakeProvider(t, failingAfterCall(stream, tc.later))
				second := newFakeProvider(t, failingAfterCall(stream, tc.later))
				cfg := testConfig(t, first.URL, func(c *config.Config) {
					p := c.Providers[0]
					p.Name, p.BaseURL = "second", second.URL+"/v1"
					c.Providers = append(c.Providers, p)
					c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: "second", Model: "vendor/other", Weight: 1})
				})
				_, url := servePaygate(t, cfg, Options{Tools: simTools(svc), State: st, Reconciler: svc}, nil)

				const user = "o-actions-on-error"
				bot := &teeBot{user: user}
				oc := openai.DefaultConfig(testClientKey)
				oc.BaseURL = url + "/v1"
				oc.HTTPClient = &http.Client{Transport: bot}
				client := openai.NewClientWithConfig(oc)
				req := openai.ChatCompletionRequest{Model: "gpt-test", Stream: stream,
					Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy premium"}}}

				// ask sends the request as the bot's SDK does and returns
				// the order_created actions of its answer and the error
				// the SDK raised.
				ask := func() ([]gjson.Result, error) {
					t.Helper()
					var sdkErr error
					if !stream {
						_, sdkErr = client.CreateChatCompletion(ctx, req)
					} else {
						sr, err := client.CreateChatCompletionStream(ctx, req)
						if err != nil {
							t.Fatalf("stream not opened: %v", err)
						}
						for {
							if _, sdkErr = sr.Recv(); sdkErr != nil {
								break
							}
						}
						sr.Close()
					}
					var apiErr *openai.APIError
					if !errors.As(sdkErr, &apiErr) || apiErr.Message == "" {
						t.Fatalf("the SDK returned %v; want an APIError with a message (the round after the payment call failed)", sdkErr)
					}
					body := bot.last()
					if !stream {
						e := gjson.Get(body, "error")
						if !e.Get("message").Exists() || !e.Get("type").Exists() || !e.Get("param").Exists() || !e.Get("code").Exists() {
							t.Errorf("error object %s; want OpenAI's message, type, param and code", e.Raw)
						}
						if gjson.Get(body, "paygate").Exists() {
							t.Errorf("paygate beside the error object in %s; the SDKs hand the bot only the error object", body)
						}
						return e.Get(`paygate.actions.#(type=="order_created")#`).Array(), sdkErr
					}
					var created []gjson.Result
					sawError := false
					for _, line := range strings.Split(body, "\n") {
						d, ok := strings.CutPrefix(line, "data: ")
						if !ok {
							continue
						}
						if d == "[DONE]" {
							t.Errorf("stream ended with [DONE] after its error event")
						}
						if gjson.Get(d, "error").Exists() {
							sawError = true
							continue
						}
						p := gjson.Get(d, "paygate")
						if !p.Exists() {
							continue
						}
						if sawError {
							t.Errorf("paygate chunk %s after the error event; the SDKs stop reading there", d)
						}
						if !gjson.Get(d, "choices.0").Exists() || gjson.Get(d, "object").Str != "chat.completion.chunk" {
							t.Errorf("paygate on %s; want a chunk with a choice (bots read choices[0] of every chunk)", d)
						}
						created = append(created, p.Get(`actions.#(type=="order_created")#`).Array()...)
					}
					if !sawError {
						t.Errorf("stream %q has no error event", body)
					}
					return created, sdkErr
				}

				created, _ := ask()
				orders, err := st.ListOrders(ctx, store.OrderFilter{Client: "shop-bot", User: user})
				if err != nil {
					t.Fatal(err)
				}
				if len(orders) != 1 || orders[0].Status != store.StatusAwaitingPayment {
					t.Fatalf("the user's orders: %v; want one awaiting payment", orders)
				}
				orderNo := orders[0].OrderNo
				if len(created) != 1 || created[0].Get("order.order_no").Str != orderNo ||
					created[0].Get("order.status").Str != "awaiting_payment" || !created[0].Get("request_payment.package").Exists() {
					t.Errorf("the failed answer's order_created actions: %v; want one, order %s awaiting payment, with its request_payment (answer %s)",
						created, orderNo, bot.last())
				}
				for _, fp := range []*fakeProvider{first, second} {
					failed := 0
					for _, r := range fp.requests() {
						if hasToolResult(r.Body) {
							failed++
						}
					}
					if failed == 0 {
						t.Errorf("provider %s was not asked the round after the payment call; want every target to have failed it", fp.URL)
					}
				}

				// The SDK's retry: the model asks for the same purchase.
				created, _ = ask()
				if orders, err = st.ListOrders(ctx, store.OrderFilter{Client: "shop-bot", User: user}); err != nil {
					t.Fatal(err)
				}
				if len(orders) != 1 || orders[0].OrderNo != orderNo {
					t.Errorf("the user's orders after the retry: %v; want the one order %s", orders, orderNo)
				}
				if n := sim.OrderCount(); n != 1 {
					t.Errorf("WeChat Pay holds %d orders after the retry; want 1", n)
				}
				if len(created) != 1 || created[0].Get("order.order_no").Str != orderNo {
					t.Errorf("the retry's order_created actions: %v; want one, the same order %s", created, orderNo)
				}
			})
		}
	}
}

// TestWithdrawnAnswerCarriesItsActions: a round that runs create_order
// beside the bot's own call, whose payment exchange the store does not
// take, is withdrawn (payment_round_not_recorded, x-should-retry: false, so
// no SDK retries it and the bot reads this answer). The order stands at
// WeChat Pay, and the withdrawn answer hands it to the bot in
// paygate.actions, once, as a failed later round's does: in the error
// object, or streaming on a chunk before the error event. It handed none,
// and the bot had no order to show until the user's next message.
func TestWithdrawnAnswerCarriesItsActions(t *testing.T) {
	const mixed = `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
		`{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`
	for _, stream := range []bool{false, true} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, callsRound(stream, mixed))
			st := &failingWrites{StateStore: &memState{}, fail: true}
			url := paymentProxy(t, fp.URL, nil, &recordingTools{}, st, nil)
			msgs := `{"role":"user","content":"buy premium and tell me the weather"}`
			resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			var errObj gjson.Result
			var created []gjson.Result
			if stream {
				for _, c := range streamChunks(body) {
					if e := gjson.Get(c, "error"); e.Exists() {
						errObj = e
						continue
					}
					if p := gjson.Get(c, "paygate"); p.Exists() {
						if errObj.Exists() {
							t.Errorf("paygate chunk %s after the error event", c)
						}
						if gjson.Get(c, "choices.0.finish_reason").Str != "" {
							t.Errorf("paygate chunk %s finishes the withdrawn answer", c)
						}
						created = append(created, p.Get(`actions.#(type=="order_created")#`).Array()...)
					}
				}
			} else {
				errObj = gjson.Get(body, "error")
				created = errObj.Get(`paygate.actions.#(type=="order_created")#`).Array()
				if gjson.Get(body, "paygate").Exists() {
					t.Errorf("paygate beside the error object in %s; the SDKs hand the bot only the error object", body)
				}
				if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("X-Should-Retry") != "false" {
					t.Errorf("status %d, x-should-retry %q; want 500 and false", resp.StatusCode, resp.Header.Get("X-Should-Retry"))
				}
			}
			if code := errObj.Get("code").Str; code != "payment_round_not_recorded" {
				t.Fatalf("error code %q; want payment_round_not_recorded (%d %s)", code, resp.StatusCode, body)
			}
			if len(created) != 1 || created[0].Get("order.order_no").Str != "O1" {
				t.Errorf("the withdrawn answer's order_created actions: %v; want one, order O1 (%s)", created, body)
			}
		})
	}
}
