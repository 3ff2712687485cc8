package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/store/testdrivers"
)

// countingReads is a StateStore that counts its exchange reads.
type countingReads struct {
	StateStore
	gets atomic.Int32
}

func (s *countingReads) GetExchange(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return s.StateStore.GetExchange(ctx, key)
}

// TestToolRoundsWithoutExchangesReadTwiceEach: a long agent conversation
// (30 rounds of the bot's own tool calls, no payment among them) makes
// its kept-exchange reads in sequence under one deadline (1 s on Redis).
// Each round read its exact key, its calls' key and the legacy key: 90
// reads where 30 had fit, so a store at 12 ms a read cut the restores of
// conversations that used to fit. A miss of the calls' key, written
// before the exact one and with it, is a miss of the exact key: two reads
// a round.
func TestToolRoundsWithoutExchangesReadTwiceEach(t *testing.T) {
	const rounds = 30
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}`))
			st := &countingReads{StateStore: testdrivers.Open(t, driver, nil)}
			url := paymentProxy(t, fp.URL, nil, queryTools{}, st, nil)
			msgs := []string{`{"role":"user","content":"go"}`}
			for i := range rounds {
				msgs = append(msgs, fmt.Sprintf(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_%d","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`, i),
					fmt.Sprintf(`{"role":"tool","tool_call_id":"call_%d","content":"sunny"}`, i))
			}
			body := `{"model":"gpt-test",` + weatherTool + `"messages":[` + strings.Join(msgs, ",") + `]}`
			readAll(t, post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			if got := st.gets.Load(); got > 2*rounds {
				t.Errorf("%d tool rounds without a kept exchange made %d exchange reads; want at most %d", rounds, got, 2*rounds)
			}
		})
	}
}
