package proxy

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// cutOnKeep is a store whose first PutExchange comes as the drain's
// deadline ends the request: it cuts it (shutdownCut's cut) and writes
// under the request's context once that has ended, as a write the
// deadline caught does.
type cutOnKeep struct {
	store.Store
	once sync.Once
	cut  func()
}

func (c *cutOnKeep) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	c.once.Do(func() {
		c.cut()
		<-ctx.Done()
	})
	return c.Store.PutExchange(ctx, key, data, ttl)
}

// TestDrainDeadlineWhileKeepingExchange: the drain's deadline ends a mixed
// round's turn (create_order beside the bot's get_weather) while it keeps
// the payment exchange, its call done. The bot, still there, is told the
// server is shutting down (server_shutdown, which it may send again), with
// the order the call made in paygate.actions: the store did not fail. It
// was told "payment_round_not_recorded ... the store did not answer", an
// answer not to send again, and the log warned of a store outage
// ("keeping a payment exchange failed", "answer withdrawn"). A round
// whose payment call moved no money (query_order), whose exchange an
// answer does without, still answers with the bot's calls, and no warning.
func TestDrainDeadlineWhileKeepingExchange(t *testing.T) {
	keys, err := simKeys()
	if err != nil {
		t.Fatal(err)
	}
	const weather = `{"index":1,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`
	for _, tc := range []struct {
		name, calls string
		shutdown    bool // the bot is told the server is shutting down
	}{
		{"order", `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` + weather, true},
		{"query", `[{"index":0,"id":"call_0","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}},` + weather, false},
	} {
		for _, driver := range testdrivers.Names(t) {
			for _, stream := range []bool{false, true} {
				t.Run(tc.name+", "+driver+", "+map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
					st := &cutOnKeep{Store: testdrivers.Open(t, driver, nil)}
					_, svc := newSimPayments(t, st.Store, simPayments{Sim: wxsim.Options{Keys: keys}, AttemptTimeout: 5 * time.Second,
						Catalog: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99"}}})
					fp := newFakeProvider(t, roundByRound(callsRound(stream, tc.calls), textRound(stream, "Done.")))
					cfg := testConfig(t, fp.URL, nil)
					logs := &logtest.Buffer{}
					_, url := servePaygate(t, cfg, Options{Tools: simTools(svc), State: st, Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets())},
						func(h http.Handler) http.Handler {
							h, st.cut = shutdownCut(h)
							return h
						})
					resp := post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
					body := readAll(t, resp.Body)
					last := body
					if stream {
						sc := bufio.NewScanner(strings.NewReader(body))
						for sc.Scan() {
							if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && gjson.Get(d, "error").Exists() {
								last = d
							}
						}
					}
					switch code := gjson.Get(last, "error.code").Str; {
					case !tc.shutdown && (code != "" || !strings.Contains(body, `"finish_reason":"tool_calls"`)):
						t.Errorf("the bot, still there at the drain deadline, was answered %d %s; want its calls", resp.StatusCode, body)
					case tc.shutdown && (code != "server_shutdown" || !stream && resp.StatusCode != http.StatusServiceUnavailable):
						t.Errorf("the bot, still there at the drain deadline, was answered %d %s; want server_shutdown", resp.StatusCode, body)
					case tc.shutdown && !strings.Contains(body, `"type":"order_created"`):
						t.Errorf("the answer does not hand the order the call made:\n%s", body)
					}
					for _, line := range []string{"keeping a payment exchange failed", "answer withdrawn"} {
						if strings.Contains(logs.String(), line) {
							t.Errorf("the log says %q of a store that did not fail:\n%s", line, logs)
						}
					}
				})
			}
		}
	}
}
