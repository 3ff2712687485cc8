package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestAdminResetsAProviderOutOfQuota: SPEC 5 puts a provider whose account
// is out of money (429 insufficient_quota) out of service "until an
// operator acts or a long cool-down ends". The operator had no way to act:
// the router's status and reset were wired to nothing, so after topping up
// the account every bot request was a 503 for the 30 minutes of the
// cool-down, or until paygate was restarted. GET /admin/api/providers shows
// the cool-down and its cause; POST /admin/api/providers/{name}/reset ends
// it, and the next request is served.
func TestAdminResetsAProviderOutOfQuota(t *testing.T) {
	var broke atomic.Bool
	broke.Store(true)
	quota := jsonHandler(429, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}`)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if broke.Load() {
			quota(w, r)
			return
		}
		jsonHandler(200, okCompletion)(w, r)
	})
	cfg := testConfig(t, fp.URL, func(c *config.Config) { c.Admin.Token = auditAdminToken })
	url, admin := adminProvidersServer(t, cfg)
	chat := func() int { return chatStatus(t, url) }
	if got := chat(); got != http.StatusServiceUnavailable {
		t.Fatalf("chat while out of quota: %d; want 503", got)
	}
	broke.Store(false) // the operator topped the account up
	if got := chat(); got != http.StatusServiceUnavailable {
		t.Fatalf("chat during the cool-down: %d; want 503 (the provider is out of service)", got)
	}
	code, list := admin(http.MethodGet, "/admin/api/providers")
	p := list.Get(`providers.#(name=="fake")`)
	if code != http.StatusOK || p.Get("cooling_cause").Str != failover.CauseInsufficientQuota || p.Get("cooling_until").Str == "" {
		t.Fatalf("GET /admin/api/providers: %d %s; want fake cooling down for its quota", code, list.Raw)
	}
	if code, body := admin(http.MethodPost, "/admin/api/providers/fake/reset"); code != http.StatusOK || body.Get("provider.cooling_until").Type != gjson.Null {
		t.Fatalf("reset: %d %s; want 200 and no cool-down left", code, body.Raw)
	}
	if got := chat(); got != http.StatusOK {
		t.Errorf("chat after the reset: %d; want 200", got)
	}
	if code, body := admin(http.MethodPost, "/admin/api/providers/nope/reset"); code != http.StatusNotFound || !strings.Contains(body.Get("error").Str, "nope") {
		t.Errorf("reset of an unknown provider: %d %s; want a 404 naming it", code, body.Raw)
	}
	if code, _ := admin(http.MethodGet, "/admin/api/providers/fake/reset"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET of the reset: %d; want 405", code)
	}
}

// TestAdminProviderResetLoggedAtWarn: the reset of a provider's cool-down
// reaches the log under log.level warn, as the cool-down it ends does (an
// error line, "out of service until reset or cool-down end"): an operator
// who quietened the log read that a provider went out of service and never
// that anyone brought it back, nor who asked (the request id, the address).
func TestAdminProviderResetLoggedAtWarn(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	cfg := testConfig(t, fp.URL, func(c *config.Config) { c.Admin.Token = auditAdminToken })
	var buf logtest.Buffer
	log := logging.New(&buf, slog.LevelWarn, cfg.Secrets())
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: prometheus.NewRegistry(), HashKey: []byte(cfg.Privacy.HashKey)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	req := httptest.NewRequest(http.MethodPost, "/admin/api/providers/fake/reset", nil)
	req.Header.Set("Authorization", "Bearer "+auditAdminToken)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("reset: %d %s", rec.Code, rec.Body)
	}
	var line gjson.Result
	for _, l := range strings.Split(buf.String(), "\n") {
		if gjson.Get(l, "msg").Str == "admin provider reset" {
			line = gjson.Parse(l)
		}
	}
	if !line.Exists() || line.Get("provider").Str != "fake" || line.Get("request_id").Str != rec.Header().Get("X-Request-Id") {
		t.Errorf("no line of the reset, naming the provider and the request, under log.level warn:\n%s", buf.String())
	}
}

// TestAdminShowsACoolingTarget: OpenRouter's daily limit on its ":free"
// models cools one target (a model at a provider) until the limit's
// reset, hours away, while the provider itself stays in every round. GET
// /admin/api/providers showed the provider with no cool-down, so an
// operator who saw every request of the model go to its second target
// had no way to learn why, nor that the reset of the provider ends it.
// The provider now lists its cooling targets (public model, upstream
// model, until, cause) beside its own members, and the reset clears them:
// the next request asks the free target again.
func TestAdminShowsACoolingTarget(t *testing.T) {
	reset := time.Now().Add(3 * time.Hour)
	var freeHits atomic.Int32
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if gjson.GetBytes(body, "model").Str == "vendor/free:free" {
			if freeHits.Add(1) == 1 {
				jsonHandler(429, fmt.Sprintf(`{"error":{"message":"Rate limit exceeded: free-models-per-day","code":429,`+
					`"metadata":{"headers":{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"%d"},"provider_name":null}}}`, reset.UnixMilli()))(w, r)
				return
			}
		}
		jsonHandler(200, okCompletion)(w, r)
	})
	cfg := testConfig(t, fp.URL, func(c *config.Config) {
		c.Admin.Token = auditAdminToken
		c.Models[0].Targets = []config.Target{{Provider: "fake", Model: "vendor/free:free"}, {Provider: "fake", Model: "vendor/paid"}}
	})
	url, admin := adminProvidersServer(t, cfg)
	chat := func() {
		t.Helper()
		if code := chatStatus(t, url); code != http.StatusOK {
			t.Fatalf("chat: %d; want 200 from the paid target", code)
		}
	}
	chat()
	chat()
	if n := freeHits.Load(); n != 1 {
		t.Fatalf("the free target was asked %d times; want once (cooled until its reset)", n)
	}

	code, list := admin(http.MethodGet, "/admin/api/providers")
	p := list.Get(`providers.#(name=="fake")`)
	if code != http.StatusOK || p.Get("cooling_until").Type != gjson.Null || p.Get("breaker").Str != "closed" {
		t.Fatalf("GET /admin/api/providers: %d %s; want fake itself closed and not cooling (its members as before)", code, list.Raw)
	}
	cooling := p.Get("cooling_targets").Array()
	if len(cooling) != 1 {
		t.Fatalf("cooling_targets of fake: %s; want the free target alone", p.Get("cooling_targets").Raw)
	}
	c := cooling[0]
	until, err := time.Parse(time.RFC3339, c.Get("cooling_until").Str)
	if c.Get("model").Str != "gpt-test" || c.Get("target").Str != "vendor/free:free" || c.Get("cooling_cause").Str != failover.CauseRateLimited ||
		err != nil || !until.Equal(reset.Truncate(time.Second)) {
		t.Errorf("cooling target: %s; want gpt-test's vendor/free:free, rate limited until %s", c.Raw, reset.UTC().Format(time.RFC3339))
	}

	code, body := admin(http.MethodPost, "/admin/api/providers/fake/reset")
	if code != http.StatusOK || !body.Get("provider.cooling_targets").IsArray() || len(body.Get("provider.cooling_targets").Array()) != 0 {
		t.Fatalf("reset: %d %s; want 200 and no cooling target left", code, body.Raw)
	}
	chat()
	if n := freeHits.Load(); n != 2 {
		t.Errorf("after the reset the free target was asked %d times in all; want 2 (asked again)", n)
	}
	if _, list := admin(http.MethodGet, "/admin/api/providers"); len(list.Get(`providers.#(name=="fake").cooling_targets`).Array()) != 0 {
		t.Errorf("after the reset: %s; want no cooling target", list.Raw)
	}
}

// TestAdminResetClosesAnOpenBreaker: an operator whose provider failed
// failover.breaker.failures times in a row (a broken key or base_url
// answering 5xx) fixes it and presses reset, as the README's alert list
// says to. The reset ended the cool-down alone: the breaker stayed open,
// the view still said "open" and every request of a model served by that
// provider alone was refused until breaker.cooldown ran out. The reset now
// closes the breaker too: the view says "closed" and the next request is
// served.
func TestAdminResetClosesAnOpenBreaker(t *testing.T) {
	var broke atomic.Bool
	broke.Store(true)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if broke.Load() {
			jsonHandler(500, `{"error":{"message":"internal error","type":"server_error"}}`)(w, r)
			return
		}
		jsonHandler(200, okCompletion)(w, r)
	})
	cfg := testConfig(t, fp.URL, func(c *config.Config) {
		c.Admin.Token = auditAdminToken
		c.Failover.Breaker.Failures = 1
		c.Failover.Breaker.Cooldown = config.Duration(time.Hour)
	})
	url, admin := adminProvidersServer(t, cfg)
	chat := func() int { return chatStatus(t, url) }
	if got := chat(); got < 500 {
		t.Fatalf("chat while the provider fails: %d; want a 5xx", got)
	}
	broke.Store(false) // the operator fixed the provider
	if _, list := admin(http.MethodGet, "/admin/api/providers"); list.Get(`providers.#(name=="fake").breaker`).Str != "open" {
		t.Fatalf("GET /admin/api/providers: %s; want fake's breaker open", list.Raw)
	}
	if got := chat(); got != http.StatusServiceUnavailable {
		t.Fatalf("chat with the breaker open: %d; want 503", got)
	}
	code, body := admin(http.MethodPost, "/admin/api/providers/fake/reset")
	if code != http.StatusOK || body.Get("provider.breaker").Str != "closed" {
		t.Errorf("reset: %d %s; want 200 and the breaker closed", code, body.Raw)
	}
	if got := chat(); got != http.StatusOK {
		t.Errorf("chat after the reset: %d; want 200", got)
	}
	if _, list := admin(http.MethodGet, "/admin/api/providers"); list.Get(`providers.#(name=="fake").breaker`).Str != "closed" {
		t.Errorf("GET /admin/api/providers after the reset: %s; want fake's breaker closed", list.Raw)
	}
}

// TestAdminShowsTargetLatency: under failover.strategy lowest-latency the
// router orders a model's targets by their measured latency, apart for
// streamed and whole answers, but the providers view showed none of it, so
// an operator who saw every request go to one provider could not see why.
// Each provider now lists its targets with the latency the router keeps,
// per kind, and when each was last measured; null before a first answer.
func TestAdminShowsTargetLatency(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	cfg := testConfig(t, fp.URL, func(c *config.Config) { c.Admin.Token = auditAdminToken })
	url, admin := adminProvidersServer(t, cfg)
	providers := func() gjson.Result {
		_, list := admin(http.MethodGet, "/admin/api/providers")
		return list
	}
	target := `providers.#(name=="fake").targets.#(model=="gpt-test")`
	before := providers().Get(target)
	if !before.Exists() || before.Get("latency_ms").Type != gjson.Null || before.Get("measured_at").Type != gjson.Null ||
		before.Get("stream_latency_ms").Type != gjson.Null || before.Get("stream_measured_at").Type != gjson.Null {
		t.Fatalf("before any request: %s; want gpt-test's target at fake, unmeasured", providers().Raw)
	}
	start := time.Now().Truncate(time.Second)
	if code := chatStatus(t, url); code != http.StatusOK {
		t.Fatalf("chat: %d", code)
	}
	after := providers().Get(target)
	at, err := time.Parse(time.RFC3339Nano, after.Get("measured_at").Str)
	if after.Get("target").Str != "vendor/upstream-model" || after.Get("latency_ms").Type != gjson.Number || after.Get("latency_ms").Float() < 0 ||
		err != nil || at.Before(start) || after.Get("stream_latency_ms").Type != gjson.Null {
		t.Errorf("after a non-stream answer: %s; want vendor/upstream-model's whole-answer latency and when, its stream latency null", after.Raw)
	}
}

// adminProvidersServer serves cfg (through a real router) on a chat
// listener, whose URL it returns, and its admin API, called through admin
// with the admin token: the answer's status and JSON body.
func adminProvidersServer(t *testing.T, cfg *config.Config) (string, func(method, path string) (int, gjson.Result)) {
	t.Helper()
	log := logging.New(&logtest.Buffer{}, slog.LevelInfo, cfg.Secrets())
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: prometheus.NewRegistry(), HashKey: []byte(cfg.Privacy.HashKey)})
	if err != nil {
		t.Fatal(err)
	}
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	return srv.URL, func(method, path string) (int, gjson.Result) {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+auditAdminToken)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code, gjson.Parse(rec.Body.String())
	}
}

// chatStatus is the status of a chat request of gpt-test to url, its body
// read.
func chatStatus(t *testing.T, url string) int {
	t.Helper()
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	readAll(t, resp.Body)
	return resp.StatusCode
}
