package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// hungState is a store that takes every call and answers none, as the
// Redis driver does on a Redis that accepts connections but does not
// answer: a call returns when its context's deadline passes, and a call
// without one waits for the driver's read timeout (here hungFor, far
// longer than the turn may take).
type hungState struct {
	calls, unbounded atomic.Int32
}

const hungFor = 10 * time.Second

func (h *hungState) wait(ctx context.Context) error {
	h.calls.Add(1)
	if _, ok := ctx.Deadline(); !ok {
		h.unbounded.Add(1)
	}
	t := time.NewTimer(hungFor)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", store.ErrUnavailable, ctx.Err())
	case <-t.C:
		return fmt.Errorf("%w: read timeout", store.ErrUnavailable)
	}
}

func (h *hungState) LoadUserState(ctx context.Context, _, _ string) (*store.UserState, error) {
	return nil, h.wait(ctx)
}

func (h *hungState) PutExchange(ctx context.Context, _ string, _ []byte, _ time.Duration) error {
	return h.wait(ctx)
}

func (h *hungState) GetExchange(ctx context.Context, _ string) ([]byte, error) {
	return nil, h.wait(ctx)
}

func (h *hungState) ClaimAnnouncement(ctx context.Context, _, _, _, _ string, _ time.Duration) (bool, error) {
	return false, h.wait(ctx)
}

// TestHungStoreTurnGoesOn: a turn whose store does not answer goes on
// without payment state after its store deadlines, stateTimeout for the
// restored exchanges and stateTimeout for the state load (SPEC 6: store
// down, chat without payment state still works); it does not wait for the
// request's own end.
func TestHungStoreTurnGoesOn(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Sunny it is."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}`))
	st := &hungState{}
	url := paymentProxy(t, fp.URL, nil, queryTools{}, st, nil)
	// The bot comes back with its own call's result: the turn looks for a
	// kept exchange of that call first, then loads the payment state.
	body := `{"model":"gpt-test",` + weatherTool + `"messages":[{"role":"user","content":"weather?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
	start := time.Now()
	resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
	got := readAll(t, resp.Body)
	took := time.Since(start)
	t.Logf("turn on a hung store: %d after %v, %d store calls", resp.StatusCode, took.Round(time.Millisecond), st.calls.Load())
	if resp.StatusCode != 200 || !strings.Contains(got, "Sunny it is.") {
		t.Errorf("turn on a hung store: %d %s; want the model's answer", resp.StatusCode, got)
	}
	if took > 2*stateTimeout+time.Second {
		t.Errorf("turn on a hung store took %v; want about twice stateTimeout (%v)", took.Round(time.Millisecond), stateTimeout)
	}
	if st.calls.Load() < 2 {
		t.Errorf("%d store calls; want the exchange lookup and the state load", st.calls.Load())
	}
	if n := st.unbounded.Load(); n > 0 {
		t.Errorf("%d store calls before the upstream call had no deadline", n)
	}
	if len(fp.requests()) != 1 {
		t.Errorf("%d upstream requests; want 1", len(fp.requests()))
	}
}

// localState answers at once, as the embedded store does, and says it is a
// LocalStore; it counts the reads that came with a deadline.
type localState struct {
	calls, bounded atomic.Int32
}

func (l *localState) Local() bool { return true }

func (l *localState) note(ctx context.Context) {
	l.calls.Add(1)
	if _, ok := ctx.Deadline(); ok {
		l.bounded.Add(1)
	}
}

func (l *localState) LoadUserState(ctx context.Context, _, _ string) (*store.UserState, error) {
	l.note(ctx)
	return &store.UserState{}, nil
}

func (l *localState) PutExchange(context.Context, string, []byte, time.Duration) error { return nil }

func (l *localState) GetExchange(ctx context.Context, _ string) ([]byte, error) {
	l.note(ctx)
	return nil, store.ErrNotFound
}

func (l *localState) ClaimAnnouncement(context.Context, string, string, string, string, time.Duration) (bool, error) {
	return true, nil
}

// TestLocalStoreReadWithoutDeadline: a store whose reads cannot hang on
// another process (LocalStore: the embedded file) is read without the
// turn's store deadline, which would cost every turn a timer and four
// allocations for nothing.
func TestLocalStoreReadWithoutDeadline(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Sunny it is."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}`))
	st := &localState{}
	url := paymentProxy(t, fp.URL, nil, queryTools{}, st, nil)
	body := `{"model":"gpt-test",` + weatherTool + `"messages":[{"role":"user","content":"weather?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"call_w","content":"sunny"}]}`
	resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
	if got := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(got, "Sunny it is.") {
		t.Fatalf("turn: %d %s; want the model's answer", resp.StatusCode, got)
	}
	if st.calls.Load() < 2 || st.bounded.Load() != 0 {
		t.Errorf("%d store reads, %d with a deadline; want the exchange lookup and the state load, none bounded", st.calls.Load(), st.bounded.Load())
	}
}

// slowState answers every read after lat (a loaded but healthy store).
type slowState struct {
	lat      time.Duration
	gets     atomic.Int32
	stateErr atomic.Value
}

func (s *slowState) wait(ctx context.Context) error {
	select {
	case <-time.After(s.lat):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", store.ErrUnavailable, ctx.Err())
	}
}
func (s *slowState) LoadUserState(ctx context.Context, _, _ string) (*store.UserState, error) {
	if err := s.wait(ctx); err != nil {
		s.stateErr.Store(err.Error())
		return nil, err
	}
	return &store.UserState{}, nil
}
func (s *slowState) PutExchange(context.Context, string, []byte, time.Duration) error { return nil }
func (s *slowState) GetExchange(ctx context.Context, _ string) ([]byte, error) {
	s.gets.Add(1)
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return nil, store.ErrNotFound
}
func (s *slowState) ClaimAnnouncement(context.Context, string, string, string, string, time.Duration) (bool, error) {
	return true, nil
}

// TestManyToolRoundsLeaveTheStateLoadItsTime: a conversation with many
// rounds of the bot's own tool calls makes one kept-exchange read each, in
// sequence, on a loaded but healthy store (25 ms a read); the payment state
// load after them has its own deadline and answers. It once shared theirs
// and found it spent: no state message, nothing announced.
func TestManyToolRoundsLeaveTheStateLoadItsTime(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}`))
	st := &slowState{lat: 25 * time.Millisecond}
	url := paymentProxy(t, fp.URL, nil, queryTools{}, st, nil)
	var msgs []string
	msgs = append(msgs, `{"role":"user","content":"go"}`)
	for i := range 45 {
		msgs = append(msgs, fmt.Sprintf(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_%d","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`, i),
			fmt.Sprintf(`{"role":"tool","tool_call_id":"call_%d","content":"sunny"}`, i))
	}
	body := `{"model":"gpt-test",` + weatherTool + `"messages":[` + strings.Join(msgs, ",") + `]}`
	resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
	_ = readAll(t, resp.Body)
	if e := st.stateErr.Load(); e != nil {
		t.Errorf("every read answered in 25ms, yet the payment state load failed: %v (%d exchange lookups before it)", e, st.gets.Load())
	}
}

// paidThenHung answers the state load with a paid order the user has not
// heard of, then hangs like hungState: a Redis that stops answering
// between a turn's start and its end.
type paidThenHung struct{ hungState }

func (p *paidThenHung) LoadUserState(_ context.Context, client, user string) (*store.UserState, error) {
	o := storetest.NewOrder("PAID-HUNG-1", client, user, time.Now().Add(-time.Minute))
	o.Status, o.PaidAt = store.StatusPaid, time.Now().Add(-30*time.Second)
	o.UpdatedAt = o.PaidAt
	return &store.UserState{Client: client, User: user, Orders: []*store.Order{o}, Now: time.Now()}, nil
}

// TestHungStoreHoldsNoAnswer: every store call a turn makes before its
// answer leaves has a deadline, also those after the state load: claiming
// an announcement (payment_confirmed for an order paid since) and keeping
// a mixed round's payment exchange. Without one, a Redis that stopped
// answering mid-turn held the finished answer for the driver's timeouts
// (10 s here).
func TestHungStoreHoldsNoAnswer(t *testing.T) {
	tests := []struct {
		name  string
		st    interface{ unboundedCalls() int32 }
		up    string // the model's answer
		body  string
		wants string
	}{
		{"an announcement to claim", &paidThenHung{},
			`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`,
			`{"model":"gpt-test","messages":[{"role":"user","content":"hello"}]}`, "Hi."},
		{"a mixed round's exchange to keep", &hungState{},
			`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
				`{"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{}"}},{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`,
			`{"model":"gpt-test",` + weatherTool + `"messages":[{"role":"user","content":"weather and my order?"}]}`, "get_weather"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, tc.up))
			url := paymentProxy(t, fp.URL, nil, queryTools{}, tc.st.(StateStore), nil)
			got := readAll(t, post(t, url, "/v1/chat/completions", tc.body, map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			if !strings.Contains(got, tc.wants) {
				t.Errorf("the bot got %s; want the model's answer", got)
			}
			if n := tc.st.unboundedCalls(); n != 0 {
				t.Errorf("%d store calls without a deadline; want none", n)
			}
		})
	}
}

func (h *hungState) unboundedCalls() int32 { return h.unbounded.Load() }

// leavingState is the embedded store (LocalStore: its reads carry the
// request's own context) of a turn whose client leaves during the first
// kept-exchange lookup: that lookup cancels the request and answers with
// its context's error.
type leavingState struct {
	localState
	leave context.CancelFunc
}

func (l *leavingState) GetExchange(ctx context.Context, _ string) ([]byte, error) {
	l.note(ctx)
	l.leave()
	<-ctx.Done()
	return nil, fmt.Errorf("%w: %w", store.ErrUnavailable, ctx.Err())
}

// TestRestoreStopsWhenClientLeaves: a long conversation of the bot's own
// tool-call rounds is looked up one kept exchange at a time; once the
// client has left, the rest are not read.
func TestRestoreStopsWhenClientLeaves(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &leavingState{leave: cancel}
	s := newPaygate(t, testConfig(t, fp.URL, nil), Options{Tools: queryTools{}, State: st})
	msgs := []string{`{"role":"user","content":"go"}`}
	for i := range 45 {
		msgs = append(msgs, fmt.Sprintf(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_%d","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`, i),
			fmt.Sprintf(`{"role":"tool","tool_call_id":"call_%d","content":"sunny"}`, i))
	}
	body := `{"model":"gpt-test",` + weatherTool + `"messages":[` + strings.Join(msgs, ",") + `]}`
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("X-WeChat-OpenID", "o-user-1")
	s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	if ctx.Err() == nil {
		t.Fatal("no kept exchange was looked up (the client never left); the test proves nothing")
	}
	// The state load after the lookups is a read too: one lookup and it.
	if n := st.calls.Load(); n > 2 {
		t.Errorf("%d store reads after the client left during the first of 45 lookups; want the rest not read", n)
	}
}
