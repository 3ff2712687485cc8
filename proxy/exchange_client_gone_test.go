package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// startedExchanges is hungState that says when a kept exchange's read has
// begun.
type startedExchanges struct {
	hungState
	started chan struct{}
}

func (s *startedExchanges) GetExchange(ctx context.Context, key string) ([]byte, error) {
	select {
	case <-s.started:
	default:
		close(s.started)
	}
	return s.hungState.GetExchange(ctx, key)
}

// TestClientGoneDuringExchangeReadsIsNoStoreFailure: a bot that hangs up
// while its turn reads the kept payment exchanges of its conversation ends
// the reads, and the store, only asked, did not fail: the turn logged a
// warning that the exchanges were unreadable and another that the user's
// money-moving calls were held, of a store that answers, for every bot
// that timed out or was stopped early, as the state load no longer does.
func TestClientGoneDuringExchangeReadsIsNoStoreFailure(t *testing.T) {
	st := &startedExchanges{started: make(chan struct{})}
	body := `{"model":"gpt-test",` + weatherTool + `"messages":[{"role":"user","content":"weather?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
	_, logs, _ := hangUpDuring(t, Options{Tools: queryTools{}, State: st}, st.started, http.MethodPost, "/v1/chat/completions", body)
	for _, msg := range []string{"kept payment exchanges unreadable", "money-moving calls held"} {
		if strings.Contains(logs.String(), msg) {
			t.Errorf("logged %q for a bot that hung up:\n%s", msg, logs.String())
		}
	}
}
