package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// gatedTools runs the payment tools as they are, except that the first
// call, once it has started, waits until the bot's request is over at the
// server (gone): a client that leaves while a payment call is executing.
type gatedTools struct {
	*payments.Tools
	started chan struct{} // closed when the first call starts
	gone    <-chan struct{}
	calls   int
}

func (g *gatedTools) Execute(ctx context.Context, c payments.Caller, name, args string) payments.Outcome {
	g.calls++
	if g.calls == 1 {
		close(g.started)
		<-g.gone
	}
	return g.Tools.Execute(ctx, c, name, args)
}

// TestClientGoneDuringPaymentCalls: a bot that goes away while a round's
// payment calls execute gets the call already started finished whole (the
// order recorded and prepaid at WeChat Pay, awaiting payment, never left
// half-made), and no later call of the round started: an order nobody will
// see is not made. The one not started counts as client_gone, not failed.
// The calls ran under the request's context: the store refused the started
// call's steps once the client left, and the metric counted it, and the
// next call, failed.
//
// A mixed round (create_order beside the bot's get_weather) whose bot
// leaves while the payment call runs ends there too: its exchange, which
// no follow-up can come for, is not written under a context the bot's
// leaving ended, and the log tells of no store failure and no withdrawn
// answer (it warned "keeping a payment exchange failed" for each key and
// "answer withdrawn", a store outage that was not). The order the finished
// call made, which no answer handed, is handed with the user's next
// message, on either store.
func TestClientGoneDuringPaymentCalls(t *testing.T) {
	keys, err := simKeys()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, calls, botTools string
		clientGone            float64 // calls counted client_gone
	}{
		{"two orders", `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
			`{"index":1,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"tip\"}"}}]`, "", 1},
		{"mixed round", `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
			`{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`, weatherTool, 0},
	} {
		for _, driver := range testdrivers.Names(t) {
			for _, stream := range []bool{false, true} {
				name := tc.name + ", " + driver + ", non-stream"
				if stream {
					name = tc.name + ", " + driver + ", stream"
				}
				t.Run(name, func(t *testing.T) {
					calls := tc.calls
					st := testdrivers.Open(t, driver, nil)
					sim, svc := newSimPayments(t, st, simPayments{Sim: wxsim.Options{Keys: keys}, AttemptTimeout: 5 * time.Second,
						Catalog: []payments.CatalogItem{
							{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99", MaxQuantity: 12},
							{SKU: "tip", Name: "Tip", Price: "0.01"},
						}})
					gone, done := make(chan struct{}), make(chan struct{})
					tools := &gatedTools{started: make(chan struct{}), gone: gone, Tools: simTools(svc)}

					fp := newFakeProvider(t, roundByRound(callsRound(stream, calls), textRound(stream, "Done.")))
					cfg := testConfig(t, fp.URL, func(c *config.Config) { c.Payments.Budget.MaxPaymentCalls = 2 })
					logs := &logtest.Buffer{}
					var served atomic.Bool // the bot's first request, which it leaves
					s, url := servePaygate(t, cfg, Options{Tools: tools, State: st, Reconciler: svc, Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets())}, func(h http.Handler) http.Handler {
						return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
							if r.URL.Path == "/v1/chat/completions" && !served.Swap(true) {
								// The bot's request, as the server sees it: over when
								// its client leaves.
								go func() { <-r.Context().Done(); close(gone) }()
								defer close(done)
							}
							h.ServeHTTP(w, r)
						})
					})

					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(chatBody(stream, tc.botTools)))
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Authorization", "Bearer "+testClientKey)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-WeChat-OpenID", "o-user-1")
					errc := make(chan error, 1)
					go func() {
						resp, err := http.DefaultClient.Do(req)
						if err == nil {
							_, err = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
						errc <- err
					}()
					<-tools.started
					cancel() // the bot leaves while the first payment call executes
					if err := <-errc; !errors.Is(err, context.Canceled) {
						t.Fatalf("the bot's request ended with %v; want it cancelled", err)
					}
					<-done

					orders, err := st.ListOrders(context.Background(), store.OrderFilter{Client: "shop-bot", User: "o-user-1"})
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, o := range orders {
						got = append(got, o.SKU+" "+string(o.Status))
					}
					if len(got) != 1 || got[0] != "premium-monthly "+string(store.StatusAwaitingPayment) {
						t.Errorf("the user's orders are %q; want the started one finished (premium-monthly awaiting_payment) and the other not made", got)
					}
					if n := sim.OrderCount(); n != 1 {
						t.Errorf("WeChat Pay holds %d orders; want the started one's", n)
					}
					for outcome, want := range map[string]float64{"executed": 1, "client_gone": tc.clientGone, "failed": 0} {
						if got := testutil.ToFloat64(s.metrics.toolCalls.WithLabelValues("create_order", outcome)); got != want {
							t.Errorf("tool calls %s: %v; want %v", outcome, got, want)
						}
					}
					if n := len(fp.requests()); n != 1 {
						t.Errorf("%d upstream rounds; want none after the client left", n)
					}
					for _, line := range []string{"keeping a payment exchange failed", "answer withdrawn"} {
						if strings.Contains(logs.String(), line) {
							t.Errorf("the log says %q of a bot that left:\n%s", line, logs)
						}
					}
					// The order the finished call made, which no answer
					// handed, is handed with the user's next message.
					next := readAll(t, post(t, url, "/v1/chat/completions", chatBody(false, tc.botTools), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
					if len(orders) == 1 && !strings.Contains(next, `"order_no":"`+orders[0].OrderNo+`"`) || !strings.Contains(next, `"type":"order_created"`) {
						t.Errorf("the user's next message was answered without the order the call made:\n%s", next)
					}
				})
			}
		}
	}
}
