package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// startedState is hungState that says when a state load has begun.
type startedState struct {
	hungState
	started chan struct{}
}

func (s *startedState) LoadUserState(ctx context.Context, c, u string) (*store.UserState, error) {
	close(s.started)
	return s.hungState.LoadUserState(ctx, c, u)
}

// TestClientGoneDuringStateLoadIsNoStoreOutage: a bot that hangs up while
// its turn's payment state loads ends the load, and the store, which was
// only asked, is not counted unavailable: paygate_state_unavailable_total
// ("the store is slow or away", README) rose with every bot that timed out
// or was stopped early, and the log warned that the state was unavailable.
func TestClientGoneDuringStateLoadIsNoStoreOutage(t *testing.T) {
	st := &startedState{started: make(chan struct{})}
	_, logs, reg := hangUpDuring(t, Options{Tools: queryTools{}, State: st}, st.started,
		http.MethodPost, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`)
	want := fmt.Sprintf("# HELP paygate_state_unavailable_total %s\n# TYPE paygate_state_unavailable_total counter\npaygate_state_unavailable_total 0\n",
		"Turns served without payment state because the store did not answer.")
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paygate_state_unavailable_total"); err != nil {
		t.Error(err)
	}
	if strings.Contains(logs.String(), "payment state unavailable") {
		t.Errorf("logged the state unavailable for a bot that hung up:\n%s", logs.String())
	}
}

// hangUpDuring serves a proxy built of opts, its config, upstream (a
// provider that answers "Hi."), log and registry filled in, sends it a
// bot's request (method, path and body, with the bot's key and a user's
// OpenID) and hangs up as soon as started is closed: a bot that timed out
// or was stopped early during the call that closes it. It returns once the
// handler has, with the server, its log and its registry.
func hangUpDuring(t *testing.T, opts Options, started <-chan struct{}, method, path, body string) (*Server, *logtest.Buffer, *prometheus.Registry) {
	t.Helper()
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`))
	cfg := testConfig(t, fp.URL, nil)
	logs := &logtest.Buffer{}
	opts.Logger = logging.New(logs, slog.LevelDebug, cfg.Secrets())
	done := make(chan struct{})
	s, url := servePaygate(t, cfg, opts, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(done)
			h.ServeHTTP(w, r)
		})
	})

	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, method, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("X-WeChat-OpenID", "o-user-1")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	<-done
	<-errc
	return s, logs, s.reg
}

// failingAtHangUpState is a store whose load, begun (started closed),
// fails of itself just as the bot hangs up: its error is the store's, not
// the ended request's.
type failingAtHangUpState struct {
	hungState
	started chan struct{}
}

func (s *failingAtHangUpState) LoadUserState(ctx context.Context, c, u string) (*store.UserState, error) {
	close(s.started)
	<-ctx.Done()
	return nil, fmt.Errorf("%w: read tcp 10.0.0.2:51234->10.0.0.9:6379: connection reset by peer", store.ErrUnavailable)
}

// TestStoreFailureAtHangUpIsStillCounted: a load that fails of itself is
// a store outage even when the bot hangs up meanwhile; only a load ended
// by the request's own end is the bot's doing. The store's failure was
// taken for the hang-up, neither counted nor logged.
func TestStoreFailureAtHangUpIsStillCounted(t *testing.T) {
	st := &failingAtHangUpState{started: make(chan struct{})}
	_, logs, reg := hangUpDuring(t, Options{Tools: queryTools{}, State: st}, st.started,
		http.MethodPost, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`)
	want := fmt.Sprintf("# HELP paygate_state_unavailable_total %s\n# TYPE paygate_state_unavailable_total counter\npaygate_state_unavailable_total 1\n",
		"Turns served without payment state because the store did not answer.")
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paygate_state_unavailable_total"); err != nil {
		t.Error(err)
	}
	if !strings.Contains(logs.String(), "connection reset by peer") {
		t.Errorf("the store's failure was not logged:\n%s", logs.String())
	}
}
