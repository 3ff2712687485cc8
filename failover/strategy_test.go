package failover

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

func TestWeightedOrder(t *testing.T) {
	a, b, c := &target{model: "a", weight: 1}, &target{model: "b", weight: 3}, &target{model: "c", weight: 6}
	const n = 1000
	first := map[string]int{}
	for i := range n {
		ts := []*target{a, b, c}
		x := (float64(i) + 0.5) / n
		weightedShuffle(ts, func() float64 { return x })
		first[ts[0].model]++
		if len(ts) != 3 || ts[0] == ts[1] || ts[1] == ts[2] || ts[0] == ts[2] {
			t.Fatalf("not a permutation: %v", ts)
		}
	}
	want := map[string]int{"a": 100, "b": 300, "c": 600}
	for k, w := range want {
		if first[k] != w {
			t.Errorf("%s first %d times in %d; want %d (weight share)", k, first[k], n, w)
		}
	}
}

// TestLowestLatency: unmeasured targets are tried first so they get
// measured, then the fastest leads; a stale average is measured again.
// a's first token comes a second late (its first_token and idle raised to
// allow it), so that b, answering at once, stays the faster even when a
// loaded CI machine under -race stalls b's answer for hundreds of ms: with
// a 100ms lead, a stall of 100ms made b look the slower and sent the
// third round to a.
func TestLowestLatency(t *testing.T) {
	slow := func(c *fconn, _ int) {
		c.sse()
		c.event(roleChunk())
		c.pause(time.Second)
		c.event(contentChunk("from a"))
		c.event(finishChunk())
		c.done()
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": slow}, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
		c.Providers[0].Timeouts.FirstToken = config.Duration(3 * time.Second)
		c.Providers[0].Timeouts.Idle = config.Duration(3 * time.Second)
	})
	var got []string
	for range 4 {
		got = append(got, e.open(t.Context(), true).provider)
	}
	want := []string{"a", "b", "b", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("served by %v; want %v", got, want)
	}
	e.clock.Advance(latencyStale + time.Second)
	if p := e.open(t.Context(), true).provider; p != "a" {
		t.Errorf("with stale averages: served by %s; want a (config order, both re-measured)", p)
	}
}

// TestLowestLatencyOutlierForgotten: a target measured once very slow (a
// cold start, one long prompt) is tried again once its average is stale,
// and what it answers then is its latency: a stale average is no longer
// folded in. Folded in, a 10 s outlier still weighed 7.5 s after a fast
// answer, and the target went back behind the others for another minute,
// each minute's one fast sample taking off only a quarter.
func TestLowestLatencyOutlierForgotten(t *testing.T) {
	e := newEnv(t, nil, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
	})
	m := e.r.models[0]
	a, b := m.targets[0], m.targets[1]
	names := func() []string {
		var out []string
		for _, tg := range e.r.order(m, false, true, Affinity{}) {
			out = append(out, tg.p.name)
		}
		return out
	}
	a.observe(e.clock.Now(), true, 10*time.Second) // the outlier
	b.observe(e.clock.Now(), true, 200*time.Millisecond)
	if got := names(); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("after a's outlier: order %v; want [b a]", got)
	}
	e.clock.Advance(latencyStale + time.Second)
	if got := names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("with both averages stale: order %v; want [a b] (config order)", got)
	}
	a.observe(e.clock.Now(), true, 50*time.Millisecond) // a is fast again
	b.observe(e.clock.Now(), true, 200*time.Millisecond)
	if got := names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a measured again at 50ms, b at 200ms: order %v (a's average %v); want [a b]", got, a.latency[kindStream].Load())
	}
	// A fresh average still smooths: one slow answer among fast ones
	// does not send a target to the back at once.
	a.observe(e.clock.Now(), true, 350*time.Millisecond)
	if got := a.latency[kindStream].Load(); got != 125*time.Millisecond {
		t.Errorf("a's fresh average after 50ms then 350ms: %v; want 125ms (α = 1/4)", got)
	}
}

// TestLowestLatencyByRequestKind: a stream is ordered by the targets' time
// to first token, a non-stream request by their time to the whole answer,
// each measured on its own kind. One average of both made whichever target
// led take the slow whole-answer samples of the non-stream requests (an 8 s
// tool round) and fall behind a target twice as slow to its first token:
// with mixed traffic the lead changed hands by what each had served last,
// not by speed.
func TestLowestLatencyByRequestKind(t *testing.T) {
	e := newEnv(t, nil, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
	})
	m := e.r.models[0]
	a, b := m.targets[0], m.targets[1]
	names := func(stream bool) []string {
		var out []string
		for _, tg := range e.r.order(m, false, stream, Affinity{}) {
			out = append(out, tg.p.name)
		}
		return out
	}
	now := e.clock.Now()
	a.observe(now, true, 200*time.Millisecond) // a: first token in 200ms
	b.observe(now, true, 400*time.Millisecond) // b: in 400ms
	a.observe(now, false, 8*time.Second)       // a served a long non-stream answer
	b.observe(now, false, 10*time.Second)      // b a longer one
	if got := names(true); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a stream: order %v; want [a b] (200ms to the first token against 400ms)", got)
	}
	if got := names(false); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a non-stream request: order %v; want [a b] (8s to the answer against 10s)", got)
	}
	a.observe(now, false, 20*time.Second) // a's next whole answer was long
	if got := names(true); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a stream after a's long non-stream answer: order %v; want [a b] still", got)
	}
	if got := names(false); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("a non-stream request after a's long answer: order %v; want [b a]", got)
	}
}

// TestLowestLatencyForwardedStream: a forwarded call that asks for an
// event stream (a Responses API or legacy completion with "stream": true)
// is a stream too: it is ordered by the targets' time to the first token
// and its first event's time is that kind's sample. Ordered and measured
// as a whole answer, it put its first event's few milliseconds into the
// average of the non-stream requests' 8 s answers, and the lead of both
// kinds changed hands by what each target had served last, as
// TestLowestLatencyByRequestKind's one average did.
func TestLowestLatencyForwardedStream(t *testing.T) {
	e := newEnv(t, nil, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
		for i := range c.Models[0].Targets {
			c.Models[0].Targets[i].Model = "up" // forwarded calls stay on one upstream model
		}
	})
	m := e.r.models[0]
	a, b := m.targets[0], m.targets[1]
	now := e.clock.Now()
	a.observe(now, true, 30*time.Second) // a: slower to its first token
	b.observe(now, true, 10*time.Second)
	a.observe(now, false, 8*time.Second) // a: the faster whole answers
	b.observe(now, false, 10*time.Second)
	fwd := func(body string) answer {
		return e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/responses", Body: []byte(body),
			ContentType: "application/json", Accept: "text/event-stream", SameUpstreamModel: true})
	}
	if got := fwd(`{"model":"gpt","stream":true,"input":"hi"}`); got.provider != "b" || !got.complete() {
		t.Fatalf("a forwarded stream: served by %q (%v %v); want b (10s to the first token against 30s)", got.provider, got.openErr, got.end)
	}
	if got := b.latency[kindWhole].Load(); got != 10*time.Second {
		t.Errorf("b's whole-answer average after serving a forwarded stream: %v; want 10s still (its first event is a stream's sample)", got)
	}
	if got := b.latency[kindStream].Load(); got >= 10*time.Second {
		t.Errorf("b's first-token average after a forwarded stream's first event in well under a second: %v; want below 10s", got)
	}
	if got := fwd(`{"model":"gpt","input":"hi"}`); got.provider != "a" {
		t.Errorf("a forwarded non-stream call: served by %q (%v); want a (8s to the answer against 10s)", got.provider, got.openErr)
	}
}

// TestLowestLatencyOnlyGenerationsMeasure: a forwarded call that names no
// model (a file's or a batch's object, the model list: routed by the
// first model, SameUpstreamModel) is no generation, and its answer's time
// says nothing of the model's speed: it is no latency sample. Taken for
// one, a bot polling its batch on the one provider that holds it gave
// that provider's average the poll's milliseconds, and it took the lead
// of the model's non-stream requests from a target faster to answer them.
func TestLowestLatencyOnlyGenerationsMeasure(t *testing.T) {
	bHealthy := healthy("b")
	e := newEnv(t, map[string]func(*fconn, int){"b": func(c *fconn, n int) {
		if n == 0 { // b does not hold the batch
			c.status(404, errBody("invalid_request_error", "", "No batch found with id 'batch_1'."))
			return
		}
		bHealthy(c, n)
	}}, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
		for i := range c.Models[0].Targets {
			c.Models[0].Targets[i].Model = "up"
		}
	})
	m := e.r.models[0]
	a, b := m.targets[0], m.targets[1]
	now := e.clock.Now()
	a.observe(now, false, 10*time.Second)
	b.observe(now, false, 8*time.Second) // b: the faster answers
	got := e.openReq(t.Context(), &Request{Method: "GET", Path: "/batches/batch_1", Accept: "application/json", SameUpstreamModel: true})
	if got.openErr != nil || got.provider != "a" {
		t.Fatalf("the batch poll: served by %q (%v); want a, which holds it", got.provider, got.openErr)
	}
	if got := a.latency[kindWhole].Load(); got != 10*time.Second {
		t.Errorf("a's average after answering a batch poll: %v; want 10s still (no generation, no sample)", got)
	}
	if got := e.open(t.Context(), false); got.provider != "b" {
		t.Errorf("a non-stream chat request after the poll: served by %q (%v); want b (8s to the answer against 10s)", got.provider, got.openErr)
	}
}

// TestLowestLatencyFailingTargetLast: a target whose last attempt failed for
// a reason of its own that does not cool it down (a 404 for a model it does
// not serve, a malformed answer) goes behind the targets that answered,
// until its failure is as stale as an average. Unmeasured, it sorted first
// in every round: each request paid its failed attempt before the target
// that answers, for as long as the configuration stood.
func TestLowestLatencyFailingTargetLast(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(404, errBody("invalid_request_error", "model_not_found", "The model up-a does not exist"))),
			}, []string{"a", "b"}, func(c *config.Config) {
				c.Models[0].Strategy = StrategyLowestLatency
			})
			for i := range 3 {
				if got := e.open(t.Context(), stream); got.provider != "b" {
					t.Fatalf("request %d: served by %q (%v); want b", i+1, got.provider, got.openErr)
				}
			}
			if n := len(e.fakes["a"].hits()); n != 1 {
				t.Errorf("a, which answers 404 for the model, was asked %d times in 3 rounds; want 1 (then behind b)", n)
			}
			e.clock.Advance(latencyStale + time.Second)
			e.open(t.Context(), stream)
			if n := len(e.fakes["a"].hits()); n != 2 {
				t.Errorf("after its failure went stale, a was asked %d times in all; want 2 (tried again, like a stale average)", n)
			}
		})
	}
}

// TestLowestLatencyRequestFailureKeepsTargetFirst: a failure that tells of
// one request, not of the target, does not put the target behind the others
// for the next minute of every bot's requests: a Responses call whose stored
// conversation lives at another provider (400 previous_response_not_found),
// a forwarded call the provider key lacks the permission for (a 403 on
// /embeddings: the key serves chat still, and such a call cools no provider
// down so that one bot's call does not take it out of every bot's chat), a
// forwarded path the provider does not serve (a 404 on /responses from an
// OpenAI-compatible server that has chat completions only: its chat is no
// worse for it; a 404 that says the model is missing still counts, as on
// chat, TestLowestLatencyFailingTargetLast), an
// answer larger than paygate relays (it follows from the request's n or
// max_tokens). Each demoted a healthy, unmeasured target behind a slower one
// for every chat request of the model until the failure was a minute old.
func TestLowestLatencyRequestFailureKeepsTargetFirst(t *testing.T) {
	big := `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("x", 2*testMaxResponse) + `"},"finish_reason":"stop"}]}`
	tests := []struct {
		name string
		mark string // a fails a request whose body holds it, and answers the others
		fail func(c *fconn)
		req  *Request
	}{
		{"previous_response_not_found", "previous_response_id",
			statusFn(400, `{"error":{"message":"Previous response with id 'resp_1' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}`),
			&Request{Model: "gpt", Method: "POST", Path: "/responses", ContentType: "application/json",
				Body: []byte(`{"model":"gpt","previous_response_id":"resp_1","input":"hi"}`)}},
		{"the key lacks the path's permission", `"input"`,
			statusFn(403, errBody("invalid_request_error", "", "You have insufficient permissions for this operation. Missing scopes: model.request.embeddings")),
			&Request{Model: "gpt", Method: "POST", Path: "/embeddings", ContentType: "application/json",
				Body: []byte(`{"model":"gpt","input":"hi"}`)}},
		{"a path the provider does not serve", `"input"`,
			statusFn(404, `{"error":{"message":"Invalid URL (POST /v1/responses)","type":"invalid_request_error","param":null,"code":null}}`),
			&Request{Model: "gpt", Method: "POST", Path: "/responses", ContentType: "application/json",
				Body: []byte(`{"model":"gpt","input":"hi"}`)}},
		{"an answer over paygate's cap", `"n":8`, statusFn(200, big),
			&Request{Model: "gpt", Method: "POST", Path: "/chat/completions", ContentType: "application/json",
				Body: []byte(`{"model":"gpt","n":8,"messages":[{"role":"user","content":"hi"}]}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(*fconn, int){
				"a": func(c *fconn, n int) {
					if strings.Contains(c.lastBody, tc.mark) {
						tc.fail(c)
						return
					}
					healthy("a")(c, n)
				},
			}, []string{"a", "b"}, func(c *config.Config) {
				c.Models[0].Strategy = StrategyLowestLatency
			})
			setTestLimits(e.r, 0)
			e.openReq(t.Context(), tc.req)
			if n := len(e.fakes["a"].hits()); n != 1 {
				t.Fatalf("a was asked %d times for the failing request; want 1", n)
			}
			if got := e.open(t.Context(), false); got.provider != "a" {
				t.Errorf("the next chat request was served by %q (%v); want a, still first: the failure was the request's", got.provider, got.openErr)
			}
		})
	}
}

// TestLowestLatencyForwardedModelNotFoundLast: a 404 on a forwarded path
// that says the target's model is missing tells of the target, as on chat
// completions (TestLowestLatencyFailingTargetLast): it goes behind the
// targets that answer, unlike a 404 for a path it does not serve
// (TestLowestLatencyRequestFailureKeepsTargetFirst).
func TestLowestLatencyForwardedModelNotFoundLast(t *testing.T) {
	e := newEnv(t, map[string]func(*fconn, int){
		"a": always(statusFn(404, errBody("invalid_request_error", "model_not_found", "The model up-a does not exist"))),
	}, []string{"a", "b"}, func(c *config.Config) {
		c.Models[0].Strategy = StrategyLowestLatency
	})
	req := func() *Request {
		return &Request{Model: "gpt", Method: "POST", Path: "/responses", ContentType: "application/json",
			Body: []byte(`{"model":"gpt","input":"hi"}`)}
	}
	for i := range 2 {
		if got := e.openReq(t.Context(), req()); got.provider != "b" {
			t.Fatalf("request %d: served by %q (%v); want b", i+1, got.provider, got.openErr)
		}
	}
	if n := len(e.fakes["a"].hits()); n != 1 {
		t.Errorf("a, which answers 404 for the model, was asked %d times in 2 rounds; want 1 (then behind b)", n)
	}
}

// TestWeightedOrderPerConversation: the draws of a conversation
// (affinityDraws) order the targets the same way every time, and over
// conversations in proportion to weight, as random draws do.
func TestWeightedOrderPerConversation(t *testing.T) {
	a, b, c := &target{model: "a", weight: 1}, &target{model: "b", weight: 3}, &target{model: "c", weight: 6}
	const n = 3000
	first := map[string]int{}
	for i := range n {
		conv := Affinity{Client: "bot", User: "o-user-" + strconv.Itoa(i), Session: "chat"}
		ts := []*target{a, b, c}
		weightedShuffle(ts, affinityDraws("gpt-test", conv))
		again := []*target{a, b, c}
		weightedShuffle(again, affinityDraws("gpt-test", conv))
		if !slices.Equal(ts, again) {
			t.Fatalf("conversation %d drew %v, then %v", i, ts, again)
		}
		first[ts[0].model]++
	}
	for k, w := range map[string]int{"a": 300, "b": 900, "c": 1800} {
		if d := first[k] - w; d < -w/10 || d > w/10 {
			t.Errorf("%s first in %d of %d conversations; want about %d (weight share)", k, first[k], n, w)
		}
	}
}
