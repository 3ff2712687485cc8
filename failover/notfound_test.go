package failover

import (
	"cmp"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestNotFoundOnEveryTarget: a provider's 404 used to end the round as a
// 502 upstream_model_not_found, whatever the path: files.retrieve of an
// unknown file got a 502, which SDKs retry, and never the NotFoundError
// they raise for a 404. A 404 still moves to the next target (it may
// serve the model, or the path, that this one does not), and when every
// target was asked and answered 404 the client gets the last one's 404
// with its reason. A round that passed a target over (cooling down,
// breaker open) proves nothing missing, and one where another target
// failed otherwise is not a 404 either.
func TestNotFoundOnEveryTarget(t *testing.T) {
	t.Parallel()
	noFile := func(name string) func(c *fconn, _ int) {
		return always(statusFn(404, `{"error":{"message":"No such File object: file-nope (`+name+`)","type":"invalid_request_error","param":"id","code":null}}`))
	}
	noModel := func(name string) func(c *fconn, _ int) {
		return always(statusFn(404, errBody("invalid_request_error", "model_not_found", "The model up-"+name+" does not exist")))
	}
	forbidden := func(name string) func(c *fconn, _ int) {
		return always(statusFn(403, errBody("invalid_request_error", "model_not_found", "Project `proj_abc` does not have access to model `up-"+name+"`")))
	}
	const deepSeekNoModel = `{"error":{"message":"Model Not Exist","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`
	tests := []struct {
		name       string
		path       string
		a, b       func(c *fconn, n int)
		coolB      bool
		wantStatus int
		wantType   string
		wantCode   string
		wantMsg    string
		wantHits   [2]int
	}{
		{name: "a file on every target", path: "/files/file-nope", a: noFile("a"), b: noFile("b"),
			wantStatus: 404, wantType: "invalid_request_error", wantMsg: "No such File object: file-nope (b)", wantHits: [2]int{1, 1}},
		{name: "a model on every target", path: "/chat/completions", a: noModel("a"), b: noModel("b"),
			wantStatus: 404, wantType: "invalid_request_error", wantCode: "model_not_found", wantMsg: "The model up-b does not exist", wantHits: [2]int{1, 1}},
		// OpenAI answers a project key not allowed the model with a 403
		// model_not_found, and DeepSeek an unknown model with a 400:
		// each the next target, and from every target the 404 the SDKs
		// raise as NotFoundError, code model_not_found, not a 502 they
		// retry for a model no target serves; a 403's text, which names
		// paygate's project, in paygate's words.
		{name: "a model forbidden on every target", path: "/chat/completions", a: forbidden("a"), b: forbidden("b"),
			wantStatus: 404, wantType: "invalid_request_error", wantCode: "model_not_found",
			wantMsg: "provider b does not give paygate's key access to the model", wantHits: [2]int{1, 1}},
		{name: "a model refused with a 400 on every target", path: "/chat/completions", a: noModel("a"), b: always(statusFn(400, deepSeekNoModel)),
			wantStatus: 404, wantType: "invalid_request_error", wantCode: "model_not_found", wantMsg: "Model Not Exist", wantHits: [2]int{1, 1}},
		{name: "a model forbidden while the other target cools down", path: "/chat/completions", a: forbidden("a"), coolB: true,
			wantStatus: 502, wantCode: CauseModelNotFound, wantHits: [2]int{1, 0}},
		{name: "a bare 404 page on every target", path: "/files/file-nope", a: always(statusFn(404, "404 page not found", "Content-Type: text/plain")),
			b: always(statusFn(404, "", "Content-Type: text/plain")), wantStatus: 404, wantType: "invalid_request_error",
			wantMsg: "provider b: not found (HTTP 404)", wantHits: [2]int{1, 1}},
		{name: "404, then server errors", path: "/files/file-nope", a: noFile("a"), b: always(statusFn(500, "")),
			wantStatus: 502, wantCode: CauseServerError, wantHits: [2]int{1, 2}},
		{name: "server errors, then 404", path: "/files/file-nope", a: always(statusFn(500, "")), b: noFile("b"),
			wantStatus: 502, wantCode: CauseModelNotFound, wantHits: [2]int{2, 1}},
		{name: "404 while the other target cools down", path: "/files/file-nope", a: noFile("a"), coolB: true,
			wantStatus: 502, wantCode: CauseModelNotFound, wantHits: [2]int{1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a, "b": tc.b}, []string{"a", "b"}, nil)
			if tc.coolB {
				providerOf(t, e.r, "b").coolDown(e.clock.Now().Add(time.Hour), coolReason{cause: CauseRateLimited})
			}
			req := &Request{Model: "gpt", Method: "GET", Path: tc.path}
			if tc.path == "/chat/completions" {
				req = &Request{Model: "gpt", Method: "POST", Path: tc.path, Body: chatBody(false), ContentType: "application/json"}
			}
			got := e.openReq(t.Context(), req)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v (answered by %q); want an *UpstreamError", got.openErr, got.provider)
			}
			if ue.Status != tc.wantStatus || ue.Code != tc.wantCode || (tc.wantType != "" && ue.Type != tc.wantType) {
				t.Errorf("got %d type %q code %q; want %d type %q code %q (%s)", ue.Status, ue.Type, ue.Code,
					tc.wantStatus, tc.wantType, tc.wantCode, ue.Message)
			}
			if !strings.Contains(ue.Message, tc.wantMsg) || strings.Contains(ue.Message, "proj_") {
				t.Errorf("message %q; want it to contain %q, and not paygate's project", ue.Message, tc.wantMsg)
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d; want a=%d b=%d", h[0], h[1], tc.wantHits[0], tc.wantHits[1])
			}
		})
	}
}

// TestNotFoundNeedsEveryTargetAsked: a round is a 404 only when every
// target was asked. With failover.max_attempts below the number of
// targets, the attempt budget used to end the round before c was asked,
// and the client still got a 404 (an SDK's NotFoundError, not retried)
// though c had the file. Such a round keeps its 5xx, which says the
// budget ran out.
func TestNotFoundNeedsEveryTargetAsked(t *testing.T) {
	t.Parallel()
	noFile := always(statusFn(404, `{"error":{"message":"No such File object: file-x","type":"invalid_request_error","param":"id","code":null}}`))
	tests := []struct {
		name        string
		maxAttempts int
		wantStatus  int
		wantCode    string
		wantHits    [3]int
	}{
		{"the budget ends before c", 2, 502, CauseModelNotFound, [3]int{1, 1, 0}},
		{"every target asked", 3, 404, "", [3]int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": noFile, "b": noFile, "c": noFile}, []string{"a", "b", "c"},
				func(c *config.Config) { c.Failover.MaxAttempts = tc.maxAttempts })
			got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "GET", Path: "/files/file-x"})
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v (answered by %q)", got.openErr, got.provider)
			}
			if ue.Status != tc.wantStatus || ue.Code != tc.wantCode {
				t.Errorf("got %d %q (%s); want %d %q", ue.Status, ue.Code, ue.Message, tc.wantStatus, tc.wantCode)
			}
			if tc.wantStatus != 404 && !strings.Contains(ue.Message, "max_attempts") {
				t.Errorf("message %q; want it to say the attempt budget ran out", ue.Message)
			}
			if h := [3]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits()), len(e.fakes["c"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw %v; want %v", h, tc.wantHits)
			}
		})
	}
}

// TestPreviousResponseOnAnotherTarget: a stored Responses conversation
// lives on the provider that answered its last turn, which failover may
// have made any target. Asked for the next turn, another provider answers
// OpenAI's 400 previous_response_not_found, which ended the round as the
// bot's own error: the target that holds the response was never asked.
// Such a 400 is a not-found, as a 404 model is: the next target, no
// cool-down, nothing against the breaker; when every target was asked
// and none has it, the client gets the provider's own 400.
func TestPreviousResponseOnAnotherTarget(t *testing.T) {
	t.Parallel()
	const (
		byCode  = `{"error":{"message":"Previous response with id 'resp_b1' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}`
		byParam = `{"error":{"message":"Previous response with id 'resp_b1' not found.","type":"invalid_request_error","param":"previous_response_id","code":null}}`
		badID   = `{"error":{"message":"Invalid 'previous_response_id': 'x'. Expected an ID that begins with 'resp'.","type":"invalid_request_error","param":"previous_response_id","code":"invalid_value"}}`
		found   = `{"id":"resp_b2","object":"response","status":"completed","output":[]}`
	)
	tests := []struct {
		name       string
		a, b       string // bodies of 400s; "" for b: found
		wantFrom   string
		wantStatus int
		wantCode   string
		wantHits   [2]int
	}{
		{name: "by its code", a: byCode, wantFrom: "b", wantHits: [2]int{1, 1}},
		{name: "by its param and message", a: byParam, wantFrom: "b", wantHits: [2]int{1, 1}},
		{name: "on every target", a: byCode, b: byCode, wantStatus: 400, wantCode: "previous_response_not_found", wantHits: [2]int{1, 1}},
		{name: "a bad id is the bot's error", a: badID, wantStatus: 400, wantCode: "invalid_value", wantHits: [2]int{1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bScript := always(statusFn(200, found))
			if tc.b != "" {
				bScript = always(statusFn(400, tc.b))
			}
			e := newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(400, tc.a)), "b": bScript}, []string{"a", "b"}, nil)
			got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/responses", ContentType: "application/json",
				Body: []byte(`{"model":"gpt","input":"and then?","previous_response_id":"resp_b1"}`)})
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d; want %v", h[0], h[1], tc.wantHits)
			}
			if st := statusOf(e.r, "a"); st.CoolingCause != "" || st.Breaker != "closed" {
				t.Errorf("a cooling for %q, breaker %s; want neither", st.CoolingCause, st.Breaker)
			}
			if tc.wantFrom != "" {
				if got.openErr != nil || got.provider != tc.wantFrom {
					t.Fatalf("answered by %q (%v); want %s", got.provider, got.openErr, tc.wantFrom)
				}
				return
			}
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v (answered by %q); want an *UpstreamError", got.openErr, got.provider)
			}
			if ue.Status != tc.wantStatus || ue.Code != tc.wantCode || ue.Type != "invalid_request_error" || ue.Param != "previous_response_id" {
				t.Errorf("got %d type %q code %q param %q (%s); want %d invalid_request_error %q previous_response_id",
					ue.Status, ue.Type, ue.Code, ue.Param, ue.Message, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

// TestStoredObjectOnAnotherModelsProvider: a call without a model that
// names a stored object in its path goes to the first model's targets
// (and, with SameUpstreamModel, only those serving its first target's
// upstream model), but the object was made by the provider of the model
// its creation named. Every target asked answered 404 and the bot got it,
// the provider that holds the object never asked. Such a 404 now moves on
// to one target of each provider not yet asked; a create (a POST to a
// collection) does not; a provider that fails or is passed over there
// leaves the round a 5xx (nothing proves the object missing), and one
// that refuses the path (403) leaves it the first 404.
func TestStoredObjectOnAnotherModelsProvider(t *testing.T) {
	t.Parallel()
	noObject := func(name string) func(c *fconn, _ int) {
		return always(statusFn(404, `{"error":{"message":"No such object (`+name+`)","type":"invalid_request_error","param":"id","code":null}}`))
	}
	tests := []struct {
		name       string
		method     string
		path       string
		same       bool // SameUpstreamModel, b a second target of the first model
		b          func(c *fconn, n int)
		wantFrom   string
		wantStatus int
		wantMsg    string
		wantHits   [3]int
		attempts   int // when not 2
	}{
		{name: "a file another model's provider holds", method: "GET", path: "/files/file-b", wantFrom: "b", wantHits: [3]int{1, 1, 0}},
		{name: "its content", method: "GET", path: "/files/file-b/content", wantFrom: "b", wantHits: [3]int{1, 1, 0}},
		{name: "a delete", method: "DELETE", path: "/files/file-b", wantFrom: "b", wantHits: [3]int{1, 1, 0}},
		{name: "a cancel", method: "POST", path: "/batches/batch_b/cancel", wantFrom: "b", wantHits: [3]int{1, 1, 0}},
		{name: "an update of an id", method: "POST", path: "/vector_stores/vs_b1", wantFrom: "b", wantHits: [3]int{1, 1, 0}},
		{name: "a target the same upstream model leaves out", method: "GET", path: "/responses/resp_b", same: true,
			wantFrom: "b", wantHits: [3]int{1, 1, 0}},
		{name: "nowhere", method: "GET", path: "/files/file-x", b: noObject("b"),
			wantStatus: 404, wantMsg: "No such object (c)", wantHits: [3]int{1, 1, 1}},
		{name: "another provider fails", method: "GET", path: "/files/file-x", b: always(statusFn(500, "")),
			wantStatus: 502, wantMsg: "upstream_server_error", wantHits: [3]int{1, 2, 1}},
		{name: "another provider refuses the path", method: "GET", path: "/files/file-x", b: always(statusFn(403, `{"error":{"message":"no","type":"permission_error"}}`)),
			wantStatus: 404, wantMsg: "No such object (a)", wantHits: [3]int{1, 1, 1}},
		{name: "another provider refuses the id's format", method: "GET", path: "/responses/gen-c1",
			b:        always(statusFn(400, `{"error":{"message":"Invalid 'response_id': 'gen-c1'. Expected an ID that begins with 'resp'.","type":"invalid_request_error","param":"response_id","code":null}}`)),
			wantFrom: "c", wantHits: [3]int{1, 1, 1}, attempts: 3},
		{name: "a create stays with the first model", method: "POST", path: "/batches",
			wantStatus: 404, wantMsg: "No such object (a)", wantHits: [3]int{1, 0, 0}},
		{name: "a create under a collection word", method: "POST", path: "/threads/runs",
			wantStatus: 404, wantMsg: "No such object (a)", wantHits: [3]int{1, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.b
			if b == nil {
				b = always(statusFn(200, `{"id":"x","object":"file"}`))
			}
			c := noObject("c")
			if tc.wantFrom != "" {
				c = always(statusFn(200, `{"id":"x","object":"file","from":"c"}`))
			}
			e := newEnv(t, map[string]func(*fconn, int){"a": noObject("a"), "b": b, "c": c}, []string{"a"}, func(cfg *config.Config) {
				if tc.same {
					cfg.Models[0].Targets = append(cfg.Models[0].Targets, config.Target{Provider: "b", Model: "up-b", Weight: 1})
				}
				cfg.Models = append(cfg.Models, config.Model{Name: "other", Strategy: "priority", Targets: []config.Target{
					{Provider: "a", Model: "other-a", Weight: 1}, {Provider: "b", Model: "other-b", Weight: 1}, {Provider: "c", Model: "other-c", Weight: 1}}})
			})
			var body []byte
			ct := ""
			if tc.method == "POST" {
				body, ct = []byte(`{"name":"x"}`), "application/json"
			}
			got := e.openReq(t.Context(), &Request{Method: tc.method, Path: tc.path, Body: body, ContentType: ct,
				SameUpstreamModel: tc.same, AtMostOnce: tc.method == "POST"})
			if h := [3]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits()), len(e.fakes["c"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw %v; want %v", h, tc.wantHits)
			}
			for _, p := range []string{"a", "b", "c"} {
				if st := statusOf(e.r, p); st.Breaker != "closed" || (tc.b == nil && st.CoolingCause != "") {
					t.Errorf("%s: breaker %s, cooling for %q; want a 404 held against no provider", p, st.Breaker, st.CoolingCause)
				}
			}
			if tc.wantFrom != "" {
				if got.openErr != nil || got.provider != tc.wantFrom {
					t.Fatalf("answered by %q (%v); want %s", got.provider, got.openErr, tc.wantFrom)
				}
				if want := cmp.Or(tc.attempts, 2); got.attempts != want {
					t.Errorf("%d attempts reported; want %d, both rounds'", got.attempts, want)
				}
				return
			}
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v (answered by %q); want an *UpstreamError", got.openErr, got.provider)
			}
			if ue.Status != tc.wantStatus || !strings.Contains(ue.Message+" "+ue.Code, tc.wantMsg) {
				t.Errorf("got %d %q (%s); want %d with %q", ue.Status, ue.Code, ue.Message, tc.wantStatus, tc.wantMsg)
			}
		})
	}
}
