package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestNodeTimedOutPurchaseRetried: the Node SDK's timeout fires while the
// round after create_order is still running (a slow provider), so the bot
// never gets the answer that carried the order's payment parameters, and
// the SDK sends the same request again on its own. The retried turn's model
// reads the payment state (the order awaiting payment, "do not create a new
// order") and answers in words, calling nothing: the retry's answer still
// hands the bot that order with its payment parameters, and WeChat Pay saw
// one order and one prepay.
func TestNodeTimedOutPurchaseRetried(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var mu sync.Mutex
			var tries []string // the x-stainless-retry-count of each first round
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				body := string(b)
				last := gjson.Get(body, "messages.@reverse.0.role").Str
				w.Header().Set("Content-Type", "application/json")
				switch {
				case last == "tool":
					// The round after the order: slower than the bot's
					// timeout, until the bot has gone.
					select {
					case <-r.Context().Done():
					case <-time.After(30 * time.Second):
					}
					return
				case strings.Contains(body, "Payment state of this user") && strings.Contains(body, "awaiting payment"):
					_, _ = io.WriteString(w, `{"id":"chatcmpl-again","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Your order is waiting for your payment."},"finish_reason":"stop"}]}`)
				default:
					mu.Lock()
					tries = append(tries, r.Header.Get("X-Stainless-Retry-Count"))
					mu.Unlock()
					_, _ = io.WriteString(w, `{"id":"chatcmpl-buy","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_buy","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}]}`)
				}
			}))
			t.Cleanup(up.Close)
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, ""), io.Discard)
			out := nodeChat(t, url, "with-response", "PAYGATE_RETRIES=2", "PAYGATE_TIMEOUT_MS=1500")
			var res struct {
				Error   string `json:"error"`
				Content string `json:"content"`
				Paygate struct {
					Actions []struct {
						Type           string         `json:"type"`
						Order          map[string]any `json:"order"`
						RequestPayment map[string]any `json:"request_payment"`
					} `json:"actions"`
				} `json:"paygate"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if res.Error != "" {
				t.Fatalf("the bot got %s", out)
			}
			oneOrderOnePrepay(t, a)
			if len(res.Paygate.Actions) != 1 || res.Paygate.Actions[0].Type != "order_created" || res.Paygate.Actions[0].RequestPayment["paySign"] == nil {
				t.Errorf("the retried answer %s; want the order's order_created with its payment parameters", out)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(tries) != 1 || tries[0] != "" {
				t.Errorf("the provider's first rounds carried x-stainless-retry-count %q; want one, without it", tries)
			}
		})
	}
}

// heldPrepay holds every prepay request to WeChat Pay until release is
// closed, and says on arrived when the first one came.
type heldPrepay struct {
	arrived, release chan struct{}
	once             sync.Once
}

func (h *heldPrepay) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/pay/transactions/") && r.Method == http.MethodPost && !strings.Contains(r.URL.Path, "/close") {
		h.once.Do(func() { close(h.arrived) })
		select {
		case <-h.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// payableSignal says on payable when an order is recorded awaiting payment.
type payableSignal struct {
	store.Store
	once    *sync.Once
	payable chan struct{}
}

func (s payableSignal) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, ev ...store.Event) error {
	err := s.Store.UpdateOrder(ctx, o, expect, ev...)
	if err == nil && o.Status == store.StatusAwaitingPayment {
		s.once.Do(func() { close(s.payable) })
	}
	return err
}

// TestNodeRetryWhileThePrepayRuns: the Node SDK's timeout fires while
// WeChat Pay is slow to answer the prepay of the order the turn's
// create_order made, and the SDK sends the request again at once. The
// first run's call goes on (a call once started runs to its end), so the
// retried turn reads the order as being created; its model, told so,
// calls nothing, and by the time its answer leaves the prepay has come
// back and the order is payable. The retry is the answer the bot gets, and
// the first run's, which carried the payment parameters, went nowhere: the
// retry hands the bot that order with them, one order and one prepay at
// WeChat Pay. Handed nothing, the user was told their order was on its way
// with no payment sheet to pay it, until they wrote again.
func TestNodeRetryWhileThePrepayRuns(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			held := &heldPrepay{arrived: make(chan struct{}), release: make(chan struct{})}
			sig := payableSignal{once: new(sync.Once), payable: make(chan struct{})}
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				body := string(b)
				w.Header().Set("Content-Type", "application/json")
				switch {
				case gjson.Get(body, "messages.@reverse.0.role").Str == "tool":
					// The first run's next round: its bot has gone.
					<-r.Context().Done()
				case strings.Contains(body, "Payment state of this user") && strings.Contains(body, "being created"):
					// The retry: WeChat Pay answers the first run's prepay
					// now, and the model has spoken once it is recorded.
					close(held.release)
					select {
					case <-sig.payable:
					case <-time.After(20 * time.Second):
						t.Error("the prepay was never recorded")
					}
					_, _ = io.WriteString(w, `{"id":"chatcmpl-again","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Your order is being set up."},"finish_reason":"stop"}]}`)
				default:
					_, _ = io.WriteString(w, `{"id":"chatcmpl-buy","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_buy","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}]}`)
				}
			}))
			t.Cleanup(up.Close)
			t.Cleanup(func() {
				select {
				case <-held.release:
				default:
					close(held.release)
				}
			})
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, ""), io.Discard, withWeChatPayTransport(held),
				withStoreWrap(func(st store.Store) store.Store { sig.Store = st; return sig }))
			out := nodeChat(t, url, "with-response", "PAYGATE_RETRIES=2", "PAYGATE_TIMEOUT_MS=1500")
			var res struct {
				Error   string `json:"error"`
				Paygate struct {
					Actions []struct {
						Type           string         `json:"type"`
						Order          map[string]any `json:"order"`
						RequestPayment map[string]any `json:"request_payment"`
					} `json:"actions"`
				} `json:"paygate"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if res.Error != "" {
				t.Fatalf("the bot got %s", out)
			}
			select {
			case <-held.arrived:
			default:
				t.Fatal("no prepay reached WeChat Pay")
			}
			if a.sim.OrderCount() != 1 {
				t.Errorf("WeChat Pay holds %d orders; want 1", a.sim.OrderCount())
			}
			if len(res.Paygate.Actions) != 1 || res.Paygate.Actions[0].Type != "order_created" || res.Paygate.Actions[0].RequestPayment["paySign"] == nil {
				t.Errorf("the retried answer %s; want the order's order_created with its payment parameters", out)
			}
		})
	}
}

// oneOrderOnePrepay checks that WeChat Pay holds one order, prepaid once.
func oneOrderOnePrepay(t *testing.T, a *app) {
	t.Helper()
	if n := a.sim.OrderCount(); n != 1 {
		t.Errorf("WeChat Pay holds %d orders; want 1", n)
	}
	prepays := 0
	for _, rl := range a.sim.Requests() {
		if strings.HasPrefix(rl.Op, "prepay") {
			prepays++
		}
	}
	if prepays != 1 {
		t.Errorf("%d prepays; want 1", prepays)
	}
}
