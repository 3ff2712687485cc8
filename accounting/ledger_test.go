package accounting

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// memStore is a SessionStore in memory: the ledger's arithmetic is what
// this test is about; the stores' own behaviour is proved in store/ (and
// TestConversationCostAcrossReplicas runs the ledger on the real drivers).
type memStore struct {
	mu     sync.Mutex
	m      map[string]int64
	writes int // AddTally and AddTallies calls: the store's write transactions
}

func (s *memStore) AddTally(_ context.Context, k string, delta int64, _ time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	s.m[k] = int64(addPico(Pico(s.m[k]), Pico(delta))) // as the stores stop at the end
	return s.m[k], nil
}

func (s *memStore) AddTallies(_ context.Context, adds []store.TallyAdd, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for _, a := range adds {
		s.m[a.Key] = int64(addPico(Pico(s.m[a.Key]), Pico(a.Delta)))
	}
	return nil
}

// writeCount is how many write transactions the store has run.
func (s *memStore) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *memStore) TakeTally(_ context.Context, k string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.m[k]
	delete(s.m, k)
	return n, nil
}

func (s *memStore) IncrCounter(_ context.Context, k string, _ time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k]++
	return s.m[k], nil
}

// kept is the conversation's cost as the store holds it, and whether it
// holds one.
func (s *memStore) kept(k string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.m[k]
	return n, ok
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
	st := &memStore{m: map[string]int64{}}
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
		{"priced model", "p", "m", Usage{1000, 200, 0, 0}, "0.004500"},           // 1000×2.50/M + 200×10/M
		{"sub-cent prices", "p", "cheap", Usage{1_000_000, 0, 0, 0}, "0.075000"}, // a million tokens at 0.075
		{"unpriced model costs nothing", "p", "other", Usage{500, 500, 0, 0}, "0.000000"},
		// xAI's and Gemini's reasoning, counted only in the total, is output.
		{"output counted only in the total", "p", "m", Usage{1000, 200, 1500, 0}, "0.007500"}, // 1000×2.50/M + 500×10/M
		{"a total short of the sum changes nothing", "p", "m", Usage{1000, 200, 1100, 0}, "0.004500"},
		{"a total out of range changes nothing", "p", "m", Usage{1000, 200, 4_000_000_000_000, 0}, "0.004500"},
		{"a total alone is no output", "p", "m", Usage{0, 0, 1000, 0}, "0.000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.Round(context.Background(), tc.provider, tc.model, tc.u).String(); got != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
		})
	}

	ctx := context.Background()
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0})
	l.Turn(ctx, "bot", "u", "s1", a)
	l.Turn(ctx, "bot", "u", "s1", a)                            // two turns of one conversation
	l.Turn(ctx, "bot", "u", "s2", a)                            // another conversation, never paid
	l.Turn(ctx, "other-bot", "u", "s1", a)                      // the same user and session at another client: another conversation
	l.Paid(ctx, "bot", "u", "s1", "ORD-1", time.Time{})         // s1 ends in a paid order
	l.Paid(ctx, "bot", "u", "no-session", "ORD-2", time.Time{}) // a payment with no priced turns
	l.Flush()
	s := l.Stats()
	if s.PaidOrders != 2 || s.TransactionCost != "0.009000" || s.CostPerTransaction == nil || *s.CostPerTransaction != "0.004500" {
		t.Errorf("stats %+v; want 2 paid orders costing 0.009000, 0.004500 each", s)
	}
	if s.Turns != 4 || len(s.Series) != 1 {
		t.Errorf("turns %d series %d; want 4 turns in one hour", s.Turns, len(s.Series))
	}
	// Paying closes the conversation's count: the next purchase starts at 0.
	if n, ok := st.kept(sessionKey("bot", "u", "s1")); ok {
		t.Errorf("s1 after payment: %d kept; want nothing", n)
	}
	if n, _ := st.kept(sessionKey("bot", "u", "s2")); n != int64(a) {
		t.Errorf("s2's cost: %d kept; want %d", n, a)
	}
	if n, _ := st.kept(sessionKey("other-bot", "u", "s1")); n != int64(a) {
		t.Errorf("s1 of the same user at another client: %d kept; want %d (its own conversation, not paid by bot's order)", n, a)
	}
	// A turn without a user has no conversation to keep: it counts in the
	// totals and writes nothing to the store.
	writes := len(st.m)
	l.Turn(ctx, "bot", "", "", a)
	if len(st.m) != writes {
		t.Errorf("a session-less turn wrote to the store: %v", st.m)
	}
	if l.Stats().Turns != 5 {
		t.Errorf("the session-less turn was not counted")
	}
}

// TestRoundUsageOutOfRange: a provider's usage is not trusted to be sane.
// A negative count made Round call Counter.Add with a negative value,
// which panics ("counter cannot decrease"), and so did a count whose cost
// overflowed int64 (4e12 tokens at 2.50 per million): the panic ended the
// request whose answer the provider had already produced, after a payment
// tool had run on the chat path. A negative count is taken as 0, a count
// no call can use (above maxRoundTokens) is refused (taken as 0), a cost
// past maxRoundCost is capped there; each is logged once per provider and
// model, however many rounds bring it.
func TestRoundUsageOutOfRange(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers:
  - name: p
    base_url: http://x
    prices: {m: {input: "2.50", output: "10.00"}, steep: {input: "10000"}, dear: {input: "999999999999", output: "999999999999"}}
models: [{name: m, targets: [{provider: p, model: m}, {provider: p, model: steep}, {provider: p, model: dear}]}]
`), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name               string
		model              string
		u                  Usage
		prompt, completion float64 // tokens counted per round
		cost               string  // per round
		log                string
	}{
		{"negative prompt tokens", "m", Usage{-5, 200, 0, 0}, 0, 200, "0.002000", "negative"},
		{"negative completion tokens", "m", Usage{1000, -1, 0, 0}, 1000, 0, "0.002500", "negative"},
		{"more tokens than any call uses", "m", Usage{4_000_000_000_000, 200, 0, 0}, 0, 200, "0.002000", "more than"},
		{"a cost past the cap", "steep", Usage{2_000_000, 0, 0, 0}, 2_000_000, 0, maxRoundCost.String(), "capped"},
		{"a cost past int64", "dear", Usage{10_000_000, 10_000_000, 0, 0}, 10_000_000, 10_000_000, maxRoundCost.String(), "capped"},
		{"the largest count at the dearest price", "dear", Usage{10_000_000_000, 0, 0, 0}, 10_000_000_000, 0, maxRoundCost.String(), "capped"},
		{"the largest count, half of it cached, at the dearest price", "dear", Usage{10_000_000_000, 0, 0, 5_000_000_000}, 10_000_000_000, 0, maxRoundCost.String(), "capped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			reg := prometheus.NewRegistry()
			l, err := New(cfg, nil, reg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			const rounds = 3
			for range rounds {
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("Round(%+v) panicked: %v", tc.u, p)
						}
					}()
					if got := l.Round(context.Background(), "p", tc.model, tc.u); got.String() != tc.cost {
						t.Errorf("Round(%+v) = %s; want %s", tc.u, got, tc.cost)
					}
				}()
			}
			for kind, want := range map[string]float64{"prompt": tc.prompt, "completion": tc.completion} {
				if got := testutil.ToFloat64(l.tokens.WithLabelValues("p", tc.model, kind)); got != rounds*want {
					t.Errorf("%s tokens counted %v; want %v", kind, got, rounds*want)
				}
			}
			if c := l.Stats().ByModel[0].LLMCost; strings.HasPrefix(c, "-") {
				t.Errorf("the model's cost %s is negative", c)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), tc.log) {
				t.Errorf("%d warnings over %d rounds; want one that says %q:\n%s", n, rounds, tc.log, logs.String())
			}
		})
	}
}

// TestCachedPromptTokensPriced: providers bill the prompt tokens they serve
// from their prompt cache, which paygate keeps hitting (SPEC 3), at a
// fraction of the input price, and the ledger priced them at the full one:
// gpt-4o-mini, 10,000 prompt tokens of which 9,000 cached, cost 0.001500
// in every figure (the LLM spend, paygate_llm_cost_total, the cost per
// completed transaction) instead of 0.000825. The cached tokens are a part
// of the prompt tokens, priced at cached_input, which defaults to input.
func TestCachedPromptTokensPriced(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers:
  - name: p
    base_url: http://x
    prices:
      mini: {input: "0.15", cached_input: "0.075", output: "0.60"}
      m: {input: "2.50", cached_input: "1.25", output: "10.00"}
      nocache: {input: "2.50", output: "10.00"}
      free: {input: "2.50", cached_input: "0", output: "10.00"}
models: [{name: m, targets: [{provider: p, model: mini}, {provider: p, model: m}, {provider: p, model: nocache}, {provider: p, model: free}]}]
`), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		model  string
		u      Usage
		cost   string
		cached float64 // cached prompt tokens counted
		warn   string  // a warning logged, "" none
	}{
		{"the reviewer's figures", "mini", Usage{10_000, 0, 0, 9_000}, "0.000825", 9_000, ""}, // 1,000×0.15/M + 9,000×0.075/M
		{"with output", "m", Usage{1000, 200, 1200, 800}, "0.003500", 800, ""},                // 200×2.50 + 800×1.25 + 200×10, per million
		{"with output counted only in the total", "m", Usage{1000, 200, 1500, 800}, "0.006500", 800, ""},
		{"nothing cached", "m", Usage{1000, 200, 1200, 0}, "0.004500", 0, ""},
		{"no cached_input: the input price", "nocache", Usage{10_000, 0, 0, 9_000}, "0.025000", 9_000, ""},
		{"cached_input 0: cached tokens free", "free", Usage{10_000, 0, 0, 9_000}, "0.002500", 9_000, ""},
		{"all of the prompt cached", "mini", Usage{10_000, 0, 0, 10_000}, "0.000750", 10_000, ""},
		// A provider's bug: more cached than prompt tokens. The prompt
		// tokens are taken as cached; none is priced twice.
		{"more cached than prompt tokens", "mini", Usage{1_000, 0, 0, 5_000}, "0.000075", 1_000, "more cached"},
		{"negative cached tokens", "mini", Usage{10_000, 0, 0, -5}, "0.001500", 0, "negative"},
		{"cached tokens past any call", "mini", Usage{10_000, 0, 0, 4_000_000_000_000}, "0.001500", 0, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			reg := prometheus.NewRegistry()
			l, err := New(cfg, nil, reg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			c := l.Round(context.Background(), "p", tc.model, tc.u)
			if c.String() != tc.cost {
				t.Errorf("Round(%+v) = %s; want %s", tc.u, c, tc.cost)
			}
			l.Call(c)
			if got := l.Stats().LLMCost; got != tc.cost {
				t.Errorf("LLM spend %s; want %s", got, tc.cost)
			}
			if got := testutil.ToFloat64(l.cost.WithLabelValues("p", tc.model)); fmt.Sprintf("%.6f", got) != tc.cost {
				t.Errorf("paygate_llm_cost_total %.6f; want %s", got, tc.cost)
			}
			if got := testutil.ToFloat64(l.tokens.WithLabelValues("p", tc.model, "cached_prompt")); got != tc.cached {
				t.Errorf("cached prompt tokens counted %v; want %v", got, tc.cached)
			}
			if got := l.Stats().ByModel[0].CachedPromptTokens; float64(got) != tc.cached {
				t.Errorf("stats: cached prompt tokens %d; want %v", got, tc.cached)
			}
			if got := testutil.ToFloat64(l.tokens.WithLabelValues("p", tc.model, "prompt")); got != float64(tc.u.PromptTokens) {
				t.Errorf("prompt tokens counted %v; want %v (cached ones included)", got, tc.u.PromptTokens)
			}
			switch logged := logs.String(); {
			case tc.warn == "" && logged != "":
				t.Errorf("logged %s", logged)
			case tc.warn != "" && !strings.Contains(logged, tc.warn):
				t.Errorf("logged %q; want a warning that says %q", logged, tc.warn)
			}
		})
	}
}

// TestUnpricedUsageWarnsOnce: a round of a provider and model with no
// price costs 0, which a missing or misspelt price made silent: the spend
// figures were short and nothing said why. The first round with tokens of
// each such pair is logged, no later one; a priced pair, and a round
// without tokens, never are.
func TestUnpricedUsageWarnsOnce(t *testing.T) {
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
	var logs syncBuffer
	l, err := New(cfg, nil, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rounds := []struct {
		provider, model string
		u               Usage
	}{
		{"p", "m", Usage{10, 10, 0, 0}},
		{"p", "free", Usage{0, 0, 0, 0}}, // no tokens: no cost missed
		{"p", "other", Usage{10, 10, 0, 0}},
		{"p", "other", Usage{10, 10, 0, 0}},
		{"q", "m", Usage{0, 5, 0, 0}}, // the priced model's name under another provider
		{"q", "m", Usage{5, 0, 0, 0}},
		{"p", "m", Usage{10, 10, 0, 0}},
	}
	for _, r := range rounds {
		l.Round(context.Background(), r.provider, r.model, r.u)
	}
	var warned []string
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, "level=WARN") {
			if !strings.Contains(line, "no price") {
				t.Errorf("warning %q; want it to say the model has no price", line)
			}
			if m := pairAttrs.FindStringSubmatch(line); m != nil {
				warned = append(warned, m[1])
			}
		}
	}
	if want := []string{"provider=p target=other", "provider=q target=m"}; !slices.Equal(warned, want) {
		t.Errorf("warned of %q; want %q, once each:\n%s", warned, want, logs.String())
	}
}

// pairAttrs finds the provider and upstream model a log line names: the
// upstream model is the target, as failover's lines and the admin API name
// it; under model, which they keep for the bot's model, a search for
// either missed the warning.
var pairAttrs = regexp.MustCompile(`(provider=\S+ target=\S+)`)

// TestConversationIsTheUsersSession: a session names a conversation of one
// user (the bot's "chat-1", or by default the user's OpenID), so a payment
// takes the buyer's own conversation's cost: not another user's conversation
// of the same name, nor the default conversation of a user whose OpenID the
// buyer's session is named like.
func TestConversationIsTheUsersSession(t *testing.T) {
	st := &memStore{m: map[string]int64{}}
	l := testLedger(t, st)
	defer l.Close()
	ctx := context.Background()
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0}) // 0.004500
	l.Turn(ctx, "bot", "oA", "chat-1", a)
	l.Turn(ctx, "bot", "oA", "oA", a) // A's default conversation
	l.Turn(ctx, "bot", "oB", "chat-1", a)
	l.Paid(ctx, "bot", "oB", "chat-1", "ORD-1", time.Time{})
	l.Paid(ctx, "bot", "oB", "oA", "ORD-2", time.Time{})
	l.Flush()
	if s := l.Stats(); s.PaidOrders != 2 || s.TransactionCost != a.String() {
		t.Errorf("%d paid orders costing %s; want 2 costing %s (B's one turn)", s.PaidOrders, s.TransactionCost, a)
	}
	for _, session := range []string{"chat-1", "oA"} {
		if n, _ := st.kept(sessionKey("bot", "oA", session)); n != int64(a) {
			t.Errorf("A's conversation %q keeps %d; want %d, its turn", session, n, a)
		}
	}
}

func testLedger(t *testing.T, st SessionStore) *Ledger {
	t.Helper()
	return testLedgerOn(t, st, prometheus.NewRegistry(), io.Discard)
}

// testLedgerOn is testLedger with its metrics in reg and its log to logOut.
func testLedgerOn(t *testing.T, st SessionStore, reg prometheus.Registerer, logOut io.Writer) *Ledger {
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
	l, err := New(cfg, st, reg, slog.New(slog.NewTextHandler(logOut, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestConcurrentTurnsOfOneConversation: a user's parallel turns each add
// their cost; none is lost to another's read-modify-write.
func TestConcurrentTurnsOfOneConversation(t *testing.T) {
	st := &memStore{m: map[string]int64{}}
	l := testLedger(t, st)
	defer l.Close()
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0}) // 0.004500
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Turn(context.Background(), "bot", "u", "s", a)
		}()
	}
	wg.Wait()
	l.Paid(context.Background(), "bot", "u", "s", "ORD-1", time.Time{})
	l.Flush()
	if got, want := l.Stats().TransactionCost, (50 * a).String(); got != want {
		t.Errorf("the paid conversation cost %s; want %s (50 turns)", got, want)
	}
}

// TestConversationCostAcrossReplicas: two replicas serving turns of one
// conversation at once, each with its own ledger over one store, keep every
// turn's cost, and the payment takes all of it. (Each ledger's writer read
// the kept cost and wrote it back plus its turn: two replicas doing that at
// once lost turns.)
func TestConversationCostAcrossReplicas(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			place := testdrivers.NewPlace(t, driver, nil)
			stA := place.Open()
			stB := stA // one embedded file is one process's
			if driver == "redis" {
				stB = place.Open()
			}
			la, lb := testLedger(t, stA), testLedger(t, stB)
			defer la.Close()
			a := la.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0}) // 0.004500
			const turns = 100
			var wg sync.WaitGroup
			for i := range turns {
				l := la
				if i%2 == 1 {
					l = lb
				}
				wg.Go(func() { l.Turn(context.Background(), "bot", "u", "s", a) })
			}
			wg.Wait()
			lb.Close()                                                           // b's turns are in the store
			la.Paid(context.Background(), "bot", "u", "s", "ORD-1", time.Time{}) // after a's own turns
			la.Flush()
			if got, want := la.Stats().TransactionCost, (turns * a).String(); got != want {
				t.Errorf("the paid conversation cost %s; want %s (%d turns on two replicas)", got, want, turns)
			}
			left, err := stB.TakeTally(context.Background(), sessionKey("bot", "u", "s"))
			if err != nil || left != 0 {
				t.Errorf("after the payment %d is kept (%v); want 0", left, err)
			}
		})
	}
}

// TestTurnDoesNotWaitForTheStore: the turn's answer ends only when Turn
// returns, so a slow store must not hold it; Close then waits until every
// queued cost is in the store.
func TestTurnDoesNotWaitForTheStore(t *testing.T) {
	st := &slowStore{memStore: memStore{m: map[string]int64{}}, release: make(chan struct{})}
	l := testLedger(t, st)
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0}) // 4,500,000,000 pico
	returned := make(chan struct{})
	go func() {
		for range 100 {
			l.Turn(context.Background(), "bot", "u", "s", a)
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
	if n, _ := st.kept(sessionKey("bot", "u", "s")); n != 450000000000 {
		t.Errorf("after Close: kept cost %d; want 450000000000 (100 turns)", n)
	}
	// After Close a turn is kept directly.
	l.Turn(context.Background(), "bot", "u", "s", a)
	if n, _ := st.kept(sessionKey("bot", "u", "s")); n != 454500000000 {
		t.Errorf("a turn after Close: kept cost %d; want 454500000000", n)
	}
}

// TestQueuedTurnsWrittenTogether: the writer keeps the costs that queued
// while it wrote in one store write, not one write per turn. A write of the
// embedded store waits for the disk (bbolt syncs every transaction: about
// 0.36 ms here), so one write per turn capped the conversations kept at
// about 2,800 turns a second, and the queue dropped the rest. A payment
// among them still takes exactly the turns queued before it.
func TestQueuedTurnsWrittenTogether(t *testing.T) {
	st := &slowStore{memStore: memStore{m: map[string]int64{}}, release: make(chan struct{}), entered: make(chan struct{}, 1)}
	l := testLedger(t, st)
	ctx := context.Background()
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0})
	l.Turn(ctx, "bot", "u0", "s", a) // held in the store by the writer
	<-st.entered
	const users = 300
	for i := range users {
		l.Turn(ctx, "bot", fmt.Sprintf("u%d", i), "s", a)
	}
	l.Paid(ctx, "bot", "u7", "s", "ORD-7", time.Time{}) // takes u7's turn queued before it
	l.Turn(ctx, "bot", "u7", "s", a)                    // and starts its count again
	l.Turn(ctx, "bot", "u8", "s", a)                    // another conversation after it
	close(st.release)
	l.Flush()
	if s := l.Stats(); s.PaidOrders != 1 || s.TransactionCost != a.String() {
		t.Errorf("the payment: %d paid orders costing %s; want 1 costing %s (u7's one turn before it)", s.PaidOrders, s.TransactionCost, a)
	}
	for i := range users {
		want := a
		switch i {
		case 0:
			want = 2 * a
		case 8:
			want = 2 * a
		}
		if n, _ := st.kept(sessionKey("bot", fmt.Sprintf("u%d", i), "s")); Pico(n) != want {
			t.Errorf("u%d keeps %s; want %s", i, Pico(n), want)
		}
	}
	// The held write, the turns queued behind it (at most two batches of
	// 256), the payment's take, and the turns after it.
	if w := st.writeCount(); w > 5 {
		t.Errorf("%d store writes for %d queued turns; want at most 5 (queued turns written together)", w, users+3)
	}
	l.Close()
}

// slowStore holds every write until released. entered, when set, is told
// of the first write held.
type slowStore struct {
	memStore
	release chan struct{}
	entered chan struct{}
}

func (s *slowStore) AddTally(ctx context.Context, k string, delta int64, ttl time.Duration) (int64, error) {
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	<-s.release
	return s.memStore.AddTally(ctx, k, delta, ttl)
}

func (s *slowStore) AddTallies(ctx context.Context, adds []store.TallyAdd, ttl time.Duration) error {
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	<-s.release
	return s.memStore.AddTallies(ctx, adds, ttl)
}

// TestPaidDoesNotWaitForTheStore: Paid runs on the payment notification's
// path, which WeChat Pay times out and retries when it is slow (SPEC 2.4),
// so it must not wait behind the writer's queue of conversation costs; the
// payment is counted, with the turns queued before it, once the writer gets
// to it.
func TestPaidDoesNotWaitForTheStore(t *testing.T) {
	st := &slowStore{memStore: memStore{m: map[string]int64{}}, release: make(chan struct{})}
	l := testLedger(t, st)
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0})
	l.Turn(context.Background(), "bot", "u", "s", a) // held by the store
	returned := make(chan struct{})
	go func() {
		l.Paid(context.Background(), "bot", "u", "s", "ORD-1", time.Time{})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Paid waited for the store")
	}
	close(st.release)
	l.Flush()
	if s := l.Stats(); s.PaidOrders != 1 || s.TransactionCost != a.String() {
		t.Errorf("after the writer: %d paid orders costing %s; want 1 costing %s (the turn queued before it)", s.PaidOrders, s.TransactionCost, a)
	}
	l.Close()
}

// TestFullQueueHoldsNoTurnOrPayment: with the store not answering (a Redis
// that times out: each write waits sessionOpTimeout), more turns arrive than
// the writer's queue holds. Turn returns at once all the same (the chat
// answer ends only when it does): a turn's cost that finds the queue full is
// dropped, counted in paygate_accounting_dropped_total and logged once for
// the burst, not once per turn. Paid returns at once too (the payment
// notification's path) and is not dropped: once the store answers, the
// payment is counted, with the turns queued before it, and Close waits for
// it.
func TestFullQueueHoldsNoTurnOrPayment(t *testing.T) {
	st := &slowStore{memStore: memStore{m: map[string]int64{}}, release: make(chan struct{}), entered: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	var logged syncBuffer
	l := testLedgerOn(t, st, reg, &logged)
	released := false
	defer func() {
		if !released {
			close(st.release)
			l.Close()
		}
	}()
	ctx := context.Background()
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0})
	l.Turn(ctx, "bot", "u", "s", a) // held in the store by the writer
	<-st.entered
	const queue, dropped = 1024, 76
	returned := make(chan struct{})
	go func() {
		for range queue + dropped {
			l.Turn(ctx, "bot", "u", "s", a)
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Turn waited for the store once the queue was full")
	}
	paid := make(chan struct{})
	go func() { l.Paid(ctx, "bot", "u", "s", "ORD-1", time.Time{}); close(paid) }()
	select {
	case <-paid:
	case <-time.After(5 * time.Second):
		t.Fatal("Paid (the payment notification's path) waited for the store")
	}
	l.Turn(ctx, "bot", "u", "s", a) // after the payment, the queue still full
	if got := droppedCount(t, reg); got != dropped+1 {
		t.Errorf("paygate_accounting_dropped_total = %v; want %d", got, dropped+1)
	}
	if n := strings.Count(logged.String(), "paygate_accounting_dropped_total"); n != 1 {
		t.Errorf("%d log lines for one burst of dropped turns; want 1:\n%s", n, logged.String())
	}
	// A minute on (a fresh pace: rate.Sometimes reads the clock itself),
	// the next drop is logged with the count since the first.
	l.dropLog = rate.Sometimes{Interval: dropLogEvery}
	l.Turn(ctx, "bot", "u", "s", a)
	if lines := strings.Split(strings.TrimSpace(logged.String()), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[1], fmt.Sprintf("dropped=%d", dropped+1)) {
		t.Errorf("a minute on, the log is:\n%s\nwant a second line with dropped=%d", logged.String(), dropped+1)
	}

	close(st.release) // the store answers again
	released = true
	l.Close()
	s := l.Stats()
	if s.Turns != 1+queue+dropped+2 {
		t.Errorf("%d turns counted; want every turn, %d (a dropped cost still counts in the spend)", s.Turns, 1+queue+dropped+2)
	}
	if want := (1 + queue) * a; s.PaidOrders != 1 || s.TransactionCost != want.String() {
		t.Errorf("after Close: %d paid orders costing %s; want 1 costing %s (the %d turns queued before it)",
			s.PaidOrders, s.TransactionCost, want, 1+queue)
	}
	if n, ok := st.kept(sessionKey("bot", "u", "s")); ok {
		t.Errorf("the conversation keeps %d after the payment; want nothing (the later turns were dropped)", n)
	}
}

func droppedCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "paygate_accounting_dropped_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// syncBuffer is a bytes.Buffer the ledger's goroutines may log to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestOrderPaidAgainCountedOnce: an order that becomes paid again (a refund
// WeChat Pay closes: refunding → paid; a review settled as paid) is not a
// second transaction, on this replica or another sharing the store, and the
// conversation's later turns stay with the conversation.
func TestOrderPaidAgainCountedOnce(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			place := testdrivers.NewPlace(t, driver, nil)
			stA := place.Open()
			stB := stA
			if driver == "redis" {
				stB = place.Open()
			}
			la, lb := testLedger(t, stA), testLedger(t, stB)
			defer la.Close()
			defer lb.Close()
			ctx := context.Background()
			a := la.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0})
			la.Turn(ctx, "bot", "u", "s", a)
			la.Paid(ctx, "bot", "u", "s", "ORD-1", time.Time{})
			la.Flush()
			la.Turn(ctx, "bot", "u", "s", a) // after the payment: the next purchase's
			la.Paid(ctx, "bot", "u", "s", "ORD-1", time.Time{})
			la.Flush()
			lb.Paid(ctx, "bot", "u", "s", "ORD-1", time.Time{})
			lb.Flush()
			if s := la.Stats(); s.PaidOrders != 1 || s.TransactionCost != a.String() {
				t.Errorf("replica a: %d paid orders costing %s; want 1 costing %s", s.PaidOrders, s.TransactionCost, a)
			}
			if s := lb.Stats(); s.PaidOrders != 0 {
				t.Errorf("replica b counted %d paid orders for an order a counted", s.PaidOrders)
			}
			if n, err := stA.TakeTally(ctx, sessionKey("bot", "u", "s")); err != nil || n != int64(a) {
				t.Errorf("the conversation keeps %d (%v); want %d, the turn after the payment", n, err, a)
			}
		})
	}
}

// TestSeriesKeepsOnlyTheLast48Hours: GET /admin/api/stats's series is the
// last 48 hours (this hour and the 47 before). A replica that saw a paid
// order days ago and nothing since must not show that hour: the console
// draws the series as the recent cost per transaction.
func TestSeriesKeepsOnlyTheLast48Hours(t *testing.T) {
	l := testLedger(t, &memStore{m: map[string]int64{}})
	defer l.Close()
	t0 := time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	at := func(d time.Duration) { l.now = func() time.Time { return t0.Add(d) } }
	ctx := context.Background()
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0})
	at(0)
	l.Turn(ctx, "bot", "u", "s", a)
	l.Paid(ctx, "bot", "u", "s", "ORD-1", time.Time{})
	l.Flush()
	at(24 * time.Hour)
	l.Turn(ctx, "bot", "u", "s", a)
	tests := []struct {
		after time.Duration
		want  []string
	}{
		{47 * time.Hour, []string{"2025-03-01T10:00:00Z", "2025-03-02T10:00:00Z"}},
		{48 * time.Hour, []string{"2025-03-02T10:00:00Z"}},
		{72 * time.Hour, nil},
	}
	for _, tc := range tests {
		at(tc.after)
		s := l.Stats()
		var got []string
		for _, h := range s.Series {
			got = append(got, h.Hour)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s on: series %+v; want the hours %v", tc.after, s.Series, tc.want)
		}
		if s.Turns != 2 || s.PaidOrders != 1 {
			t.Errorf("%s on: %d turns, %d paid orders in total; want 2, 1 (the totals keep every hour)", tc.after, s.Turns, s.PaidOrders)
		}
	}
}

// TestSeriesAfterTheClockStepsBack: the series is the current hour and the
// 47 before, also once the clock stepped back (NTP correcting a clock that
// ran ahead, a VM restored from a snapshot). The hours the wrong clock
// filed ahead of the corrected one stayed in the series, after the current
// hour, until the clock passed them by 48 h (the console's chart drew them
// as its latest hours), and the turns and orders of those real hours were
// added to them again as the clock caught up. The totals keep every turn.
func TestSeriesAfterTheClockStepsBack(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		step time.Duration // how far the clock ran ahead before it was set back to t0
		want []string
	}{
		{"an hour ahead", time.Hour, []string{"2025-03-01T10:00:00Z"}},
		{"three days ahead", 72 * time.Hour, []string{"2025-03-01T10:00:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := testLedger(t, &memStore{m: map[string]int64{}})
			defer l.Close()
			ctx := context.Background()
			a := l.Round(ctx, "p", "m", Usage{1000, 200, 0, 0})
			l.now = func() time.Time { return t0.Add(tc.step) }
			l.Turn(ctx, "bot", "u", "s", a)
			l.Paid(ctx, "bot", "u", "s", "ORD-1", time.Time{})
			l.Flush()
			l.now = func() time.Time { return t0 }
			l.Turn(ctx, "bot", "u", "s", a)
			s := l.Stats()
			var got []string
			for _, h := range s.Series {
				got = append(got, h.Hour)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("series %+v; want the hours %v (the current hour and those before it)", s.Series, tc.want)
			}
			if s.Turns != 2 || s.PaidOrders != 1 || s.LLMCost != "0.009000" {
				t.Errorf("totals %d turns, %d paid orders, %s; want 2, 1, 0.009000 (the totals keep every hour)", s.Turns, s.PaidOrders, s.LLMCost)
			}
		})
	}
}

// TestSeriesAfterTheClockStepsBackIntoAnHourItHas: the hour a clock that
// ran ahead filed is dropped as soon as the clock is set back, also when
// the hour it is set back into has its bucket already (a step of minutes
// across an hour's start), so that no bucket is made and nothing dropped.
// Kept until the stats were read, the real hour's turns and orders were
// added to the ones the wrong clock filed there.
func TestSeriesAfterTheClockStepsBackIntoAnHourItHas(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	l := testLedger(t, &memStore{m: map[string]int64{}})
	defer l.Close()
	ctx := context.Background()
	a := l.Round(ctx, "p", "m", Usage{1000, 200, 0, 0})
	for _, at := range []time.Duration{0, time.Hour, 10 * time.Minute, 40 * time.Minute} {
		// 10:30, 11:30 (ahead), 10:40 (set back), 11:10 (the real 11:00 hour)
		l.now = func() time.Time { return t0.Add(at) }
		l.Turn(ctx, "bot", "u", "s", a)
		l.Paid(ctx, "bot", "u", "s", "ORD-"+at.String(), time.Time{})
		l.Flush()
	}
	s := l.Stats()
	want := []HourStats{
		{Hour: "2025-03-01T10:00:00Z", Turns: 2, LLMCost: "0.009000", PaidOrders: 2},
		{Hour: "2025-03-01T11:00:00Z", Turns: 1, LLMCost: "0.004500", PaidOrders: 1},
	}
	var got []HourStats
	for _, h := range s.Series {
		h.CostPerTransaction = nil
		got = append(got, h)
	}
	if !slices.Equal(got, want) {
		t.Errorf("series %+v; want %+v (the 11:00 hour holds the real 11:00 hour's turn and order only)", got, want)
	}
	if s.Turns != 4 || s.PaidOrders != 4 {
		t.Errorf("totals %d turns, %d paid orders; want 4, 4 (the totals keep every hour)", s.Turns, s.PaidOrders)
	}
}

// TestPaidFiledUnderItsPaymentHour: a paid order counts in the hour WeChat
// Pay says it was paid, within the hours kept; a time it did not give, or
// one ahead of this replica's clock, is now; one before the hours kept
// counts in the totals only.
func TestPaidFiledUnderItsPaymentHour(t *testing.T) {
	now := time.Date(2025, 3, 1, 11, 3, 0, 0, time.UTC)
	tests := []struct {
		name   string
		paidAt time.Time
		want   []string // the hours with a paid order
	}{
		{"paid in the hour before its notification", time.Date(2025, 3, 1, 18, 58, 0, 0, time.FixedZone("CST", 8*3600)), []string{"2025-03-01T10:00:00Z"}},
		{"paid this hour", now.Add(-time.Minute), []string{"2025-03-01T11:00:00Z"}},
		{"no time given", time.Time{}, []string{"2025-03-01T11:00:00Z"}},
		{"ahead of this clock", now.Add(2 * time.Hour), []string{"2025-03-01T11:00:00Z"}},
		{"the oldest hour kept", now.Add(-47 * time.Hour), []string{"2025-02-27T12:00:00Z"}},
		{"before the hours kept", now.Add(-48 * time.Hour), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := testLedger(t, &memStore{m: map[string]int64{}})
			defer l.Close()
			l.now = func() time.Time { return now }
			ctx := context.Background()
			l.Turn(ctx, "bot", "u", "s", l.Round(ctx, "p", "m", Usage{1000, 200, 0, 0}))
			l.Paid(ctx, "bot", "u", "s", "ORD-1", tc.paidAt)
			l.Flush()
			s := l.Stats()
			var got []string
			turns := 0 // in the current hour, which a late payment's bucket must not drop
			for _, h := range s.Series {
				if h.Hour == "2025-03-01T11:00:00Z" {
					turns += int(h.Turns)
				}
				if h.PaidOrders > 0 {
					got = append(got, h.Hour)
					if h.PaidOrders != 1 || h.CostPerTransaction == nil || *h.CostPerTransaction != "0.004500" {
						t.Errorf("hour %+v; want 1 paid order at 0.004500", h)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("paid order filed under %v; want %v", got, tc.want)
			}
			if turns != 1 {
				t.Errorf("series %+v: %d turns in the current hour 2025-03-01T11:00:00Z; want 1", s.Series, turns)
			}
			if s.PaidOrders != 1 || s.CostPerTransaction == nil || *s.CostPerTransaction != "0.004500" {
				t.Errorf("totals %d paid, %v per transaction; want 1 at 0.004500 (the totals keep every hour)", s.PaidOrders, s.CostPerTransaction)
			}
		})
	}
}

// TestAmountsAreExact: the stats' amounts are exact decimals, at least six
// places and as many more (up to twelve, a pico-unit) as the amount has.
// They were cut at six places: a cheap model's cost per transaction below a
// millionth read 0.000000, and 0.0000019 read 0.000001, half its value.
// A cost per transaction that does not divide evenly is rounded half-up
// at the twelfth place (it was cut: 2 pico-units over 3 orders read 0).
func TestAmountsAreExact(t *testing.T) {
	for _, tc := range []struct {
		p    Pico
		want string
	}{
		{0, "0.000000"},
		{1, "0.000000000001"},
		{1_900_000, "0.0000019"},
		{4_500_000_000, "0.004500"},
		{4_500_000_001, "0.004500000001"},
		{1_000_000_000_000, "1.000000"},
		{maxRoundCost, "10000.000000"},
		{-1_900_000, "-0.0000019"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("Pico(%d).String() = %s; want %s", int64(tc.p), got, tc.want)
		}
	}

	cfg, err := config.Parse([]byte(`
providers:
  - name: p
    base_url: http://x
    prices: {cheap: {input: "0.10", output: "0.000002"}}
models: [{name: m, targets: [{provider: p, model: cheap}]}]
`), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name               string
		usage              Usage
		orders             int
		cost, perTx, model string
	}{
		// 19 prompt tokens at 0.10 per million: 0.0000019.
		{"below a millionth", Usage{19, 0, 0, 0}, 1, "0.0000019", "0.0000019", "0.0000019"},
		// 1 completion token at 0.000002 per million: 2 pico-units, over 3 orders.
		{"a pico-unit's share rounded half-up", Usage{0, 1, 0, 0}, 3, "0.000000000002", "0.000000000001", "0.000000000002"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(cfg, &memStore{m: map[string]int64{}}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			l.Turn(ctx, "bot", "u", "s", l.Round(ctx, "p", "cheap", tc.usage))
			for i := range tc.orders {
				l.Paid(ctx, "bot", "u", "s", fmt.Sprintf("ORD-%d", i), time.Time{})
			}
			l.Flush()
			s := l.Stats()
			if s.LLMCost != tc.cost || s.TransactionCost != tc.cost {
				t.Errorf("LLM cost %s, of paying turns %s; want %s", s.LLMCost, s.TransactionCost, tc.cost)
			}
			if s.CostPerTransaction == nil || *s.CostPerTransaction != tc.perTx {
				t.Errorf("cost per transaction %s; want %s", orNull(s.CostPerTransaction), tc.perTx)
			}
			if len(s.Series) != 1 || s.Series[0].LLMCost != tc.cost || orNull(s.Series[0].CostPerTransaction) != tc.perTx {
				t.Errorf("series %+v; want one hour costing %s, %s per transaction", s.Series, tc.cost, tc.perTx)
			}
			if len(s.ByModel) != 1 || s.ByModel[0].LLMCost != tc.model {
				t.Errorf("by model %+v; want %s", s.ByModel, tc.model)
			}
		})
	}
}

// orNull is *p, or "null" for nil, as the stats' JSON has it.
func orNull(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

// TestHugeCostsDoNotWrap: a provider's (or a relay's) usage may count up to
// maxRoundTokens in a round, and at an ordinary price such a round costs
// maxRoundCost, ten thousand units. The ledger's sums of such rounds were
// plain int64 additions: after some 900 of them the LLM spend in the stats
// went negative, and a conversation's kept cost wrapped too (in the
// writer's batch and in the embedded store), so its paid order handed
// Prometheus a negative cost, whose counter panics: the writer's panic
// ended the whole process, payments and all. Sums now stop at the largest
// amount, and a conversation's cost taken from the store is never
// negative.
func TestHugeCostsDoNotWrap(t *testing.T) {
	for _, driver := range append(testdrivers.Names(t), "memory") {
		t.Run(driver, func(t *testing.T) {
			var st SessionStore = &memStore{m: map[string]int64{}}
			if driver != "memory" {
				st = testdrivers.NewPlace(t, driver, nil).Open()
			}
			l := testLedger(t, st)
			defer l.Close()
			ctx := context.Background()
			const turns = 1000
			for range turns {
				c := l.Round(ctx, "p", "m", Usage{PromptTokens: maxRoundTokens - 1})
				if c != maxRoundCost {
					t.Fatalf("a round of %d prompt tokens at 2.50 cost %s; want the cap %s", maxRoundTokens-1, c, maxRoundCost)
				}
				l.Turn(ctx, "bot", "u", "s", c)
			}
			l.Paid(ctx, "bot", "u", "s", "ORD-HUGE", time.Time{})
			l.Flush()
			s := l.Stats()
			for name, v := range map[string]string{"llm_cost": s.LLMCost, "transaction_llm_cost": s.TransactionCost, "series llm_cost": s.Series[0].LLMCost,
				"by_model llm_cost": s.ByModel[0].LLMCost} {
				if strings.HasPrefix(v, "-") {
					t.Errorf("%s = %s after %d rounds of %s; want no wrap below zero", name, v, turns, maxRoundCost)
				}
			}
			if s.PaidOrders != 1 {
				t.Errorf("paid orders %d; want 1", s.PaidOrders)
			}
			// The conversation's cost reaches its paid order: a sum that
			// wrapped in the store was taken as 0, the dearest
			// conversation counted as free (Redis refuses the add past
			// the end, so its sum stays near it).
			const atLeast = 900 * maxRoundCost
			if tx, err := strconv.ParseFloat(s.TransactionCost, 64); err != nil || tx < atLeast.Units() {
				t.Errorf("transaction_llm_cost = %s after %d rounds of %s; want at least %s", s.TransactionCost, turns, maxRoundCost, atLeast)
			}
		})
	}
}

// TestCostPerTransactionGaugeAgreesWithStats: paygate_cost_per_transaction
// says what GET /admin/api/stats's cost_per_transaction says. Before this
// replica has counted a paid order (every replica, after every restart)
// the stats say null and the console "—", no figure; the gauge read 0, a
// transaction that cost nothing, and a dashboard's line dropped to 0 at
// each restart. It has no series until there is a figure.
func TestCostPerTransactionGaugeAgreesWithStats(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := testLedgerOn(t, &memStore{m: map[string]int64{}}, reg, io.Discard)
	defer l.Close()
	ctx := context.Background()
	a := l.Round(ctx, "p", "m", Usage{1000, 200, 0, 0})
	l.Turn(ctx, "bot", "u", "s", a)
	l.Flush()
	if s := l.Stats(); s.CostPerTransaction != nil {
		t.Fatalf("stats before a paid order: %s; want null", *s.CostPerTransaction)
	}
	if n := testutil.CollectAndCount(reg, "paygate_cost_per_transaction"); n != 0 {
		t.Errorf("paygate_cost_per_transaction has %d series before a paid order; want none, as the stats say null", n)
	}
	l.Paid(ctx, "bot", "u", "s", "ORD-1", time.Time{})
	l.Flush()
	s := l.Stats()
	if s.CostPerTransaction == nil || *s.CostPerTransaction != a.String() {
		t.Fatalf("stats after the paid order: %v; want %s", s.CostPerTransaction, a)
	}
	want := fmt.Sprintf("# HELP paygate_cost_per_transaction This replica's LLM cost per completed transaction so far (no series before its first).\n"+
		"# TYPE paygate_cost_per_transaction gauge\npaygate_cost_per_transaction %v\n", a.Units())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paygate_cost_per_transaction"); err != nil {
		t.Error(err)
	}
}
