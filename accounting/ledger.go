package accounting

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/store"
)

// Pico is an amount in 10⁻¹² units of the billing currency.
type Pico int64

// picoPerUnit: one currency unit.
const picoPerUnit = 1_000_000_000_000

// String renders the amount exactly, as a decimal with at least six places
// and as many more, up to twelve, as it has ("0.001234", "0.0000019",
// "0.000000000001"): cut at six, a cheap model's cost per transaction
// below a millionth read 0.
func (p Pico) String() string {
	u := uint64(p)
	sign := ""
	if p < 0 {
		sign, u = "-", -u // two's complement: math.MinInt64 too
	}
	frac := strings.TrimRight(fmt.Sprintf("%012d", u%picoPerUnit), "0")
	if len(frac) < 6 {
		frac += strings.Repeat("0", 6-len(frac))
	}
	return fmt.Sprintf("%s%d.%s", sign, u/picoPerUnit, frac)
}

// per is p shared among n (n > 0), rounded half-up to a pico-unit: the cost
// per transaction. p is not negative.
func (p Pico) per(n int64) Pico {
	q, r := p/Pico(n), p%Pico(n)
	if r >= Pico(n)-r { // r ≥ n/2, without n/2's rounding
		q++
	}
	return q
}

// Units returns the amount as a float, for Prometheus only.
func (p Pico) Units() float64 { return float64(p) / picoPerUnit }

// addPico is a+b for amounts that are not negative, stopping at the
// largest amount rather than wrapping below zero: a round may cost
// maxRoundCost at an ordinary price (a provider's count near
// maxRoundTokens), and under a thousand such rounds pass int64's end.
func addPico(a, b Pico) Pico {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// Usage is one round's token counts, as the provider's usage names them.
// TotalTokens, when the provider sent it, may exceed the other two: xAI
// (Grok) and Gemini's OpenAI-compatible API count a reasoning model's
// thinking there and not in completion_tokens, and bill it as output.
// CachedTokens are the prompt tokens the provider served from its prompt
// cache: a part of PromptTokens, priced at the model's cached_input price.
type Usage struct {
	PromptTokens, CompletionTokens, TotalTokens, CachedTokens int64
}

// price is a model's price per million tokens: prompt tokens (in), those
// of them served from the provider's prompt cache (cached: cached_input,
// else the input price) and completion tokens (out).
type price struct{ inMicros, cachedMicros, outMicros int64 }

// maxRoundTokens bounds a round's count of prompt, cached or completion
// tokens: a count above it is no measure of one call (the largest context
// windows hold a few million tokens) but a provider's or relay's bug, and
// is refused (counted as 0) rather than priced.
const maxRoundTokens = 10_000_000_000

// maxRoundCost caps one round's cost: ten thousand units, a hundred times
// the dearest real round (some hundred thousand tokens at the dearest
// prices). A price set absurdly high reaches it, and so does a count near
// maxRoundTokens at an ordinary price: the ledger's sums stop at int64's
// end (addPico) rather than wrap.
const maxRoundCost Pico = 10_000 * picoPerUnit

// SessionStore keeps a conversation's running cost where every replica sees
// it, as a tally every replica adds to in one atomic step: two replicas
// serving turns of one conversation never lose each other's cost.
// store.Store implements it. AddTallies keeps the turns that queued while
// the writer wrote in one store write. IncrCounter marks a paid order as
// counted, so an order that becomes paid again is not a second transaction.
type SessionStore interface {
	AddTally(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	AddTallies(ctx context.Context, adds []store.TallyAdd, ttl time.Duration) error
	TakeTally(ctx context.Context, key string) (int64, error)
	IncrCounter(ctx context.Context, key string, ttl time.Duration) (int64, error)
}

// sessionTTL bounds how long an abandoned conversation's cost is kept.
const sessionTTL = 30 * 24 * time.Hour

// countedTTL is how long a paid order's "counted" mark is kept: longer than
// WeChat Pay's refund window (a year), within which a refund that fails or
// a review settled as paid puts the order back in paid.
const countedTTL = 400 * 24 * time.Hour

// modelKey names an upstream model of a provider.
type modelKey struct{ provider, model string }

// Ledger prices rounds and attributes conversation costs to paid orders.
type Ledger struct {
	prices map[modelKey]price
	store  SessionStore
	log    *slog.Logger
	now    func() time.Time

	tokens     *prometheus.CounterVec
	cost       *prometheus.CounterVec
	completed  prometheus.Counter
	txCost     prometheus.Counter
	perTxGauge *perTxCollector
	dropped    prometheus.Counter

	// Turns dropped since the last log line about it, and that line's
	// pace: the first drop, then at most once every dropLogEvery.
	dropsUnlogged atomic.Int64
	dropLog       rate.Sometimes

	mu     sync.Mutex
	totals bucket
	hours  map[int64]*bucket // unix hour → bucket, the last hoursKept kept
	newest int64             // the latest hour in hours (keepHours)
	models map[modelKey]*modelTotals

	// Conversation costs are kept in the store by one writer, in the order
	// turns and payments happen on this replica: a turn never waits for the
	// store (its answer's end would, for SDKs that read to the end of the
	// body), and a payment takes the turns accounted before it. Across
	// replicas the store's atomic tally keeps every turn. Nothing but Flush
	// waits for room in the queue (see session). Close drains the queue.
	sessMu      sync.RWMutex // held for reading while handing an op over; Close takes it
	sessClosed  bool
	sessOps     chan sessionOp
	sessWaiting sync.WaitGroup // payments and flushes waiting for room in sessOps
	sessDone    chan struct{}
}

// sessionOp is one change to a conversation's kept cost: add to it (a
// turn), or, for a paid order (paid), take it over and start again at zero.
// done, when set, is closed once the op is carried out (Flush).
type sessionOp struct {
	key       string
	add       Pico
	paid      bool
	paidOrder string
	paidAt    time.Time // when WeChat Pay says the order was paid
	done      chan struct{}
}

// sessionOpTimeout bounds one store operation of the writer, which runs
// outside any request.
const sessionOpTimeout = 10 * time.Second

// sessionQueue is how many conversation-cost changes may wait for the
// writer. A store that stopped answering (each write waits
// sessionOpTimeout) fills it under load; see session for what happens then.
const sessionQueue = 1024

// sessionBatch is how many queued ops the writer takes at once: the turns
// among them are kept in one store write (an embedded store's write waits
// for the disk, a Redis write for a round trip).
const sessionBatch = 256

// dropLogEvery: the log tells of turns' costs dropped on a full queue once
// for a burst, then at most once this often (the metric counts each).
const dropLogEvery = time.Minute

type bucket struct {
	turns      int64
	cost       Pico // all LLM spend
	paidOrders int64
	txCost     Pico // spend of the sessions that ended in a paid order
}

type modelTotals struct {
	Provider, Model                        string
	PromptTokens, Completion, CachedPrompt int64
	Cost                                   Pico

	// The pair's metric series, resolved once (a label lookup per round
	// hashes the labels and takes the vector's lock).
	promptC, completionC, cachedC, costC prometheus.Counter

	// warned: the kinds of usage Round logged about for the pair.
	warned roundWarnings
}

// New builds a Ledger from the providers' price tables.
func New(cfg *config.Config, st SessionStore, reg prometheus.Registerer, log *slog.Logger) (*Ledger, error) {
	l := &Ledger{
		prices: map[modelKey]price{}, store: st, log: log, now: time.Now,
		hours: map[int64]*bucket{}, models: map[modelKey]*modelTotals{},
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_llm_tokens_total", Help: "Tokens used by upstream rounds, by provider, upstream model and kind (prompt, completion; cached_prompt: the prompt tokens, counted in prompt too, that the provider served from its prompt cache).",
		}, []string{"provider", "model", "kind"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paygate_llm_cost_total", Help: "LLM spend of upstream rounds in the providers' billing currency, by provider and upstream model (providers[].prices).",
		}, []string{"provider", "model"}),
		completed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paygate_transactions_completed_total", Help: "Orders paid: completed transactions.",
		}),
		txCost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paygate_transaction_llm_cost_total", Help: "LLM spend of the conversations that ended in a paid order; divide by paygate_transactions_completed_total for the cost per completed transaction.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paygate_accounting_dropped_total", Help: "Turns whose cost was not added to their conversation because the queue of conversation-cost writes was full (the store not answering): a later paid order of the conversation does not carry it. The turn still counts in the LLM spend.",
		}),
		dropLog: rate.Sometimes{Interval: dropLogEvery},
	}
	l.perTxGauge = &perTxCollector{l: l, desc: prometheus.NewDesc("paygate_cost_per_transaction",
		"This replica's LLM cost per completed transaction so far (no series before its first).", nil, nil)}
	for _, p := range cfg.Providers {
		for model, pr := range p.Prices {
			cached := pr.CachedInput.Micros
			if pr.CachedInput.IsZero() {
				cached = pr.Input.Micros // unset: the input price, as before cached_input
			}
			l.prices[modelKey{p.Name, model}] = price{inMicros: pr.Input.Micros, cachedMicros: cached, outMicros: pr.Output.Micros}
		}
	}
	for _, c := range []prometheus.Collector{l.tokens, l.cost, l.completed, l.txCost, l.perTxGauge, l.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering accounting metrics: %w", err)
		}
	}
	if st != nil {
		l.sessOps, l.sessDone = make(chan sessionOp, sessionQueue), make(chan struct{})
		go l.writeSessions()
	}
	return l, nil
}

// Round records one upstream round's tokens and returns its cost. Tokens
// of the total beyond prompt and completion are completion tokens, and the
// cached prompt tokens are priced at the model's cached_input price, the
// other prompt tokens at its input price (see Usage). A model with no
// configured price costs 0 (its tokens are still counted); the first round
// with tokens of each such provider and model is logged, since a price
// missing or misspelt (config warns of a price no target uses) otherwise
// leaves the spend short without a word.
//
// The counts are the provider's, and a provider's bug must not cost the
// answer it came with: a negative count (Prometheus panics on a counter
// that would decrease) is taken as 0, and so is a count above
// maxRoundTokens; more cached tokens than prompt tokens are as many as the
// prompt tokens (none is priced twice); a cost past maxRoundCost (an int64
// overflow made it negative) is capped there. Each is logged once per
// provider and model, with ctx, the request's: its id
// (logging.WithRequestID) lets an operator find the answer whose counts
// the provider got wrong.
func (l *Ledger) Round(ctx context.Context, provider, model string, u Usage) Pico {
	key := modelKey{provider, model} // a struct key: no string built per round
	p, priced := l.prices[key]
	in, inOK := tokenCount(u.PromptTokens)
	out, outOK := tokenCount(u.CompletionTokens)
	if total, ok := tokenCount(u.TotalTokens); ok && inOK && outOK && in > 0 && total > in+out {
		// Output counted only in the total (thinking, see Usage) is
		// output: priced at nothing, it left a reasoning model's spend
		// several times short. A total alone (an embeddings answer that
		// names nothing else) says nothing of output.
		out = total - in
	}
	cached, cachedOK := tokenCount(u.CachedTokens)
	var warn roundWarnings
	if cached > in {
		// Cached tokens are a part of the prompt tokens at every provider
		// paygate reads them from; more is a bug of the provider's counts.
		cached = in
		warn |= warnCached
	}
	c, exact := roundCost(in-cached, p.inMicros, cached, p.cachedMicros, out, p.outMicros)
	if !inOK || !outOK || !cachedOK {
		warn |= warnCounts
	}
	if !exact {
		warn |= warnCost
	}
	if !priced && in+out > 0 {
		warn |= warnUnpriced
	}
	l.mu.Lock()
	m := l.modelTotals(key)
	m.PromptTokens += in
	m.Completion += out
	m.CachedPrompt += cached
	m.Cost = addPico(m.Cost, c)
	warn &^= m.warned // each kind once per provider and model
	m.warned |= warn
	l.mu.Unlock()
	m.promptC.Add(float64(in))
	m.completionC.Add(float64(out))
	m.cachedC.Add(float64(cached))
	m.costC.Add(c.Units())
	if warn != 0 {
		l.warnRound(ctx, provider, model, u, warn)
	}
	return c
}

// modelTotals returns the totals of the provider and model, made on its
// first round. l.mu must be held.
func (l *Ledger) modelTotals(key modelKey) *modelTotals {
	m := l.models[key]
	if m == nil {
		m = &modelTotals{Provider: key.provider, Model: key.model,
			promptC:     l.tokens.WithLabelValues(key.provider, key.model, "prompt"),
			completionC: l.tokens.WithLabelValues(key.provider, key.model, "completion"),
			cachedC:     l.tokens.WithLabelValues(key.provider, key.model, "cached_prompt"),
			costC:       l.cost.WithLabelValues(key.provider, key.model)}
		l.models[key] = m
	}
	return m
}

// Unmetered records an upstream round that answered whole but reported no
// usage at all (a relay that drops it, a server that ignores
// stream_options.include_usage), or one without prompt and completion
// tokens (every count 0, or a total alone, which Round does not price), as
// no answer costs: its cost is unknown and counts as 0, so
// the first such round of each provider and model is logged, with ctx, the
// request's. Like a missing price, it otherwise left the LLM spend and the
// cost per completed transaction short without a word. A round cut short
// is not unmetered: its usage never came.
func (l *Ledger) Unmetered(ctx context.Context, provider, model string) {
	if l.firstWarning(provider, model, warnNoUsage) {
		l.log.WarnContext(ctx, "accounting: the provider's answer reported no usage (none, or no prompt or completion tokens), so its tokens are not counted and cost 0; "+
			"check that the provider (or the relay before it) returns usage, on streams with stream_options.include_usage (logged once for this provider and model)",
			"provider", provider, "target", model)
	}
}

// UsageCut records an upstream stream that finished its answer but was cut
// (its connection lost, an error event) before the usage chunk that was to
// follow, with no usage before it: its cost is unknown and counts as 0, as
// an Unmetered round's. It is logged as what it is, once per provider and
// model, with cause: told to check stream_options.include_usage, the
// operator of a provider that does send usage changed a setting that was
// right.
func (l *Ledger) UsageCut(ctx context.Context, provider, model string, cause error) {
	if l.firstWarning(provider, model, warnUsageCut) {
		l.log.WarnContext(ctx, "accounting: the provider's stream ended before its usage chunk: it was cut after the answer's finish, so its tokens are not counted and cost 0 (logged once for this provider and model)",
			"provider", provider, "target", model, "err", cause)
	}
}

// firstWarning reports whether kind has not been warned of yet for provider
// and model, and notes it: each kind of warning is logged once for them.
func (l *Ledger) firstWarning(provider, model string, kind roundWarnings) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.modelTotals(modelKey{provider, model})
	first := m.warned&kind == 0
	m.warned |= kind
	return first
}

// roundWarnings are the kinds of a provider's usage Round (and Unmetered)
// logs about, once per provider and model (modelTotals.warned).
type roundWarnings uint8

const (
	warnCounts   roundWarnings = 1 << iota // a count negative or above maxRoundTokens
	warnCost                               // a cost capped at maxRoundCost
	warnUnpriced                           // tokens of a model without a price
	warnCached                             // more cached prompt tokens than prompt tokens
	warnNoUsage                            // an answer without usage (Unmetered)
	warnUsageCut                           // a stream cut before its usage (UsageCut)
)

func (l *Ledger) warnRound(ctx context.Context, provider, model string, u Usage, warn roundWarnings) {
	if warn&warnUnpriced != 0 {
		l.log.WarnContext(ctx, "accounting: the provider's model has no price, so its tokens cost 0; add it to the provider's prices (logged once for this provider and model)",
			"provider", provider, "target", model)
	}
	if warn&warnCounts != 0 {
		l.log.WarnContext(ctx, fmt.Sprintf("accounting: the provider's usage has a token count that is negative or more than %d; counted as 0 (logged once for this provider and model)", maxRoundTokens),
			"provider", provider, "target", model, "prompt_tokens", u.PromptTokens, "completion_tokens", u.CompletionTokens, "cached_tokens", u.CachedTokens)
	}
	if warn&warnCached != 0 {
		l.log.WarnContext(ctx, "accounting: the provider's usage has more cached prompt tokens than prompt tokens; every prompt token is priced as cached (logged once for this provider and model)",
			"provider", provider, "target", model, "prompt_tokens", u.PromptTokens, "cached_tokens", u.CachedTokens)
	}
	if warn&warnCost != 0 {
		l.log.WarnContext(ctx, "accounting: a round's cost at the configured prices is past "+maxRoundCost.String()+" and is capped there; check providers[].prices (logged once for this provider and model)",
			"provider", provider, "target", model, "prompt_tokens", u.PromptTokens, "completion_tokens", u.CompletionTokens)
	}
}

// tokenCount is a provider's count as Round takes it, and whether it was
// taken as sent: a negative count, or one above maxRoundTokens, is 0.
func tokenCount(n int64) (int64, bool) {
	if n < 0 || n > maxRoundTokens {
		return 0, false
	}
	return n, true
}

// roundCost is in tokens at inMicros plus cached tokens at cachedMicros
// plus out tokens at outMicros (per million tokens: a token at a micro-unit
// per million is a pico-unit), and whether it is exact: a cost past
// maxRoundCost, int64 overflow included, is maxRoundCost. The counts and
// prices are not negative.
func roundCost(in, inMicros, cached, cachedMicros, out, outMicros int64) (Pico, bool) {
	var sum uint64
	for _, t := range [3][2]int64{{in, inMicros}, {cached, cachedMicros}, {out, outMicros}} {
		hi, lo := bits.Mul64(uint64(t[0]), uint64(t[1]))
		var carry uint64
		sum, carry = bits.Add64(sum, lo, 0)
		if hi != 0 || carry != 0 || sum > uint64(maxRoundCost) {
			return maxRoundCost, false
		}
	}
	return Pico(sum), true
}

// sessionKey names a conversation's kept cost: the client's (bot's) user's
// session. The session is the bot's name for one of that user's
// conversations (X-Paygate-Session, such as "chat-1"; by default the user's
// OpenID), so it names a conversation only together with the user: two
// users' "chat-1" are two conversations.
func sessionKey(client, user, session string) string {
	return "cost:" + client + "\x00" + user + "\x00" + session
}

// Turn adds a finished turn's cost to its conversation: the client's
// user's session. Accounting never fails a turn: a store error is logged.
// The conversation's kept cost is written by the Ledger's writer, so Turn
// does not wait for the store (the context is not used for that write,
// which outlives the request), nor for room in the writer's queue: a cost
// that finds it full is dropped from its conversation (counted and logged),
// not from the LLM spend.
func (l *Ledger) Turn(_ context.Context, client, user, session string, cost Pico) {
	l.spend(client, user, session, cost, 1)
}

// Spent adds the cost of a turn's rounds so far to its conversation, as Turn
// does, but counts no turn: a turn calls it before it runs a payment call,
// and Turn with the cost of its later rounds when it ends. The order's
// payment may come before the turn ends (a quick user, the simulator's
// pay_after): handed over only at the end, the rounds that made the sale
// were after the payment in the writer's queue, so the transaction counted
// without them and the conversation's next paid order got them.
func (l *Ledger) Spent(_ context.Context, client, user, session string, cost Pico) {
	l.spend(client, user, session, cost, 0)
}

// spend adds cost, and turns turns, to this replica's spend and cost to the
// conversation (Turn, Spent).
func (l *Ledger) spend(client, user, session string, cost Pico, turns int64) {
	l.mu.Lock()
	now := l.now()
	b := l.hour(now, now)
	b.turns += turns
	b.cost = addPico(b.cost, cost)
	l.totals.turns += turns
	l.totals.cost = addPico(l.totals.cost, cost)
	l.mu.Unlock()
	if cost == 0 || l.store == nil || session == "" {
		// A turn without a user has no conversation whose cost a paid
		// order could take over: nothing to keep (and no store write per
		// request).
		return
	}
	if !l.session(sessionOp{key: sessionKey(client, user, session), add: cost}) {
		l.dropTurn()
	}
}

// dropTurn counts a turn's cost dropped on a full queue, and logs it once
// for a burst, then at most every dropLogEvery with the count since: a
// store that stopped answering under load drops a cost per turn.
func (l *Ledger) dropTurn() {
	l.dropped.Inc()
	l.dropsUnlogged.Add(1)
	l.dropLog.Do(func() {
		l.log.Warn("accounting: the queue of conversation costs is full (the store is not answering); turns' costs are dropped from their conversations, "+
			"whose next paid orders will not carry them (paygate_accounting_dropped_total counts them; logged at most once a minute)",
			"dropped", l.dropsUnlogged.Swap(0))
	})
}

// Call adds the cost of an upstream call that is no turn (a forwarded
// embeddings or Responses API call, priced by Round) to this replica's LLM
// spend: it counts no turn and belongs to no conversation.
func (l *Ledger) Call(cost Pico) {
	if cost == 0 {
		return
	}
	l.mu.Lock()
	now := l.now()
	b := l.hour(now, now)
	b.cost = addPico(b.cost, cost)
	l.totals.cost = addPico(l.totals.cost, cost)
	l.mu.Unlock()
}

// session hands op to the writer, or carries it out here once the Ledger
// is closed. Only a Flush waits for room in the queue. With the queue full
// (the store not answering: each write waits sessionOpTimeout), a turn's op
// is dropped (session reports false), and a payment's, which counts a
// completed transaction, is handed over by a goroutine of its own that
// waits for room: a sender waiting on a full channel is served first as
// room frees, so the payment still comes after the turns queued before it
// and before any turn queued after its goroutine began waiting (those, in
// the meantime, find the queue full). Close waits for these goroutines.
func (l *Ledger) session(op sessionOp) bool {
	l.sessMu.RLock()
	if l.sessClosed {
		l.sessMu.RUnlock()
		l.apply(op)
		return true
	}
	select {
	case l.sessOps <- op:
		l.sessMu.RUnlock()
		return true
	default:
	}
	if !op.paid && op.done == nil {
		l.sessMu.RUnlock()
		return false
	}
	// Close does not close sessOps under a waiting sender: it waits for
	// sessWaiting first, so the wait needs no lock held (a lock held would
	// hold Close, and behind it every Turn, as long as the store).
	l.sessWaiting.Add(1)
	l.sessMu.RUnlock()
	if op.done != nil {
		defer l.sessWaiting.Done()
		l.sessOps <- op // Flush waits in any case
		return true
	}
	// A payment waits for room on its own goroutine. Once it waits it is
	// served before later senders, so it follows the turns queued before it;
	// a turn that takes a freed slot in the moment before it waits (only with
	// the queue full, a store write apart) is counted in this payment.
	go func() {
		defer l.sessWaiting.Done()
		l.sessOps <- op
	}()
	return true
}

// writeSessions is the one writer of conversation costs. It takes what
// queued while it wrote, up to sessionBatch ops, and keeps their turns'
// costs in one store write: one write per turn held the conversations kept
// to the store's writes a second (about 2,800 on the embedded store, whose
// every transaction waits for the disk), and the queue dropped the rest.
func (l *Ledger) writeSessions() {
	defer close(l.sessDone)
	ops := make([]sessionOp, 0, sessionBatch)
	var w batchWriter
	for op := range l.sessOps {
		ops = append(ops[:0], op)
	more:
		for len(ops) < sessionBatch {
			select {
			case op, ok := <-l.sessOps:
				if !ok {
					break more
				}
				ops = append(ops, op)
			default:
				break more
			}
		}
		for _, op := range ops {
			if op.paid || op.done != nil {
				// A payment takes the turns before it, and a flush
				// waits for them: they are written first.
				l.writeAdds(&w)
				l.apply(op)
				continue
			}
			w.add(op.key, int64(op.add))
		}
		l.writeAdds(&w)
	}
}

// batchWriter gathers turns' costs for one store write, a conversation's
// turns summed.
type batchWriter struct {
	adds []store.TallyAdd
	at   map[string]int // key → index in adds
}

func (w *batchWriter) add(key string, delta int64) {
	if i, ok := w.at[key]; ok {
		w.adds[i].Delta = int64(addPico(Pico(w.adds[i].Delta), Pico(delta)))
		return
	}
	if w.at == nil {
		w.at = make(map[string]int, sessionBatch)
	}
	w.at[key] = len(w.adds)
	w.adds = append(w.adds, store.TallyAdd{Key: key, Delta: delta})
}

// writeAdds keeps the gathered costs in one store write and empties w.
func (l *Ledger) writeAdds(w *batchWriter) {
	if len(w.adds) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sessionOpTimeout)
	if err := l.store.AddTallies(ctx, w.adds, sessionTTL); err != nil {
		l.log.Warn("accounting: keeping the conversations' costs", "conversations", len(w.adds), "err", err)
	}
	cancel()
	w.adds = w.adds[:0]
	clear(w.at)
}

func (l *Ledger) apply(op sessionOp) {
	if op.done != nil {
		close(op.done)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sessionOpTimeout)
	defer cancel()
	if op.paid {
		l.applyPaid(ctx, op)
		return
	}
	if _, err := l.store.AddTally(ctx, op.key, int64(op.add), sessionTTL); err != nil {
		l.log.Warn("accounting: keeping the conversation's cost", "err", err)
	}
}

// applyPaid counts a paid order once: the first time it becomes paid. A
// refund WeChat Pay closes (refunding → paid) or a review settled as paid
// puts an order in paid again, and counting it again would add a
// transaction and move the conversation's later turns into it. The mark is
// in the store, so a payment another replica counted is not counted here.
// When the store cannot say, the order is counted: a transaction counted
// twice is the lesser error than a payment not counted.
func (l *Ledger) applyPaid(ctx context.Context, op sessionOp) {
	if op.paidOrder != "" {
		n, err := l.store.IncrCounter(ctx, "paid-counted:"+op.paidOrder, countedTTL)
		if err != nil {
			l.log.Warn("accounting: marking the paid order counted", "order_no", op.paidOrder, "err", err)
		} else if n > 1 {
			return
		}
	}
	var cost int64
	var err error
	if op.key != "" {
		if cost, err = l.store.TakeTally(ctx, op.key); err != nil {
			// Counted 0 here. A take whose write failed leaves the cost
			// for the conversation's next paid order (the embedded store
			// reports the sum its failed write read, which counted here
			// too was counted twice). A Redis take that ran but whose
			// reply and go-redis's retries were all lost took the sum:
			// that cost is under-counted, never counted twice.
			cost = 0
			l.log.Warn("accounting: taking the conversation's cost", "order_no", op.paidOrder, "err", err)
		}
	}
	if cost < 0 {
		// The stores stop a sum at int64's end, so only a sum kept by an
		// earlier version, whose embedded store wrapped it, is negative
		// (a tally lives a month); Prometheus panics on a counter that
		// would decrease, in the writer, which ends the process.
		l.log.Warn("accounting: the conversation's kept cost is negative (its sum passed the largest amount); counted as 0",
			"order_no", op.paidOrder)
		cost = 0
	}
	l.recordPaid(Pico(cost), op.paidAt)
}

// Close waits until every conversation cost and payment handed to the
// writer (a payment waiting for room in its queue among them) is carried
// out; later turns and payments write directly. Call it before closing the
// store.
func (l *Ledger) Close() {
	if l.sessOps == nil {
		return
	}
	l.sessMu.Lock()
	closing := !l.sessClosed
	l.sessClosed = true
	l.sessMu.Unlock()
	if closing {
		l.sessWaiting.Wait() // no sender is left to find sessOps closed
		close(l.sessOps)
	}
	<-l.sessDone
}

// Paid attributes the cost so far of the order's conversation (the
// client's user's session, as Turn was given them) to the paid order (a
// completed transaction) and starts the conversation's count again, once per
// order. paidAt is when WeChat Pay says the order was paid (its
// success_time): the hourly series files the order under that hour (see
// recordPaid), not the hour its notification or query came. It does not wait, not even for room in the writer's queue: the
// payment's notification calls it (through payments.Options.Committed) and
// must be answered quickly (SPEC 2.4), so the writer carries it out after
// the turns handed to it before. A payment is never dropped (a full queue
// drops a turn's cost): it counts a completed transaction. Stats and the
// metrics show it once the writer has (Flush waits for that).
func (l *Ledger) Paid(_ context.Context, client, user, session, orderNo string, paidAt time.Time) {
	if l.store == nil {
		l.recordPaid(0, paidAt)
		return
	}
	op := sessionOp{paid: true, paidOrder: orderNo, paidAt: paidAt}
	if session != "" {
		op.key = sessionKey(client, user, session)
	}
	l.session(op)
}

// Flush waits until every turn and payment handed to the writer before it
// is carried out (with the queue full, for room in it first).
func (l *Ledger) Flush() {
	if l.store == nil {
		return
	}
	done := make(chan struct{})
	l.session(sessionOp{done: done})
	<-done
}

// recordPaid counts one completed transaction that cost cost, paid at
// paidAt. The hourly series files it under paidAt's hour: a notification
// retried, or a payment the reconciler's query found, comes after the hour
// the user paid in. A paidAt that is zero or ahead of this replica's clock
// is now; one before the hours kept counts in the totals only.
func (l *Ledger) recordPaid(cost Pico, paidAt time.Time) {
	l.completed.Inc()
	l.txCost.Add(cost.Units())
	l.mu.Lock()
	now := l.now()
	if paidAt.IsZero() || paidAt.After(now) {
		paidAt = now
	}
	if paidAt.Unix()/3600 > now.Unix()/3600-hoursKept {
		b := l.hour(paidAt, now)
		b.paidOrders++
		b.txCost = addPico(b.txCost, cost)
	}
	l.totals.paidOrders++
	l.totals.txCost = addPico(l.totals.txCost, cost)
	l.mu.Unlock()
}

// perTxCollector is paygate_cost_per_transaction: the stats' cost per
// completed transaction, read from the totals at each scrape, and no
// series before this replica's first paid order, when the stats say null
// (the console "—"). A gauge read 0 then, a transaction that cost
// nothing, at every start of every replica.
type perTxCollector struct {
	l    *Ledger
	desc *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *perTxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *perTxCollector) Collect(ch chan<- prometheus.Metric) {
	c.l.mu.Lock()
	cost, n := c.l.totals.txCost, c.l.totals.paidOrders
	c.l.mu.Unlock()
	if n > 0 {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, cost.per(n).Units())
	}
}

// hoursKept is the hourly series' span: the current hour and the 47
// before.
const hoursKept = 48

// hour returns the bucket of t's hour (t not after now), dropping the
// buckets outside the hours kept as of now (keepHours). l.mu must be held.
//
// A clock set back into an hour that has its bucket makes none, so the
// hours after it are dropped on the step itself (newest): kept until the
// next bucket or the stats, the real hour's turns were added to the ones
// the wrong clock filed there.
func (l *Ledger) hour(t, now time.Time) *bucket {
	h, nowH := t.Unix()/3600, now.Unix()/3600
	b := l.hours[h]
	if b == nil {
		b = &bucket{}
		l.hours[h] = b
		l.keepHours(nowH)
	} else if l.newest > nowH {
		l.keepHours(nowH)
	}
	return b
}

// keepHours drops the buckets outside the hours kept as of unix hour h:
// those older than hoursKept, and those after h. A bucket is made for now
// or a time before it, so one after h was filed by a clock that has since
// stepped back (NTP correcting a clock that ran ahead): kept, it showed in
// the series after the current hour, and the turns of that real hour were
// added to it again once the clock reached it. Its figures stay in the
// totals. l.mu must be held.
func (l *Ledger) keepHours(h int64) {
	l.newest = math.MinInt64
	for k := range l.hours {
		if k <= h-hoursKept || k > h {
			delete(l.hours, k)
		} else {
			l.newest = max(l.newest, k)
		}
	}
}
