package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestMarkDeliveredWithoutOrdersAllocatesNothing: most answers hand the
// user no payment parameters, and marking them delivered has nothing to
// write: it must cost them nothing (it built a detached context with a
// timer for every answer, five allocations of every non-stream turn).
func TestMarkDeliveredWithoutOrdersAllocatesNothing(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			s := &Server{state: testdrivers.Open(t, driver, storetest.NewClock().Now)}
			c := payments.Caller{Client: "shop-bot", User: "o-plain"}
			ctx := context.Background()
			for _, actions := range [][]json.RawMessage{nil, {}} {
				if n := testing.AllocsPerRun(100, func() { s.markDelivered(ctx, c, actions) }); n != 0 {
					t.Errorf("markDelivered of %d actions, no order handed: %v allocations; want 0", len(actions), n)
				}
			}
		})
	}
}

// TestEndRoundOfAnAnswerWithItsIDAllocatesNothing: a turn's first round
// that named its id is accounted without building the fallback id, which
// was made for every turn whether used or not.
func TestEndRoundOfAnAnswerWithItsIDAllocatesNothing(t *testing.T) {
	s := &Server{}
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, &requestCtx{id: "req_1"}))
	resp := &failover.Response{Provider: "p", Model: "m"}
	u := &interceptors.Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5}
	obj := []byte(`{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}`)
	tn := &turn{s: s, r: r, rounds: make([]roundInfo, 0, 1)}
	n := testing.AllocsPerRun(100, func() {
		tn.turnID, tn.rounds = "", tn.rounds[:0]
		tn.endRound(0, resp, "chatcmpl-1", "m", 1700000000, u, obj)
	})
	if n != 0 {
		t.Errorf("endRound of a first round with its id: %v allocations; want 0", n)
	}
	if tn.turnID != "chatcmpl-1" {
		t.Errorf("turn id: %q; want the round's, chatcmpl-1", tn.turnID)
	}
	tn = &turn{s: s, r: r}
	tn.endRound(0, resp, "", "m", 1700000000, u, obj)
	if tn.turnID != "chatcmpl-paygate-req_1" {
		t.Errorf("turn id of a first round without one: %q; want chatcmpl-paygate-req_1", tn.turnID)
	}
}

// TestParseAnswerAllocations: a plain answer with usage is read in two
// allocations: the round's answer and its strings (one copy for all, the
// usage object among them). The usage counts had one of their own, the
// object was found again by a path lookup over the whole answer, whose
// result gjson copies, and then it was copied once more out of the
// strings' copy.
func TestParseAnswerAllocations(t *testing.T) {
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":42,"completion_tokens":27,"total_tokens":69,"prompt_tokens_details":{"cached_tokens":2}}}`)
	isPayment := func(string) bool { return false }
	var a *roundAnswer
	if n := testing.AllocsPerRun(100, func() { a = parseAnswer(body, nil, isPayment) }); n != 2 {
		t.Errorf("parseAnswer of a plain answer with usage: %v allocations; want 2", n)
	}
	if want := gjson.GetBytes(body, "usage").Raw; string(a.usageJSON) != want {
		t.Errorf("usage object %s; want it as sent, %s", a.usageJSON, want)
	}
	if a.usage == nil || a.usage.PromptTokens != 42 || a.usage.CompletionTokens != 27 || a.usage.TotalTokens != 69 || a.usage.CachedTokens != 2 {
		t.Errorf("usage counts %+v; want 42, 27, 69, 2 cached", a.usage)
	}
	// The usage object is a read-only view of memory ReadAnswer copied
	// (parseAnswer reaches it through unsafe): an answer body patched
	// or reused after the parse must not change it.
	want := gjson.GetBytes(body, "usage").Raw
	patched := bytes.Clone(body)
	a = parseAnswer(patched, nil, isPayment)
	for i := range patched {
		patched[i] = 'x'
	}
	if string(a.usageJSON) != want {
		t.Errorf("usage object after the body was overwritten: %s; want it as sent, %s", a.usageJSON, want)
	}
}

// TestEndRoundOfAFirstRoundAllocatesNothing: a turn's first round is
// accounted without an allocation: its entry goes into the turn's own
// room for one round (most turns have one), not a slice grown on the
// heap, and its usage object goes there too, not into a list of its own
// that only a turn of several rounds or a stream's usage chunk reads.
func TestEndRoundOfAFirstRoundAllocatesNothing(t *testing.T) {
	s := &Server{}
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	resp := &failover.Response{Provider: "p", Model: "m"}
	u := &interceptors.Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5}
	obj := []byte(`{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}`)
	tn := &turn{s: s, r: r}
	n := testing.AllocsPerRun(100, func() {
		*tn = turn{s: s, r: r}
		tn.endRound(0, resp, "chatcmpl-1", "m", 1700000000, u, obj)
	})
	if n != 0 {
		t.Errorf("endRound of a turn's first round: %v allocations; want 0", n)
	}
	// A second round still gets an entry of its own, after the first.
	tn.endRound(1, &failover.Response{Provider: "q", Model: "m2"}, "chatcmpl-2", "m2", 1700000001, nil, nil)
	if len(tn.rounds) != 2 || tn.rounds[0].Provider != "p" || tn.rounds[1].Provider != "q" || string(tn.rounds[0].usage) != string(obj) {
		t.Errorf("rounds after a second: %+v; want p's (with its usage), then q's", tn.rounds)
	}
}

// TestPaygateHeadersOfAConfiguredProviderAllocateNothing: the
// X-Paygate-Provider value of a configured provider is built once, as the
// attempts' values are, not per answer.
func TestPaygateHeadersOfAConfiguredProviderAllocateNothing(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", nil)
	log := logging.New(&logtest.Buffer{}, slog.LevelDebug, cfg.Secrets())
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.Providers[0].Name
	resp := &failover.Response{Provider: name, Attempts: 1}
	h := http.Header{"X-Paygate-Provider": nil, "X-Paygate-Attempts": nil}
	if n := testing.AllocsPerRun(100, func() { s.setPaygateHeaders(h, resp) }); n != 0 {
		t.Errorf("paygate headers of provider %q: %v allocations; want 0", name, n)
	}
	if got := h.Get("X-Paygate-Provider"); got != name {
		t.Errorf("X-Paygate-Provider %q; want %q", got, name)
	}
	other := &failover.Response{Provider: "not-configured", Attempts: 2}
	s.setPaygateHeaders(h, other)
	if got := h.Get("X-Paygate-Provider"); got != "not-configured" {
		t.Errorf("X-Paygate-Provider %q; want not-configured", got)
	}
}

// TestFallbackIDAllocatesNothing: a streaming turn hands its first round
// the fallback id whether a chunk needs it or not (Capture.StartRound);
// the id is made with the request's, in the memory route keeps for the
// request, so that costs no allocation of its own.
func TestFallbackIDAllocatesNothing(t *testing.T) {
	rt := new(routed)
	rt.Context = context.Background()
	rt.rc.id = rt.newID()
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil).WithContext(rt)
	tn := &turn{r: r}
	var id string
	if n := testing.AllocsPerRun(100, func() { id = tn.fallbackID() }); n != 0 {
		t.Errorf("fallbackID: %v allocations; want 0", n)
	}
	if want := "chatcmpl-paygate-" + rt.rc.id; id != want || len(rt.rc.id) != logging.RequestIDLen {
		t.Errorf("fallbackID %q of request %q; want %q", id, rt.rc.id, want)
	}
}

// TestSentLogAddAllocatesNothing: the plain stream's log of sent events
// costs a small event a copy and no allocation, nor a large one whose
// picture it logs as a stand-in (sentLog.add), once the log has room.
func TestSentLogAddAllocatesNothing(t *testing.T) {
	small := []byte(`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}`)
	large := []byte(`{"id":"c1","choices":[{"index":0,"delta":{"images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + strings.Repeat("A", largeEvent) + `"}}]}}]}`)
	for name, ev := range map[string][]byte{"small": small, "large image": large} {
		l := &sentLog{b: make([]byte, 0, 16<<10)}
		if n := testing.AllocsPerRun(100, func() { l.b = l.b[:0]; l.add(ev) }); n != 0 {
			t.Errorf("sentLog.add of a %s event: %v allocations; want 0", name, n)
		}
	}
}

// TestFirstRoundRequestAllocatesNothing: a turn's first round asks the
// upstream with a request held in the turn itself (most turns have one
// round), not one allocated on its own; a later round's request is its
// own, so none handed to the upstream changes after.
func TestFirstRoundRequestAllocatesNothing(t *testing.T) {
	s := &Server{cfg: testConfig(t, "http://127.0.0.1:1", nil)}
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	body := []byte(`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`)
	chat := interceptors.Chat{Model: "gpt-test"}
	c := payments.Caller{Client: "shop-bot", User: "o-plain", Session: "o-plain"}
	tn := &turn{s: s, r: r, chat: chat, caller: c, body: body}
	var first *failover.Request
	n := testing.AllocsPerRun(100, func() {
		*tn = turn{s: s, r: r, chat: chat, caller: c, body: body}
		first = tn.request()
	})
	if n != 0 {
		t.Errorf("the first round's request: %v allocations; want 0", n)
	}
	if first.Model != "gpt-test" || string(first.Body) != string(body) || first.Path != "/chat/completions" || first.Affinity.User != "o-plain" {
		t.Errorf("first request %+v; want the turn's model, body, path and user", first)
	}
	second := tn.request()
	if second == first {
		t.Fatal("the second round's request is the first's; want one of its own")
	}
	if second.Model != first.Model || string(second.Body) != string(first.Body) {
		t.Errorf("second request %+v; want the same model and body as the first", second)
	}
}
