package failover

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/config"
)

// TestSilentProviderNotAskedAgainInTheRound: a provider that let a
// stream's attempt go without a head (first_byte, or connect timed out)
// is silent, not its model: SPEC 5 moves on at once because "retrying a
// silent provider only doubles the wait". A model with a second target on
// the same provider (OpenRouter serving two upstream models) used to ask
// it next and wait out first_byte again; with the defaults, two 30 s
// waits spent the round's 60 s and the round ended 504 before the healthy
// provider after them was asked.
func TestSilentProviderNotAskedAgainInTheRound(t *testing.T) {
	t.Parallel()
	twoOnA := func(cfg *config.Config) {
		cfg.Models[0].Targets = []config.Target{
			{Provider: "a", Model: "up-a", Weight: 1},
			{Provider: "a", Model: "up-a2", Weight: 1},
			{Provider: "b", Model: "up-b", Weight: 1},
		}
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": always((*fconn).hang)}, []string{"a", "b"}, twoOnA)
	got := e.open(t.Context(), true)
	if got.openErr != nil {
		t.Fatalf("Open: %v; want b's answer", got.openErr)
	}
	if got.provider != "b" {
		t.Errorf("answered by %q; want b", got.provider)
	}
	if n := len(e.fakes["a"].hits()); n != 1 {
		t.Errorf("silent provider a asked %d times in the round; want 1", n)
	}
	if got.took > tFirstByte+slack {
		t.Errorf("round took %v; want about one first_byte (%v)", got.took, tFirstByte)
	}
	if got.attempts != 2 {
		t.Errorf("Attempts %d; want 2", got.attempts)
	}

	// A round that has no other provider says why a's other target was
	// not asked.
	e2 := newEnv(t, map[string]func(*fconn, int){"a": always((*fconn).hang)}, []string{"a"}, func(cfg *config.Config) {
		cfg.Models[0].Targets = []config.Target{
			{Provider: "a", Model: "up-a", Weight: 1},
			{Provider: "a", Model: "up-a2", Weight: 1},
		}
	})
	got = e2.open(t.Context(), true)
	var ue *UpstreamError
	if !errors.As(got.openErr, &ue) {
		t.Fatalf("Open error %v; want *UpstreamError", got.openErr)
	}
	if ue.Status != 504 || ue.Code != CauseFirstByteTimeout {
		t.Errorf("got %d %q; want 504 %q (%s)", ue.Status, ue.Code, CauseFirstByteTimeout, ue.Message)
	}
	if !strings.Contains(ue.Message, "a: skipped") {
		t.Errorf("message %q; want it to say a's other target was skipped", ue.Message)
	}
	if n := len(e2.fakes["a"].hits()); n != 1 {
		t.Errorf("silent provider a asked %d times in the round; want 1", n)
	}
}

// TestHeadWithoutTokenIsTheModels: a provider that sent its head but no
// token in time (first_token) is up, and its model is slow: its other
// target is still asked.
func TestHeadWithoutTokenIsTheModels(t *testing.T) {
	t.Parallel()
	slowFirst := func(c *fconn, n int) {
		if strings.Contains(c.lastBody, `"up-a2"`) {
			okStream(c, "from a2")
			return
		}
		c.sse()
		c.event(roleChunk())
		c.pause(tFirstToken + 500*time.Millisecond)
		c.dead = true
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": slowFirst}, []string{"a", "b"}, func(cfg *config.Config) {
		cfg.Models[0].Targets = []config.Target{
			{Provider: "a", Model: "up-a", Weight: 1},
			{Provider: "a", Model: "up-a2", Weight: 1},
			{Provider: "b", Model: "up-b", Weight: 1},
		}
	})
	got := e.open(t.Context(), true)
	if got.openErr != nil {
		t.Fatalf("Open: %v; want a2's answer", got.openErr)
	}
	if got.provider != "a" || !strings.HasSuffix(got.text, "from a2") {
		t.Errorf("answered by %q with %q; want a's second target", got.provider, got.text)
	}
}

// TestSilentProviderNotWaitedFor: a target skipped for a limit on its own
// model, whose cool-down the round would wait out at its end, is not asked
// once its provider went silent on another of its models in the round.
func TestSilentProviderNotWaitedFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]func(*fconn, int){"a": always((*fconn).hang)}, []string{"a"}, func(cfg *config.Config) {
		cfg.Models[0].Targets = []config.Target{
			{Provider: "a", Model: "up-a", Weight: 1},
			{Provider: "a", Model: "up-a2", Weight: 1},
		}
	})
	e.r.models[0].targets[0].coolDown(e.clock.Now().Add(2 * time.Second))
	got := e.open(t.Context(), true)
	if got.openErr == nil {
		t.Fatalf("answered by %q; want no answer", got.provider)
	}
	if n := len(e.fakes["a"].hits()); n != 1 {
		t.Errorf("silent provider a asked %d times in the round; want 1", n)
	}
}

// TestSilentProviderLeftIsNoFailoverToItself: a round whose provider went
// silent counts no failover to that provider's other targets, which it
// passes over without asking: a model served only by one provider under
// two upstream models (OpenRouter's usual failover between models), the
// provider black-holed, counted one failover a round, and with three
// models two, moves to targets never asked, as a last target failing no
// longer counts one. A healthy provider after them is a move, as before.
func TestSilentProviderLeftIsNoFailoverToItself(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		targets []config.Target
		want    map[string]float64 // "provider/cause"
	}{
		{"two models on it", []config.Target{{Provider: "a", Model: "up-a"}, {Provider: "a", Model: "up-a2"}}, map[string]float64{}},
		{"three models on it", []config.Target{{Provider: "a", Model: "up-a"}, {Provider: "a", Model: "up-a2"}, {Provider: "a", Model: "up-a3"}},
			map[string]float64{}},
		{"another provider after them", []config.Target{{Provider: "a", Model: "up-a"}, {Provider: "a", Model: "up-a2"}, {Provider: "b", Model: "up-b"}},
			map[string]float64{"a/" + CauseFirstByteTimeout: 1, "a/" + failoverSilent: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			urls := map[string]string{
				"a": newFakeProvider(t, nil, always((*fconn).hang)).url,
				"b": newFakeProvider(t, nil, healthy("b")).url,
			}
			cfg := testConfig(urls, []string{"a", "b"})
			for i := range tc.targets {
				tc.targets[i].Weight = 1
			}
			cfg.Models[0].Targets = tc.targets
			r, err := New(cfg, Options{Registerer: reg, Sleep: newFakeClock().Sleep})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			resp, err := r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(true),
				Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
			if err == nil {
				resp.Close()
			}
			if got := failovers(t, reg, ""); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("failovers %v; want %v", got, tc.want)
			}
		})
	}
}

// TestFailoverHelpNamesEverySkipCause: the failover metric's help, which
// an operator reads on /metrics, names each cause a target left unasked is
// counted under: "silent" was counted but the help named only breaker_open
// and cooling_down, so a series with it read as an attempt's cause nobody
// documented.
func TestFailoverHelpNamesEverySkipCause(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := testConfig(map[string]string{"a": "http://127.0.0.1:1"}, []string{"a"})
	r, err := New(cfg, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.m.failovers.WithLabelValues("gpt", "a", failoverSilent).Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "paygate_upstream_failovers_total" {
			continue
		}
		for _, c := range []string{failoverBreaker, failoverCooling, failoverSilent} {
			if !strings.Contains(mf.GetHelp(), c) {
				t.Errorf("help %q does not name %q", mf.GetHelp(), c)
			}
		}
		return
	}
	t.Fatal("no paygate_upstream_failovers_total")
}

// TestProviderAnsweringMeanwhileIsNotSilent: a provider that sent another
// request's head (another model's, another round's) while a stream waited
// in vain for its own is not silent: its endpoint answers, and the silence
// is the target's model's, as behind a gateway (one-api, LiteLLM) that
// sends its head with its upstream's. Its other targets stay in the round:
// passed over, the round ended 504 while the provider was answering the
// next target's model for every other bot.
func TestProviderAnsweringMeanwhileIsNotSilent(t *testing.T) {
	t.Parallel()
	hit, released := make(chan struct{}), make(chan struct{})
	var once sync.Once
	script := func(c *fconn, n int) {
		if strings.Contains(c.lastBody, `"up-a2"`) {
			okStream(c, "from a2")
			return
		}
		once.Do(func() { close(hit) })
		<-released
		c.hang()
	}
	e := newEnv(t, map[string]func(*fconn, int){"a": script}, []string{"a"}, func(cfg *config.Config) {
		cfg.Models[0].Targets = []config.Target{
			{Provider: "a", Model: "up-a", Weight: 1},
			{Provider: "a", Model: "up-a2", Weight: 1},
		}
		cfg.Models = append(cfg.Models, config.Model{Name: "other", Strategy: "priority",
			Targets: []config.Target{{Provider: "a", Model: "up-a2", Weight: 1}}})
	})
	done := make(chan answer, 1)
	go func() { done <- e.open(t.Context(), true) }()
	<-hit
	// Another bot's request of the provider's other model is answered
	// while the round's first attempt waits for its head.
	other := e.openReq(t.Context(), &Request{Model: "other", Method: "POST", Path: "/chat/completions",
		Body:   []byte(`{"model":"other","stream":true,"messages":[{"role":"user","content":"hi"}]}`),
		Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
	close(released)
	if other.openErr != nil || other.provider != "a" {
		t.Fatalf("the other model: answered by %q (%v); want a", other.provider, other.openErr)
	}
	got := <-done
	if got.openErr != nil || got.provider != "a" || !strings.HasSuffix(got.text, "from a2") {
		t.Fatalf("answered by %q with %q (%v); want a's second target, a answering meanwhile", got.provider, got.text, got.openErr)
	}
}
