package failover

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
)

// openRouterUpstreamLimited is OpenRouter's 429 for a model whose upstream
// provider (metadata.provider_name) is rate limiting it, that provider's
// words in metadata.raw and its wait in metadata.headers, as OpenRouter
// relays it (its platform's own limits name no provider_name).
const openRouterUpstreamLimited = `{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"meta-llama/llama-3.3-70b-instruct:free is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations",` +
	`"provider_name":"Venice","is_byok":false,"retry_after_seconds":17,"retry_after_seconds_raw":16.007,"headers":{"Retry-After":"17"}}},"user_id":"user_1"}`

// freeAndPaidConfig is the config of providers a and b with model "free"
// on a's up-free, then b's up-b, and model "paid" on a's up-paid alone:
// OpenRouter's :free models beside its paid ones.
func freeAndPaidConfig(a, b *fakeProvider) *config.Config {
	cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, nil)
	cfg.Models = []config.Model{
		{Name: "free", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "up-free", Weight: 1}, {Provider: "b", Model: "up-b", Weight: 1}}},
		{Name: "paid", Strategy: "priority", Targets: []config.Target{{Provider: "a", Model: "up-paid", Weight: 1}}},
	}
	return cfg
}

// freeAndPaid is a Router over fake providers a and b: model "free" is
// a's up-free, which free answers, then b; model "paid" is a's up-paid
// alone, answered at once.
func freeAndPaid(t *testing.T, free func(c *fconn)) (*fakeClock, *fakeProvider, *Router) {
	t.Helper()
	clock := newFakeClock()
	a := newFakeProvider(t, clock, func(c *fconn, _ int) {
		if strings.Contains(c.lastBody, `"up-free"`) {
			free(c)
			return
		}
		okJSON(c, "paid from a")
	})
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := freeAndPaidConfig(a, b)
	r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return clock, a, r
}

// TestOpenRouterUpstreamLimitSparesItsOtherModels: a 429 OpenRouter
// relays from the upstream provider of one model (metadata.provider_name)
// limits that model, not OpenRouter: its other models are served by other
// upstreams. The target that met it cools down for its wait, whether
// OpenRouter puts the wait in a Retry-After header or only in the error's
// metadata.headers; OpenRouter stays in every other model's rounds.
// Cooled down as a whole, OpenRouter refused for the wait every bot's
// model it serves (a model with no other target got a 429), and with the
// wait in the body alone the limited model was asked again within a
// second, each round.
func TestOpenRouterUpstreamLimitSparesItsOtherModels(t *testing.T) {
	// Without a wait anywhere, the target backs off as a provider would.
	noWait := strings.Replace(openRouterUpstreamLimited, `,"retry_after_seconds":17,"retry_after_seconds_raw":16.007,"headers":{"Retry-After":"17"}`, "", 1)
	for _, tc := range []struct {
		name  string
		body  string
		extra []string
		wait  time.Duration // 0: a back-off of paygate's
	}{
		{"Retry-After header", openRouterUpstreamLimited, []string{"Retry-After: 17"}, 17 * time.Second},
		{"the wait in metadata.headers alone", openRouterUpstreamLimited, nil, 17 * time.Second},
		{"no wait: a back-off", noWait, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock, _, r := freeAndPaid(t, func(c *fconn) { c.status(429, tc.body, tc.extra...) })
			open := func(model string) (string, error) {
				resp, err := r.Open(t.Context(), &Request{Model: model, Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
				if err != nil {
					return "", err
				}
				defer resp.Close()
				return resp.Provider, nil
			}
			start := clock.Now()
			if p, err := open("free"); err != nil || p != "b" {
				t.Fatalf("free: answered by %q (err %v); want b", p, err)
			}
			st := statusOf(r, "a")
			if !st.CoolingUntil.IsZero() {
				t.Errorf("a cooling until %v for %q; want only its free target cooling", st.CoolingUntil, st.CoolingCause)
			}
			if len(st.CoolingTargets) != 1 || st.CoolingTargets[0].Target != "up-free" {
				t.Fatalf("a's targets cooling: %+v; want up-free", st.CoolingTargets)
			}
			if until := st.CoolingTargets[0].Until; tc.wait > 0 && !until.Equal(start.Add(tc.wait)) || tc.wait == 0 && !until.After(clock.Now()) {
				t.Errorf("up-free cooling until %v; want %v", until, start.Add(tc.wait))
			}
			before := clock.Now()
			if p, err := open("paid"); err != nil || p != "a" {
				t.Fatalf("paid: answered by %q (err %v); want a: the free model's upstream limit is not the paid model's", p, err)
			}
			if waited := clock.Now().Sub(before); waited != 0 {
				t.Errorf("paid: waited %v for a; want no wait", waited)
			}
		})
	}
}

// TestOpenRouterUpstreamLimitBacksOffOnItsOwn: the back-off of a target
// whose upstream OpenRouter relays a limit without a wait counts that
// target's limits alone. Counted with OpenRouter's own, one busy :free
// model's 429s made OpenRouter's next limit without a wait cool all of
// it down the doubled back-off (2 s for 0.5 s: every other model's round
// waited it out), and any other model's answer started the busy model's
// back-off over, so it was asked again every half second, however long
// its upstream stayed busy.
func TestOpenRouterUpstreamLimitBacksOffOnItsOwn(t *testing.T) {
	noWait := strings.Replace(openRouterUpstreamLimited, `,"retry_after_seconds":17,"retry_after_seconds_raw":16.007,"headers":{"Retry-After":"17"}`, "", 1)
	// OpenRouter's own limit: no provider_name, no wait.
	ownLimit := `{"error":{"message":"Rate limit exceeded","code":429,"metadata":{"provider_name":null}}}`
	clock := newFakeClock()
	paidLimited := true
	a := newFakeProvider(t, clock, func(c *fconn, _ int) {
		switch {
		case strings.Contains(c.lastBody, `"up-free"`):
			c.status(429, noWait)
		case paidLimited:
			paidLimited = false
			c.status(429, ownLimit)
		default:
			okJSON(c, "paid from a")
		}
	})
	b := newFakeProvider(t, clock, healthy("b"))
	cfg := freeAndPaidConfig(a, b)
	r, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now, Sleep: clock.Sleep,
		Jitter: func(d time.Duration) time.Duration { return d }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	open := func(model string) (string, time.Duration, error) {
		start := clock.Now()
		resp, err := r.Open(t.Context(), &Request{Model: model, Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
		if err != nil {
			return "", 0, err
		}
		defer resp.Close()
		return resp.Provider, clock.Now().Sub(start), nil
	}
	// up-free: 429, its back-off (0.5 s), 429 again (1 s), then b.
	if p, waited, err := open("free"); err != nil || p != "b" || waited != throttleBase {
		t.Fatalf("free: answered by %q after %v (err %v); want b after a's back-off of %v", p, waited, err, throttleBase)
	}
	// OpenRouter's own limit: the first of its own, waited out at the base.
	if p, waited, err := open("paid"); err != nil || p != "a" || waited != throttleBase {
		t.Errorf("paid: answered by %q after %v (err %v); want a after %v, the first limit of OpenRouter's own", p, waited, err, throttleBase)
	}
	// up-paid answered; up-free's upstream is still busy: its back-off goes
	// on doubling (2 s, its third limit in a row), not back to 0.5 s.
	clock.Advance(time.Minute)
	start := clock.Now()
	if p, _, err := open("free"); err != nil || p != "b" {
		t.Fatalf("free again: answered by %q (err %v); want b", p, err)
	}
	var until time.Time
	for _, c := range statusOf(r, "a").CoolingTargets {
		if c.Target == "up-free" {
			until = c.Until
		}
	}
	if want := start.Add(4 * throttleBase); until.Before(want) {
		t.Errorf("up-free cooling until %v; want at least %v: its upstream limited it three times in a row", until, want)
	}
}

// TestOpenRouterUpstreamLimitMidStreamSparesItsOtherModels: the same
// relayed 429 as an error event after the stream's first token backs off
// the target whose upstream limited it, as before the first byte, not
// OpenRouter, whose other models other upstreams serve, for the wait its
// metadata.headers name (17 s).
func TestOpenRouterUpstreamLimitMidStreamSparesItsOtherModels(t *testing.T) {
	clock, _, r := freeAndPaid(t, func(c *fconn) {
		c.sse()
		c.event(contentChunk("Hel"))
		c.event(openRouterUpstreamLimited)
		c.done()
	})
	start := clock.Now()
	resp, err := r.Open(t.Context(), &Request{Model: "free", Path: "/chat/completions", Body: chatBody(true), Stream: true, ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	var end error
	for end == nil {
		_, end = resp.Next()
	}
	resp.Close()
	if se := streamError(end); resp.Provider != "a" || se == nil || se.Class != CauseRateLimited {
		t.Fatalf("free: provider %q ended by %v; want a's stream ended by a rate limit", resp.Provider, end)
	}
	st := statusOf(r, "a")
	if !st.CoolingUntil.IsZero() {
		t.Errorf("a cooling until %v for %q; want only its free target backing off", st.CoolingUntil, st.CoolingCause)
	}
	if len(st.CoolingTargets) != 1 || st.CoolingTargets[0].Target != "up-free" || !st.CoolingTargets[0].Until.Equal(start.Add(17*time.Second)) {
		t.Errorf("a's targets cooling: %+v; want up-free until %v", st.CoolingTargets, start.Add(17*time.Second))
	}
	before := len(clock.sleeps)
	paid, err := r.Open(t.Context(), &Request{Model: "paid", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
	if err != nil {
		t.Fatalf("paid: %v; want a's answer: its upstream is not limited", err)
	}
	paid.Close()
	if waits := clock.sleeps[before:]; len(waits) > 0 {
		t.Errorf("paid waited %v for a; want a's answer at once", waits)
	}
}

// TestOpenRouterUpstreamLimitInA200KeepsItsWait: once the model has
// started, OpenRouter answers 200 and sends an error in the body or as an
// event (https://openrouter.ai/docs/api-reference/errors): its relayed
// 429 there carries the upstream's wait in metadata.headers as its 429
// status line's body does, and the target cools down that long (17 s, past
// failover.retry_after_max_wait: the next target at once), not for a
// back-off of paygate's after which it is asked again, refused again.
func TestOpenRouterUpstreamLimitInA200KeepsItsWait(t *testing.T) {
	asEvent := func(c *fconn) {
		c.sse()
		c.comment("OPENROUTER PROCESSING")
		c.event(openRouterUpstreamLimited)
		c.done()
	}
	bare := func(c *fconn) { // the error object without "data:"
		c.sse()
		c.comment("OPENROUTER PROCESSING")
		c.chunk(openRouterUpstreamLimited)
		c.end()
	}
	inBody := func(c *fconn) { c.status(200, openRouterUpstreamLimited) }
	const chat, completions, responses = "/chat/completions", "/completions", "/responses"
	for _, tc := range []struct {
		name   string
		path   string
		stream bool
		answer func(c *fconn)
	}{
		{"the first event of a stream", chat, true, asEvent},
		{"a 200's body", chat, false, inBody},
		{"a stream's object without data:", chat, true, bare},
		{"events answering a non-stream request", chat, false, asEvent},
		{"an object without data: answering a non-stream request", chat, false, bare},
		{"a forwarded path's 200 body", completions, false, inBody},
		{"a piped stream's first event", responses, true, asEvent},
		{"a piped stream's object without data:", responses, true, bare},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock, a, r := freeAndPaid(t, tc.answer)
			start := clock.Now()
			body := chatBody(tc.stream)
			if tc.path != chat {
				body = []byte(`{"model":"free","input":"hi","prompt":"hi","stream":` + strconv.FormatBool(tc.stream) + `}`)
			}
			resp, err := r.Open(t.Context(), &Request{Model: "free", Method: "POST", Path: tc.path, Body: body, Stream: tc.stream && tc.path == chat,
				ContentType: "application/json"})
			if err != nil {
				t.Fatal(err)
			}
			resp.Close()
			if resp.Provider != "b" || len(a.hits()) != 1 {
				t.Errorf("answered by %q after a saw %d requests; want b after 1", resp.Provider, len(a.hits()))
			}
			st := statusOf(r, "a")
			if !st.CoolingUntil.IsZero() {
				t.Errorf("a cooling until %v; want only its target", st.CoolingUntil)
			}
			if len(st.CoolingTargets) != 1 || !st.CoolingTargets[0].Until.Equal(start.Add(17*time.Second)) {
				t.Errorf("a's targets cooling: %+v; want up-free until %v", st.CoolingTargets, start.Add(17*time.Second))
			}
		})
	}
}

// TestRelayedWaitInABodyIsCapped: the Retry-After a relayed limit's
// metadata.headers name in a 200's body or an event is read as on a 429's
// status line: capped at a day, however large, and none when negative or
// not a delay (a back-off of paygate's then), so that no relay's number
// keeps a target out for longer or sends it again at once.
func TestRelayedWaitInABodyIsCapped(t *testing.T) {
	clock, _, r := freeAndPaid(t, func(c *fconn) { okJSON(c, "unused") })
	for _, tc := range []struct {
		retryAfter string
		want       time.Duration
		wantWait   bool
	}{
		{`"17"`, 17 * time.Second, true},
		{`"99999999999999999999"`, maxRetryAfter, true},
		{`1e300`, maxRetryAfter, true},
		{`"` + clock.Now().Add(90*time.Second).UTC().Format(http.TimeFormat) + `"`, 90 * time.Second, true},
		{`"-5"`, 0, false},
		{`"soon"`, 0, false},
		{`{"s":17}`, 0, false},
	} {
		data := []byte(strings.Replace(openRouterUpstreamLimited, `"headers":{"Retry-After":"17"}`, `"headers":{"Retry-After":`+tc.retryAfter+`}`, 1))
		f := r.eventWait(errorObject(data), data)
		if f == nil || f.cause != CauseRateLimited || f.retryAfter != tc.want || f.hasRetry != tc.wantWait || f.targetLimit != tc.wantWait {
			t.Errorf("Retry-After %s: %+v; want a rate limit of the target waiting %v (a wait: %v)", tc.retryAfter, f, tc.want, tc.wantWait)
		}
	}
}
