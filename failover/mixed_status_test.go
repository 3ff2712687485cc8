package failover

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/config"
)

// TestMixedCausesStatus: a round whose targets fail for different causes
// ends with one status, whichever target failed last. A refusal the bot
// can act on (its conversation too long for a model that serves it) is
// what it gets once no other target took the request, ahead of a model
// another target does not serve (a 404 or 403 model_not_found: the model
// exists, at the target that refused the length) and of a target that
// failed without a wait to tell (a 500, a silent provider), as README's
// "once no other target takes it" says; it used to reach the bot only
// when its target was asked last, and a round that asked the too-small
// target first ended as a 502 or 504 the SDKs retry, refused the same way
// each time. A target that refused with a rate limit or out of quota
// (unavailable for a while, as one cooling down and skipped) that might
// take the length makes it that target's 429 or 503 with its Retry-After,
// whichever came last, and so does one that refused paygate's key (out
// for the misconfigured cool-down), as when it was skipped cooling down
// for either; not when it serves the very upstream model that refused the
// length.
func TestMixedCausesStatus(t *testing.T) {
	t.Parallel()
	tooLong := always(statusFn(400, errBody("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 8192 tokens.")))
	noModel := always(statusFn(404, errBody("invalid_request_error", "model_not_found", "The model does not exist")))
	forbidden := always(statusFn(403, errBody("invalid_request_error", "model_not_found", "Project `proj_abc` does not have access to model `up-b`")))
	serverErr := always(statusFn(500, ""))
	limited := always(statusFn(429, errBody("requests", "rate_limit_exceeded", "Rate limit reached"), "Retry-After: 60"))
	quota := always(statusFn(429, errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota")))
	silent := always((*fconn).hang)
	badKey := always(statusFn(401, errBody("invalid_request_error", "invalid_api_key", "Incorrect API key provided")))
	const contextMsg = "This model's maximum context length is 8192 tokens."
	tests := []struct {
		name      string
		a, b, c   func(*fconn, int)
		sameModel bool // b serves a's upstream model
		status    int
		code      string
		msg       string        // "": not checked
		retry     time.Duration // the wait the round began; 0: none wanted
		provider  string        // whose error it is (UpstreamError.Provider)
	}{
		{name: "length, then a model not found", a: tooLong, b: noModel, status: 400, code: CauseContextLength, msg: contextMsg, provider: "a"},
		{name: "a model not found, then length", a: noModel, b: tooLong, status: 400, code: CauseContextLength, msg: contextMsg, provider: "b"},
		{name: "length, then a model forbidden", a: tooLong, b: forbidden, status: 400, code: CauseContextLength, msg: contextMsg, provider: "a"},
		{name: "length, then server errors", a: tooLong, b: serverErr, status: 400, code: CauseContextLength, msg: contextMsg, provider: "a"},
		{name: "server errors, then length", a: serverErr, b: tooLong, status: 400, code: CauseContextLength, msg: contextMsg, provider: "b"},
		{name: "length, then a silent provider", a: tooLong, b: silent, status: 400, code: CauseContextLength, msg: contextMsg, provider: "a"},
		{name: "length, a model not found, server errors", a: tooLong, b: noModel, c: serverErr, status: 400, code: CauseContextLength, msg: contextMsg, provider: "a"},
		{name: "length, then a long rate limit", a: tooLong, b: limited, status: 429, code: CodeRateLimitExceeded, retry: 60 * time.Second, provider: "b"},
		{name: "a long rate limit, then length", a: limited, b: tooLong, status: 429, code: CodeRateLimitExceeded, retry: 60 * time.Second, provider: "a"},
		{name: "length, then out of quota", a: tooLong, b: quota, status: 503, code: CauseUnavailable, retry: 30 * time.Minute, provider: "b"},
		{name: "length, then a key refused", a: tooLong, b: badKey, status: 503, code: CauseUnavailable, retry: 10 * time.Minute, provider: "b"},
		{name: "a key refused, then length", a: badKey, b: tooLong, status: 503, code: CauseUnavailable, retry: 10 * time.Minute, provider: "a"},
		{name: "a rate limit, server errors, then length", a: limited, b: serverErr, c: tooLong, status: 429, code: CodeRateLimitExceeded, retry: 60 * time.Second, provider: "a"},
		{name: "length, then its own model rate limited elsewhere", a: tooLong, b: limited, sameModel: true, status: 400, code: CauseContextLength, msg: contextMsg, provider: "a"},
		{name: "a model not found, then server errors", a: noModel, b: serverErr, status: 502, code: CauseServerError, provider: "b"},
		{name: "server errors, then a rate limit", a: serverErr, b: limited, status: 503, code: CauseRateLimited, retry: 60 * time.Second, provider: "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			targets := []string{"a", "b"}
			if tc.c != nil {
				targets = append(targets, "c")
			}
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a, "b": tc.b, "c": tc.c}, targets, func(c *config.Config) {
				if tc.sameModel {
					c.Models[0].Targets[1].Model = c.Models[0].Targets[0].Model
				}
			})
			got := e.open(t.Context(), true)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("got %v (served by %q); want an UpstreamError", got.openErr, got.provider)
			}
			if ue.Status != tc.status || ue.Code != tc.code {
				t.Errorf("status %d code %q; want %d %q (message %q)", ue.Status, ue.Code, tc.status, tc.code, ue.Message)
			}
			if tc.msg != "" && ue.Message != tc.msg {
				t.Errorf("message %q; want %q", ue.Message, tc.msg)
			}
			if tc.retry != 0 && (ue.RetryAfter > tc.retry || ue.RetryAfter <= tc.retry-time.Second) {
				t.Errorf("Retry-After %v; want the rest of %v (the round's pauses spent)", ue.RetryAfter, tc.retry)
			}
			if (ue.Status == http.StatusTooManyRequests || ue.Status == http.StatusServiceUnavailable) && ue.RetryAfter < time.Second {
				t.Errorf("a %d without a Retry-After", ue.Status)
			}
			if ue.Provider != tc.provider {
				t.Errorf("provider %q; want %q, whose error the client gets (message %q)", ue.Provider, tc.provider, ue.Message)
			}
		})
	}
}

// TestExcludedTargetAndTheModelMissingElsewhere: a turn's later round
// leaves out the target that refused an earlier round for its length
// (Request.ExcludeTargets), and the others say the model does not exist.
// The round asks the left-out target after all, as when none would be
// left, so the client gets its own refusal of the length, which it can
// act on; it got a 404 model_not_found for a model the left-out target
// serves, and a bot told so stops asking for it. A left-out target that
// takes the request now answers. The move to it is a failover from the
// target before it, counted as one to a later target in the round is.
func TestExcludedTargetAndTheModelMissingElsewhere(t *testing.T) {
	t.Parallel()
	tooLong := always(statusFn(400, errBody("invalid_request_error", "context_length_exceeded", "This model's maximum context length is 8192 tokens.")))
	for _, tc := range []struct {
		name   string
		a, b   func(*fconn, int)
		status int // 0: a answers
		code   string
		hits   [2]int
		bCause string  // the cause of b's failure
		moves  float64 // failovers counted from b for it
	}{
		{name: "a model not found", a: tooLong, b: always(statusFn(404, errBody("invalid_request_error", "model_not_found", "The model up-b does not exist"))),
			status: 400, code: CauseContextLength, hits: [2]int{1, 1}, bCause: CauseModelNotFound, moves: 1},
		{name: "a model forbidden", a: tooLong, b: always(statusFn(403, errBody("invalid_request_error", "model_not_found", "Project `proj_abc` does not have access to model `up-b`"))),
			status: 400, code: CauseContextLength, hits: [2]int{1, 1}, bCause: CauseModelNotFound, moves: 1},
		{name: "the left-out target answers", b: always(statusFn(404, errBody("invalid_request_error", "model_not_found", "The model up-b does not exist"))),
			hits: [2]int{1, 1}, bCause: CauseModelNotFound, moves: 1},
		{name: "server errors: not asked", a: tooLong, b: always(statusFn(500, "")), status: 502, code: CauseServerError, hits: [2]int{0, 2},
			bCause: CauseServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a, "b": tc.b}, []string{"a", "b"}, nil)
			got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(false),
				ContentType: "application/json", ExcludeTargets: []TargetName{{Provider: "a", Model: "up-a"}}})
			var ue *UpstreamError
			switch {
			case tc.status == 0:
				if got.openErr != nil || got.provider != "a" {
					t.Errorf("answered by %q (err %v); want a", got.provider, got.openErr)
				}
			case !errors.As(got.openErr, &ue):
				t.Errorf("got %v (served by %q); want an UpstreamError", got.openErr, got.provider)
			case ue.Status != tc.status || ue.Code != tc.code:
				t.Errorf("status %d code %q; want %d %q (message %q)", ue.Status, ue.Code, tc.status, tc.code, ue.Message)
			}
			if n := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; n != tc.hits {
				t.Errorf("a and b asked %v times; want %v", n, tc.hits)
			}
			if n := testutil.ToFloat64(e.r.m.failovers.WithLabelValues("gpt", "b", tc.bCause)); n != tc.moves {
				t.Errorf("%v failovers from b for %s; want %v", n, tc.bCause, tc.moves)
			}
		})
	}
}
