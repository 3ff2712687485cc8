package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wxsim"
)

// The cross-talk stress: paygate reuses memory on its hot path (pooled
// bufio readers and writers, the sent log of a plain stream, the h1
// server's held body, views of a body in the interceptors), and a buffer
// one request still held after another took it would put one user's
// conversation, OpenID or order in another's answer or upstream request.
// Many turns run at once, each with its own markers (the text of its
// message, its OpenID, its tool call's arguments, its provider answer),
// through cut streams recovered by another provider, first-token timeouts,
// clients that leave mid-answer, payment calls run against the WeChat Pay
// simulator, and answers far larger than the pooled buffers; every answer,
// every upstream request and every log line must carry one turn's markers alone, and every
// complete answer must be the provider's, byte for byte.

// ctMarker matches every turn's marker.
var ctMarker = regexp.MustCompile(`MK\d{4}x`)

// ctOpenID matches every turn's OpenID.
var ctOpenID = regexp.MustCompile(`oid-\d{4}-z{11}`)

// ctHash matches a user's hash as a provider gets it.
var ctHash = regexp.MustCompile(`u_[0-9a-f]{32}`)

const (
	ctPlain = iota
	ctCut   // provider a cuts the answer after its first bytes; b answers
	ctStall // provider a sends a role and stalls past first_token; b answers
	ctLeave // the client leaves mid-answer
	ctPay   // a create_order call, run against the simulator, then text
	ctCall  // a call of the bot's own tool, its arguments the marker
	ctBig   // deltas larger than every pooled buffer
	ctModes
)

var ctModeNames = [...]string{"plain", "cut", "stall", "leave", "pay", "call", "big"}

// ctTurn is one turn's markers and shape.
type ctTurn struct {
	n      int
	marker string
	openID string
	stream bool
	mode   int
}

func newCTTurn(n int) ctTurn {
	return ctTurn{n: n, marker: fmt.Sprintf("MK%04dx", n), openID: fmt.Sprintf("oid-%04d-zzzzzzzzzzz", n), stream: n%2 == 1, mode: (n / 2) % ctModes}
}

// deltas is the text a provider answers the turn with, piece by piece.
func (c ctTurn) deltas() []string {
	pad := strings.Repeat(string(rune('a'+c.n%26)), 150)
	if c.mode == ctBig {
		pad = strings.Repeat(string(rune('a'+c.n%26)), 70<<10)
	}
	k := 40
	if c.mode == ctBig {
		k = 3
	}
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("[%s part %02d %s]", c.marker, i, pad)
	}
	return out
}

func (c ctTurn) text() string { return strings.Join(c.deltas(), "") }

// ctFixture is the providers, the proxies and what went wrong.
type ctFixture struct {
	mu       sync.Mutex
	problems []string
	leaving  sync.Map // marker → chan struct{}: the provider has the turn of a client about to leave
	sim      *wxsim.Server
	// What the turns went through, so that the test knows it still
	// covers it: prefilled recoveries, stalls, orders, cuts.
	prefills, stalls, orders, cuts atomic.Int32
	keepAlives                     atomic.Int32 // blank lines between a stream's events
}

func (f *ctFixture) problem(format string, args ...any) {
	f.mu.Lock()
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

// only reports the markers and OpenIDs in s that are not the turn's.
func (c ctTurn) foreign(s string) []string {
	var out []string
	for _, m := range ctMarker.FindAllString(s, -1) {
		if m != c.marker {
			out = append(out, m)
		}
	}
	for _, m := range ctOpenID.FindAllString(s, -1) {
		if m != c.openID {
			out = append(out, m)
		}
	}
	own := expectedUserHash("shop-bot", c.openID)
	for _, m := range ctHash.FindAllString(s, -1) {
		if m != own {
			out = append(out, m)
		}
	}
	return out
}

// provider answers as provider name: a cuts, stalls, b answers whole.
func (f *ctFixture) provider(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ms := ctMarker.FindAllString(string(body), -1)
		if len(ms) == 0 {
			f.problem("%s: a request without a marker: %.300s", name, body)
			http.Error(w, "no marker", 400)
			return
		}
		var n int
		fmt.Sscanf(ms[0], "MK%04dx", &n)
		c := newCTTurn(n)
		if bad := c.foreign(string(body)); len(bad) > 0 {
			f.problem("%s: turn %s's upstream request holds %q: %.400s", name, c.marker, bad, body)
		}
		if u := gjson.GetBytes(body, "user").Str; u != expectedUserHash("shop-bot", c.openID) {
			f.problem("%s: turn %s's upstream request names user %q; want %s's hash", name, c.marker, u, c.openID)
		}
		if gjson.GetBytes(body, "model").Str != "vendor/upstream-model" {
			f.problem("%s: turn %s: model %q", name, c.marker, gjson.GetBytes(body, "model").Str)
		}
		toolResult := gjson.GetBytes(body, `messages.#(role=="tool").content`)
		switch {
		case c.mode == ctPay && !toolResult.Exists():
			callsRound(c.stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\",\"quantity\":1}"}}]`)(w, r)
			return
		case c.mode == ctPay:
			f.orders.Add(1)
			no := gjson.Get(toolResult.Str, "order_no").Str
			if tx, ok := f.sim.Order(no); !ok || tx.Payer == nil || tx.Payer.OpenID != c.openID {
				f.problem("turn %s (%s): the order %q of its tool result (%s) is not its own: %+v", c.marker, c.openID, no, toolResult.Str, tx.Payer)
			}
		case c.mode == ctLeave && !c.stream:
			if ch, ok := f.leaving.Load(c.marker); ok {
				close(ch.(chan struct{}))
			}
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
			return
		}
		if c.mode == ctCall {
			args := string(jsonstr.Append(nil, `{"city":"`+c.marker+`"}`))
			callsRound(c.stream, `[{"index":0,"id":"call_w_`+c.marker+`","type":"function","function":{"name":"get_weather","arguments":`+args+`}}]`)(w, r)
			return
		}
		ds := c.deltas()
		if last := gjson.GetBytes(body, "messages.@reverse.0"); last.Get("role").Str == "assistant" && !last.Get("tool_calls").Exists() {
			// A recovery's prefill: the text the client has, which the
			// answer goes on from; after a payment round too (its tool
			// result before the prefill), when a's first token came at
			// its deadline on a loaded host and the timeout cut the
			// stream after what paygate had buffered (25 parts) had
			// reached the client.
			f.prefills.Add(1)
			prefix := last.Get("content").Str
			if !strings.HasPrefix(c.text(), prefix) {
				f.problem("%s: turn %s's prefill is not the start of its answer: %.200s", name, c.marker, prefix)
			}
			rest := strings.TrimPrefix(c.text(), prefix)
			ds = []string{rest[:len(rest)/2], rest[len(rest)/2:]}
		}
		if !c.stream {
			if name == "a" && c.mode == ctCut {
				// Half an answer, then the connection ends.
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", "100000")
				io.WriteString(w, `{"id":"c-`+c.marker+`","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`+ds[0])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			textRound(false, c.text())(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := `data: {"id":"c-` + c.marker + `","object":"chat.completion.chunk","created":1,"model":"m0","choices":`
		if name == "a" && c.mode == ctStall {
			f.stalls.Add(1)
			io.WriteString(w, chunk+`[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}`+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
			return
		}
		for i, d := range ds {
			if name == "a" && c.mode == ctCut && i == len(ds)/2 {
				f.cuts.Add(1)
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			io.WriteString(w, chunk+`[{"index":0,"delta":{"content":`+string(jsonstr.Append(nil, d))+`},"finish_reason":null}]}`+"\n\n")
			if i%4 == 0 {
				w.(http.Flusher).Flush()
			}
		}
		io.WriteString(w, chunk+`[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`+"\n\ndata: [DONE]\n\n")
	}
}

// ctConfig has the model's targets at a, then b, its breaker never opened
// by the cuts, a's first token awaited 300ms.
func ctConfig(t *testing.T, a, b string) *config.Config {
	src := `
clients:
  - {name: shop-bot, key: ` + testClientKey + `}
providers:
  - name: a
    base_url: ` + a + `/v1
    api_key: ` + testProviderKey + `
    timeouts: {first_token: 300ms}
  - name: b
    base_url: ` + b + `/v1
    api_key: ` + testProviderKey + `
    continuation: prefill
models:
  - name: gpt-test
    targets: [{provider: a, model: vendor/upstream-model}, {provider: b, model: vendor/upstream-model}]
failover:
  breaker: {failures: 1000000}
  recovery: {max_attempts: 5}
privacy:
  hash_key: ` + testHashKey + `
`
	cfg, err := config.Parse([]byte(src), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.SSEKeepalive = config.Duration(time.Millisecond)
	return cfg
}

// turn serves c through the proxy at url and checks the answer.
func (f *ctFixture) turn(url string, c ctTurn, payments bool) {
	tools := ""
	if c.mode == ctCall {
		tools = weatherTool
	}
	body := chatBodyWith(c.stream, tools+`"user":"`+c.openID+`",`, `{"role":"user","content":"hello `+c.marker+` from `+c.openID+`"}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("X-WeChat-OpenID", c.openID)
	var left chan struct{}
	if c.mode == ctLeave && !c.stream {
		left = make(chan struct{})
		f.leaving.Store(c.marker, left)
		go func() {
			select {
			case <-left:
			case <-ctx.Done():
			}
			cancel()
		}()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if c.mode == ctLeave && errors.Is(err, context.Canceled) {
			return
		}
		f.problem("turn %s: %v", c.marker, err)
		return
	}
	defer resp.Body.Close()
	var got []byte
	if c.mode == ctLeave {
		// A few events, then gone.
		br := bufio.NewReader(resp.Body)
		for len(got) < 3000 {
			line, err := br.ReadBytes('\n')
			got = append(got, line...)
			if err != nil {
				break
			}
		}
		cancel()
	} else {
		got, err = io.ReadAll(resp.Body)
		if err != nil {
			f.problem("turn %s (%s, stream %v): reading the answer: %v", c.marker, ctModeNames[c.mode], c.stream, err)
		}
	}
	if bad := c.foreign(string(got)); len(bad) > 0 {
		f.problem("turn %s (%s, stream %v): the answer holds %q", c.marker, ctModeNames[c.mode], c.stream, bad)
	}
	if c.stream {
		f.keepAlives.Add(int32(strings.Count(string(got), "\n\n\n")))
	}
	if c.mode == ctLeave {
		return
	}
	if resp.StatusCode != http.StatusOK {
		f.problem("turn %s (%s, stream %v): status %d: %.300s", c.marker, ctModeNames[c.mode], c.stream, resp.StatusCode, got)
		return
	}
	text, calls := ctRead(c.stream, string(got))
	switch c.mode {
	case ctCall:
		if want := `get_weather {"city":"` + c.marker + `"}`; len(calls) != 1 || calls[0] != want {
			f.problem("turn %s (stream %v): calls %q; want %q", c.marker, c.stream, calls, want)
		}
	default:
		if want := c.text(); text != want {
			f.problem("turn %s (%s, stream %v, payments %v): the answer's text (%d bytes) is not the provider's (%d bytes)\n got: %.200s\nwant: %.200s",
				c.marker, ctModeNames[c.mode], c.stream, payments, len(text), len(want), ctFirstDiff(text, want), ctFirstDiff(want, text))
		}
	}
}

// ctRead is an answer's text and its tool calls ("name arguments").
func ctRead(stream bool, body string) (string, []string) {
	if !stream {
		return gjson.Get(body, "choices.0.message.content").Str, botCalls(false, body)
	}
	var b strings.Builder
	for _, line := range strings.Split(body, "\n") {
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		b.WriteString(gjson.Get(d, "choices.0.delta.content").Str)
	}
	return b.String(), botCalls(true, body)
}

// ctFirstDiff is s from a little before where it leaves t.
func ctFirstDiff(s, t string) string {
	i := 0
	for i < len(s) && i < len(t) && s[i] == t[i] {
		i++
	}
	return s[max(0, i-40):]
}

func TestConcurrentTurnsKeepTheirOwnBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("stress")
	}
	f := &ctFixture{}
	pa := newFakeProvider(t, f.provider("a"))
	pb := newFakeProvider(t, f.provider("b"))
	st, sim, svc := premiumSimPayments(t)
	f.sim = sim
	cfg := ctConfig(t, pa.URL, pb.URL)
	// Two proxies: one without payment tools (a plain stream's relay,
	// streamRound), one with them (the turn loop).
	logs := &logtest.Buffer{}
	_, plain := servePaygate(t, cfg, Options{Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets())}, nil)
	payCfg := ctConfig(t, pa.URL, pb.URL)
	_, withPay := servePaygate(t, payCfg, Options{Tools: simTools(svc), State: st, Reconciler: svc, UserPayments: svc,
		Logger: logging.New(logs, slog.LevelDebug, payCfg.Secrets())}, nil)

	const turns = 280
	work := make(chan int)
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				c := newCTTurn(n)
				if c.mode == ctPay || n%3 == 0 {
					f.turn(withPay, c, true)
				} else {
					f.turn(plain, c, false)
				}
			}
		}()
	}
	for n := range turns {
		work <- n
	}
	close(work)
	wg.Wait()
	// No log line names two turns' markers, OpenIDs or user hashes.
	turnOf := map[string]int{}
	for n := range turns {
		c := newCTTurn(n)
		turnOf[c.marker], turnOf[c.openID], turnOf[expectedUserHash("shop-bot", c.openID)] = n, n, n
	}
	lines := strings.Split(logs.String(), "\n")
	for _, line := range lines {
		seen := map[int]bool{}
		for _, re := range []*regexp.Regexp{ctMarker, ctOpenID, ctHash} {
			for _, m := range re.FindAllString(line, -1) {
				seen[turnOf[m]] = true
			}
		}
		if len(seen) > 1 {
			f.problem("a log line names %d turns: %.400s", len(seen), line)
		}
	}
	if f.prefills.Load() == 0 || f.stalls.Load() == 0 || f.orders.Load() == 0 || f.cuts.Load() == 0 {
		t.Errorf("the turns did not go through everything: %d prefilled recoveries, %d stalls, %d orders, %d cut streams",
			f.prefills.Load(), f.stalls.Load(), f.orders.Load(), f.cuts.Load())
	}
	t.Logf("%d prefilled recoveries, %d stalls, %d orders, %d cut streams, %d keep-alives, %d log lines", f.prefills.Load(), f.stalls.Load(), f.orders.Load(), f.cuts.Load(), f.keepAlives.Load(), len(lines))
	for i, p := range f.problems {
		if i == 20 {
			t.Errorf("… and %d more", len(f.problems)-20)
			break
		}
		t.Error(p)
	}
}
