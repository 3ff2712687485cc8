package accounting

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/store"
)

// memStore is a SessionStore in memory: the ledger's arithmetic is what
// this test is about; the stores' own behaviour is proved in store/.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) PutExchange(_ context.Context, k string, v []byte, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = append([]byte(nil), v...)
	return nil
}

func (s *memStore) GetExchange(_ context.Context, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func TestLedger(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers:
  - name: p
    base_url: http://x
    prices: {m: {input: "2.50", output: "10.00"}, cheap: {input: "0.075", output: "0.30"}}
models: [{name: m, targets: [{provider: p, model: m}]}]
`), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{m: map[string][]byte{}}
	l, err := New(cfg, st, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		provider string
		model    string
		u        Usage
		want     string
	}{
		{"priced model", "p", "m", Usage{1000, 200}, "0.004500"},           // 1000×2.50/M + 200×10/M
		{"sub-cent prices", "p", "cheap", Usage{1_000_000, 0}, "0.075000"}, // a million tokens at 0.075
		{"unpriced model costs nothing", "p", "other", Usage{500, 500}, "0.000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.Round(tc.provider, tc.model, tc.u).String(); got != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
		})
	}

	ctx := context.Background()
	a := l.Round("p", "m", Usage{1000, 200})
	l.Turn(ctx, "bot", "s1", a)
	l.Turn(ctx, "bot", "s1", a)      // two turns of one conversation
	l.Turn(ctx, "bot", "s2", a)      // another conversation, never paid
	l.Paid(ctx, "bot", "s1")         // s1 ends in a paid order
	l.Paid(ctx, "bot", "no-session") // a payment with no priced turns
	s := l.Stats()
	if s.PaidOrders != 2 || s.TransactionCost != "0.009000" || s.CostPerTransaction == nil || *s.CostPerTransaction != "0.004500" {
		t.Errorf("stats %+v; want 2 paid orders costing 0.009000, 0.004500 each", s)
	}
	if s.Turns != 3 || len(s.Series) != 1 {
		t.Errorf("turns %d series %d; want 3 turns in one hour", s.Turns, len(s.Series))
	}
	// Paying closes the conversation's count: the next purchase starts at 0.
	if b, err := st.GetExchange(ctx, sessionKey("bot", "s1")); err != nil || string(b) != "0" {
		t.Errorf("s1 after payment: %q %v; want 0", b, err)
	}
	if _, err := st.GetExchange(ctx, sessionKey("bot", "s2")); errors.Is(err, store.ErrNotFound) {
		t.Errorf("s2's cost was not kept")
	}
	// A turn without a user has no conversation to keep: it counts in the
	// totals and writes nothing to the store.
	writes := len(st.m)
	l.Turn(ctx, "bot", "", a)
	if len(st.m) != writes {
		t.Errorf("a session-less turn wrote to the store: %v", st.m)
	}
	if l.Stats().Turns != 4 {
		t.Errorf("the session-less turn was not counted")
	}
}

func testLedger(t *testing.T, st SessionStore) *Ledger {
	t.Helper()
	cfg, err := config.Parse([]byte(`
providers:
  - name: p
    base_url: http://x
    prices: {m: {input: "2.50", output: "10.00"}}
models: [{name: m, targets: [{provider: p, model: m}]}]
`), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(cfg, st, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestConcurrentTurnsOfOneConversation: a user's parallel turns each add
// their cost; none is lost to another's read-modify-write.
func TestConcurrentTurnsOfOneConversation(t *testing.T) {
	st := &memStore{m: map[string][]byte{}}
	l := testLedger(t, st)
	defer l.Close()
	a := l.Round("p", "m", Usage{1000, 200}) // 0.004500
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Turn(context.Background(), "bot", "s", a)
		}()
	}
	wg.Wait()
	l.Paid(context.Background(), "bot", "s")
	if got, want := l.Stats().TransactionCost, (50 * a).String(); got != want {
		t.Errorf("the paid conversation cost %s; want %s (50 turns)", got, want)
	}
}

// TestTurnDoesNotWaitForTheStore: the turn's answer ends only when Turn
// returns, so a slow store must not hold it; Close then waits until every
// queued cost is in the store.
func TestTurnDoesNotWaitForTheStore(t *testing.T) {
	st := &slowStore{memStore: memStore{m: map[string][]byte{}}, release: make(chan struct{})}
	l := testLedger(t, st)
	a := l.Round("p", "m", Usage{1000, 200}) // 4,500,000,000 pico
	returned := make(chan struct{})
	go func() {
		for range 100 {
			l.Turn(context.Background(), "bot", "s", a)
		}
		close(returned)
	}()
	select {
	case <-returned: // every Turn returned while the store held its writes
	case <-time.After(10 * time.Second):
		t.Fatal("Turn waited for the store")
	}
	close(st.release)
	l.Close()
	if b, err := st.GetExchange(context.Background(), sessionKey("bot", "s")); err != nil || string(b) != "450000000000" {
		t.Errorf("after Close: kept cost %q, %v; want 450000000000 (100 turns)", b, err)
	}
	// After Close a turn is kept directly.
	l.Turn(context.Background(), "bot", "s", a)
	if b, _ := st.GetExchange(context.Background(), sessionKey("bot", "s")); string(b) != "454500000000" {
		t.Errorf("a turn after Close: kept cost %q; want 454500000000", b)
	}
}

// slowStore holds every write until released.
type slowStore struct {
	memStore
	release chan struct{}
}

func (s *slowStore) PutExchange(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	<-s.release
	return s.memStore.PutExchange(ctx, k, v, ttl)
}
