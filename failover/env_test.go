package failover

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonscan"
)

// Test timeouts: short enough to keep the suite fast, long enough for -race.
// first_byte, first_token and idle are a second: every healthy fake's
// answer (dial, request, head, first token, each next event) must come
// within them, and at 300ms a loaded two-core CI machine under -race, whose
// stalls reach hundreds of ms, had too little room (the timeouts under test
// scale with them; the tests that pace a provider raise what they do not
// test).
const (
	tFirstByte  = time.Second
	tFirstToken = time.Second
	tIdle       = time.Second
	tTotal      = 5 * time.Second
	// slack bounds how much longer than a timeout an attempt may take. It
	// tells the timeout under test from the next one that could end the
	// round instead (an idle allowance of 2s, the total of 5s), and leaves
	// room for a loaded two-core CI machine under -race, where 250ms was
	// seen to be too little.
	slack = time.Second
	// roundShare is a silent non-stream attempt's share of a round of
	// twice it with one target after it (Router.nonStreamWait). The
	// attempt's one timer, due at the share, that fires once the round's
	// time is spent too ends the round (deadlines.check: the round's
	// time first), not the attempt: with shares of 150ms and 300ms it
	// fired that late under -race on a loaded host, and the round was a
	// 504 ("no provider answered: a: upstream_round_timeout"), the next
	// target never asked. A timer late by the share is as unlikely as
	// one late by slack.
	roundShare = time.Second
)

// env is a Router over fake providers a, b and c with a fake clock.
type env struct {
	clock *fakeClock
	r     *Router
	fakes map[string]*fakeProvider
	logs  *logtest.Buffer
}

func testConfig(urls map[string]string, targets []string) *config.Config {
	cfg := &config.Config{}
	for _, name := range []string{"a", "b", "c"} {
		u, ok := urls[name]
		if !ok {
			continue
		}
		cfg.Providers = append(cfg.Providers, config.Provider{
			Name: name, BaseURL: u, APIKey: "key-" + name, Continuation: "none",
			Timeouts: config.Timeouts{
				Connect:    config.Duration(time.Second),
				FirstByte:  config.Duration(tFirstByte),
				FirstToken: config.Duration(tFirstToken),
				Idle:       config.Duration(tIdle),
				Total:      config.Duration(tTotal),
			},
		})
	}
	m := config.Model{Name: "gpt", Strategy: "priority"}
	for _, t := range targets {
		m.Targets = append(m.Targets, config.Target{Provider: t, Model: "up-" + t, Weight: 1})
	}
	cfg.Models = []config.Model{m}
	cfg.Failover = config.Failover{
		MaxAttempts:       4,
		RetryAfterMaxWait: config.Duration(5 * time.Second),
		MaxRoundTime:      config.Duration(60 * time.Second),
		Breaker:           config.Breaker{Failures: 5, Cooldown: config.Duration(30 * time.Second)},
	}
	return cfg
}

// newEnv starts a fake provider per script (nil: that provider answers a
// healthy stream or JSON naming itself) and a Router targeting them in the
// order given.
func newEnv(t *testing.T, scripts map[string]func(c *fconn, n int), targets []string, mutate func(*config.Config)) *env {
	t.Helper()
	e := &env{clock: newFakeClock(), fakes: map[string]*fakeProvider{}, logs: &logtest.Buffer{}}
	urls := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		s := scripts[name]
		if s == nil {
			s = healthy(name)
		}
		f := newFakeProvider(t, e.clock, s)
		e.fakes[name] = f
		urls[name] = f.url
	}
	cfg := testConfig(urls, targets)
	if mutate != nil {
		mutate(cfg)
	}
	r, err := New(cfg, Options{
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
		Now:    e.clock.Now,
		Sleep:  e.clock.Sleep,
		Jitter: func(d time.Duration) time.Duration { return d },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	e.r = r
	return e
}

// healthy answers every request well, naming the provider in its text.
func healthy(name string) func(c *fconn, n int) {
	return func(c *fconn, n int) {
		if strings.Contains(c.lastBody, `"stream":true`) {
			okStream(c, "from "+name)
			return
		}
		okJSON(c, "from "+name)
	}
}

// answer is what a caller got from one round.
type answer struct {
	provider string
	attempts int
	text     string               // content and reasoning deltas joined
	events   []string             // every event Next returned
	body     string               // a non-stream body
	spans    jsonscan.AnswerSpans // a non-stream body's (Response.Spans)
	raw      []byte               // that body as the Response holds it
	openErr  error
	end      error // Next's terminal error (io.EOF when complete)
	took     time.Duration
}

func chatBody(stream bool) []byte {
	if stream {
		return []byte(`{"model":"gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	}
	return []byte(`{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`)
}

func (e *env) open(ctx context.Context, stream bool) answer {
	return e.openReq(ctx, &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(stream),
		Stream: stream, ContentType: "application/json", Accept: "text/event-stream"})
}

func (e *env) openReq(ctx context.Context, req *Request) answer {
	start := time.Now()
	resp, err := e.r.Open(ctx, req)
	var a answer
	if err != nil {
		a.openErr = err
		a.took = time.Since(start)
		return a
	}
	defer resp.Close()
	a.provider, a.attempts, a.body, a.spans, a.raw = resp.Provider, resp.Attempts, string(resp.Body), resp.Spans, resp.Body
	if resp.Piped() {
		b, err := io.ReadAll(resp)
		a.body, a.end = string(b), err
		if err == nil {
			a.end = io.EOF
		}
	}
	if !req.Stream {
		a.took = time.Since(start)
		return a
	}
	for {
		ev, err := resp.Next()
		if err != nil {
			a.end = err
			break
		}
		a.events = append(a.events, string(ev.Data))
		d := gjson.GetBytes(ev.Data, "choices.0.delta")
		a.text += d.Get("reasoning_content").String() + d.Get("content").String()
	}
	a.took = time.Since(start)
	return a
}

func (a answer) complete() bool { return errors.Is(a.end, io.EOF) }
