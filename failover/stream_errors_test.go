package failover

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/sse"
)

// TestChoiceLevelErrors: OpenRouter puts a provider's failure on the choice
// (https://openrouter.ai/docs/api-reference/errors): finish_reason "error"
// in a stream, choices[].error in a non-stream 200. Each is an error
// answer, classified and failed over, never an answer.
func TestChoiceLevelErrors(t *testing.T) {
	const head = `{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"google/gemini-2.5-pro","provider":"Google","choices":`
	tests := []struct {
		name   string
		stream bool
		a      func(c *fconn)
	}{
		{"stream: the first token-bearing event is an error finish", true, func(c *fconn) {
			c.sse()
			c.comment("OPENROUTER PROCESSING")
			c.event(head + `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null}]}`)
			c.event(head + `[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"MALFORMED_FUNCTION_CALL"}]}`)
			c.done()
		}},
		{"stream: a choice error object", true, firstEvent(head + `[{"index":0,"delta":{},"finish_reason":"error","error":{"code":502,"message":"Upstream melted"}}]}`)},
		{"non-stream: choice error in a 200", false, statusFn(200, `{"id":"gen-2","object":"chat.completion","created":1,"model":"meta/llama","provider":"Chutes","choices":[{"index":0,"finish_reason":"error","native_finish_reason":"error","error":{"code":502,"message":"Upstream melted"},"message":{"role":"assistant","content":""}}]}`)},
		{"non-stream: error finish in a 200", false, statusFn(200, `{"id":"gen-2","object":"chat.completion","created":1,"model":"meta/llama","choices":[{"index":0,"finish_reason":"error","message":{"role":"assistant","content":""}}]}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.a)}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), tc.stream)
			if got.provider != "b" {
				t.Errorf("served by %q (events %q, body %s, err %v); want the error classified and b to answer", got.provider, got.events, got.body, got.openErr)
			}
			if n := len(e.fakes["a"].hits()); n != 2 {
				t.Errorf("a saw %d requests; want 2 (a 502: one retry)", n)
			}
		})
	}
}

// deepSeekResourceFinish is how DeepSeek ends an answer its inference
// system had no resources to finish: finish_reason
// "insufficient_system_resource"
// (https://api-docs.deepseek.com/api/create-chat-completion), no error
// object.
const deepSeekResourceFinish = `{"id":"d1","object":"chat.completion.chunk","created":1,"model":"deepseek-chat","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"insufficient_system_resource"}]}`

// TestDeepSeekResourceFinish: DeepSeek's "insufficient_system_resource"
// finish is the provider overloaded, not an answer: before the first byte
// (the first event, or a non-stream 200) the next target answers; after
// it the stream ends as a cut, never as a finished answer that the bot
// would take, with its [DONE], for the whole of a half answer.
func TestDeepSeekResourceFinish(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream bool
		a      func(c *fconn)
	}{
		{"stream: the first event", true, firstEvent(deepSeekResourceFinish)},
		{"non-stream 200", false, statusFn(200, `{"id":"d2","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"insufficient_system_resource"}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.a)}, []string{"a", "b"}, nil)
			if got := e.open(t.Context(), tc.stream); got.provider != "b" {
				t.Errorf("served by %q (events %q, body %s, err %v); want b", got.provider, got.events, got.body, got.openErr)
			}
		})
	}
	// DeepSeek's FIM completion (legacy completions, base_url …/beta)
	// ends so too: forwarded, its stream's first event failed over, and
	// its non-stream answer must as well.
	fim := `{"id":"f1","object":"text_completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"insufficient_system_resource"}]}`
	for _, tc := range []struct {
		name   string
		stream bool
		a      func(c *fconn)
	}{
		{"forwarded FIM completion: the first event", true, firstEvent(fim)},
		{"forwarded FIM completion: non-stream 200", false, statusFn(200, fim)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.a)}, []string{"a", "b"}, nil)
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/completions",
				Body:        []byte(`{"model":"gpt","prompt":"def fib(a):","suffix":"    return fib(a-1) + fib(a-2)","stream":` + strconv.FormatBool(tc.stream) + `}`),
				ContentType: "application/json"})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			if resp.Provider != "b" {
				t.Errorf("answered by %q; want b", resp.Provider)
			}
		})
	}
	t.Run("mid-stream", func(t *testing.T) {
		e := newEnv(t, map[string]func(c *fconn, n int){"a": always(func(c *fconn) {
			c.sse()
			c.event(contentChunk("The plan costs"))
			c.event(deepSeekResourceFinish)
			c.done()
		})}, []string{"a", "b"}, nil)
		got := e.open(t.Context(), true)
		var se *StreamError
		if !errors.As(got.end, &se) || se.Cause != CauseStreamError || se.Refused() {
			t.Errorf("stream ended %v; want a *StreamError, not refused (another provider may finish it)", got.end)
		}
	})
}

// zhipuNetworkError is how Zhipu (BigModel, Z.AI) ends an answer its
// model failed to finish: finish_reason "network_error" (its chat API
// lists it beside stop, length, tool_calls and sensitive: the model's
// inference failed), no error object.
const zhipuNetworkError = `{"id":"z1","created":1,"model":"glm-4.6","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"network_error"}]}`

// TestZhipuNetworkErrorFinish: Zhipu's "network_error" finish is the
// provider's failure, not an answer: before the first byte the next
// target answers, after it the stream ends as a cut, never as a finished
// answer the bot would take, with its [DONE], for the whole of a half one.
func TestZhipuNetworkErrorFinish(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream bool
		a      func(c *fconn)
	}{
		{"stream: the first event", true, firstEvent(zhipuNetworkError)},
		{"non-stream 200", false, statusFn(200, `{"id":"z2","created":1,"model":"glm-4.6","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"network_error"}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.a)}, []string{"a", "b"}, nil)
			if got := e.open(t.Context(), tc.stream); got.provider != "b" {
				t.Errorf("served by %q (events %q, body %s, err %v); want b", got.provider, got.events, got.body, got.openErr)
			}
		})
	}
	t.Run("mid-stream", func(t *testing.T) {
		e := newEnv(t, map[string]func(c *fconn, n int){"a": always(func(c *fconn) {
			c.sse()
			c.event(contentChunk("The plan costs"))
			c.event(zhipuNetworkError)
			c.done()
		})}, []string{"a", "b"}, nil)
		got := e.open(t.Context(), true)
		var se *StreamError
		if !errors.As(got.end, &se) || se.Cause != CauseStreamError || se.Refused() {
			t.Errorf("stream ended %v; want a *StreamError, not refused (another provider may finish it)", got.end)
		}
	})
}

// TestChoiceErrorObjects: the classifier's view of choice-level errors,
// and of chunks that only look like one.
func TestChoiceErrorObjects(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		wantStatus int // 0: no error
		wantCause  string
	}{
		{"error finish", `{"choices":[{"index":0,"delta":{},"finish_reason":"error","native_finish_reason":"error"}]}`, 502, CauseServerError},
		{"choice error with a numeric code", `{"choices":[{"index":0,"finish_reason":"error","error":{"code":429,"message":"slow down"}}]}`, 429, CauseRateLimited},
		{"choice error with a content filter code", `{"choices":[{"index":0,"finish_reason":"error","error":{"code":"content_filter","message":"no"}}]}`, 400, CauseClientError},
		{"choice error without a code", `{"choices":[{"index":0,"error":{"message":"boom"}}]}`, 502, CauseServerError},
		{"deepseek out of resources", deepSeekResourceFinish, 503, CauseRateLimited},
		{"zhipu network_error finish", zhipuNetworkError, 502, CauseServerError},
		{"second choice's error finish", `{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null},{"index":1,"delta":{},"finish_reason":"error"}]}`, 502, CauseServerError},
		{"text ending in the word error", contentChunk("an error"), 0, ""},
		{"native reason error, finish null", `{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null,"native_finish_reason":"error"}]}`, 0, ""},
		{"stop with an error-named tool", `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"report_error","arguments":""}}]},"finish_reason":"stop"}]}`, 0, ""},
		{"null choice error", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop","error":null}]}`, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := errorObject([]byte(tc.data))
			switch {
			case tc.wantStatus == 0 && f != nil:
				t.Errorf("got %+v; want no error", f)
			case tc.wantStatus != 0 && (f == nil || f.status != tc.wantStatus || f.cause != tc.wantCause):
				t.Errorf("got %+v; want status %d cause %s", f, tc.wantStatus, tc.wantCause)
			}
		})
	}
}

// TestInStreamErrorClassified: an error after the first token ends the
// stream as a *StreamError (never io.EOF, so the client gets no [DONE])
// carrying the error object's classification: a content filter is
// Refused, to be passed to the client rather than finished elsewhere.
func TestInStreamErrorClassified(t *testing.T) {
	tests := []struct {
		name        string
		ev          string
		wantClass   string
		wantRefused bool
		wantCode    string
	}{
		{"openrouter error finish", `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]}`, CauseServerError, false, ""},
		{"openrouter mid-stream error object", `{"id":"c1","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`, CauseServerError, false, "server_error"},
		{"dashscope output moderation", dashScopeInspection, CauseClientError, true, "data_inspection_failed"},
		{"openrouter moderation", openRouterFlagged, CauseClientError, true, "403"},
		{"rate limit", errBody("", "rate_limit_exceeded", "slow"), CauseRateLimited, false, "rate_limit_exceeded"},
		// LiteLLM's proxy writes the status as a string code: a refusal
		// is not finished by another provider.
		{"litellm content policy, code as a string", `{"error":{"message":"litellm.ContentPolicyViolationError: flagged","type":"None","param":"None","code":"400"}}`, CauseClientError, true, "400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": always(func(c *fconn) { brokenStream(c, tc.ev) }),
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			var se *StreamError
			if !errors.As(got.end, &se) {
				t.Fatalf("stream from %q ended %v; want a *StreamError", got.provider, got.end)
			}
			if se.Cause != CauseStreamError || se.Class != tc.wantClass || se.Refused() != tc.wantRefused || se.Code != tc.wantCode {
				t.Errorf("got cause %s class %s refused %v code %q; want %s %s %v %q",
					se.Cause, se.Class, se.Refused(), se.Code, CauseStreamError, tc.wantClass, tc.wantRefused, tc.wantCode)
			}
			if tc.wantRefused && se.Message == "" {
				t.Errorf("a refusal without the provider's message: %+v", se)
			}
		})
	}
}

// TestErrorsWithoutAnErrorMember: providers that send an error's fields at
// the top level, with no "error" member: vLLM's and other OpenAI-compatible
// servers' {"object":"error",…}, an event {"type":"error",…}, and an event
// named "error" whatever its data holds. They were read as an answer: a
// non-stream 200 went to the bot as a success, and a stream event was
// relayed as a chunk, its text unmasked, before the stream ended as a lost
// connection. They are errors, with the message, code and type read from
// the top level.
func TestErrorsWithoutAnErrorMember(t *testing.T) {
	tests := []struct {
		name       string
		ev         sse.Event
		wantStatus int // 0: no error
		wantCause  string
		wantMsg    string
		wantType   string
		wantCode   string
	}{
		{"vLLM error object", sse.Event{Data: []byte(`{"object":"error","message":"bad key","type":"BadRequestError","param":null,"code":400}`)},
			400, CauseClientError, "bad key", "BadRequestError", "400"},
		{"type error event", sse.Event{Data: []byte(`{"type":"error","code":"invalid_api_key","message":"auth failed"}`)},
			401, CauseMisconfigured, "auth failed", "", "invalid_api_key"},
		{"type error without a message", sse.Event{Data: []byte(`{"type":"error"}`)},
			500, CauseServerError, "the provider sent an error without a message", "", ""},
		{"named error event, message only", sse.Event{Name: []byte("error"), Data: []byte(`{"message":"auth failed"}`)},
			500, CauseServerError, "auth failed", "", ""},
		{"named error event with an error object", sse.Event{Name: []byte("error"), Data: []byte(`{"error":{"code":"rate_limit_exceeded","message":"slow"}}`)},
			429, CauseRateLimited, "slow", "", "rate_limit_exceeded"},
		{"named error event, a string", sse.Event{Name: []byte("error"), Data: []byte(`"overloaded"`)},
			500, CauseServerError, "overloaded", "", ""},
		{"top-level message without the name", sse.Event{Data: []byte(`{"message":"hello"}`)}, 0, "", "", "", ""},
		{"a chunk under another name", sse.Event{Name: []byte("message"), Data: []byte(contentChunk("an error"))}, 0, "", "", "", ""},
		{"a tool named error", sse.Event{Data: []byte(`{"type":"function","name":"error"}`)}, 0, "", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := eventError(tc.ev)
			switch {
			case tc.wantStatus == 0:
				if f != nil {
					t.Errorf("got %+v; want no error", f)
				}
			case f == nil:
				t.Errorf("got no error; want status %d", tc.wantStatus)
			case f.status != tc.wantStatus || f.cause != tc.wantCause || f.errMsg != tc.wantMsg || f.errType != tc.wantType || f.errCode != tc.wantCode:
				t.Errorf("got status %d cause %s message %q type %q code %q; want %d %s %q %q %q",
					f.status, f.cause, f.errMsg, f.errType, f.errCode, tc.wantStatus, tc.wantCause, tc.wantMsg, tc.wantType, tc.wantCode)
			}
		})
	}
}

// TestErrorEventsWithoutAnErrorMemberInRounds: the same errors through a
// round. Before the first token they fail over as any error does; after
// it they end the stream as a *StreamError carrying the provider's
// message (which the proxy masks) instead of reaching the caller as a
// chunk; a non-stream 200 {"object":"error"} is the provider's refusal,
// not an answer.
func TestErrorEventsWithoutAnErrorMemberInRounds(t *testing.T) {
	const named = "event: error\ndata: {\"message\":\"auth failed for key k\"}\n\n"
	const typed = "data: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"auth failed for key k\"}\n\n"
	for _, ev := range []struct{ name, raw string }{{"named", named}, {"typed", typed}} {
		t.Run(ev.name+" before the first token", func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(func(c *fconn) {
				c.sse()
				c.event(roleChunk())
				c.chunk(ev.raw)
				c.done()
			})}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			if got.provider != "b" || !got.complete() {
				t.Errorf("served by %q, ended %v (open error %v); want a's error failed over to b", got.provider, got.end, got.openErr)
			}
		})
		t.Run(ev.name+" after the first token", func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(func(c *fconn) {
				c.sse()
				c.event(contentChunk("Hel"))
				c.chunk(ev.raw)
				c.done()
			})}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			var se *StreamError
			if !errors.As(got.end, &se) || se.Cause != CauseStreamError || se.Message != "auth failed for key k" {
				t.Fatalf("stream ended %v (%+v); want a stream error with the provider's message", got.end, se)
			}
			for _, d := range got.events {
				if strings.Contains(d, "auth failed") {
					t.Errorf("the error reached the caller as an event: %s", d)
				}
			}
		})
	}
	t.Run("non-stream 200 error object", func(t *testing.T) {
		e := newEnv(t, map[string]func(c *fconn, n int){
			"a": always(statusFn(200, `{"object":"error","message":"auth failed for key k","type":"BadRequestError","param":null,"code":400}`)),
		}, []string{"a", "b"}, nil)
		got := e.open(t.Context(), false)
		var ue *UpstreamError
		if !errors.As(got.openErr, &ue) || ue.Status != 400 || ue.Message != "auth failed for key k" || ue.Type != "BadRequestError" {
			t.Errorf("got body %q, error %v; want the provider's 400 refusal with its message", got.body, got.openErr)
		}
	})
}

// TestLateErrorAfterFinishIsComplete: a stream whose finish_reason came is
// complete (SPEC 5), whatever follows it before the connection ends. A
// provider's error event, or malformed events, after the finish must end
// it as io.EOF: a *StreamError made the proxy recover a whole answer from
// another provider (a second answer and finish, billed again) or send the
// bot an error event after its answer, and counted against the breaker a
// provider that had answered. Read with Buffered too, which skips
// malformed events itself.
func TestLateErrorAfterFinishIsComplete(t *testing.T) {
	tails := map[string]func(c *fconn){
		"error event":       func(c *fconn) { c.event(errBody("", "server_error", "late hiccup")); c.done() },
		"named error event": func(c *fconn) { c.chunk("event: error\ndata: {\"message\":\"late hiccup\"}\n\n"); c.done() },
		"3 malformed":       func(c *fconn) { c.event("{bad"); c.event("{bad"); c.event("{bad"); c.done() },
	}
	for name, tail := range tails {
		for _, buffered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, buffered %v", name, buffered), func(t *testing.T) {
				e := newEnv(t, map[string]func(c *fconn, n int){
					"a": func(c *fconn, n int) {
						if n > 1 {
							okStream(c, "again from a")
							return
						}
						c.sse()
						c.event(roleChunk())
						c.event(contentChunk("whole answer"))
						c.event(finishChunk())
						tail(c)
					},
				}, []string{"a", "b"}, func(c *config.Config) {
					c.Failover.Breaker = config.Breaker{Failures: 1, Cooldown: config.Duration(time.Hour)}
				})
				resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
					Body: chatBody(true), Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
				if err != nil {
					t.Fatal(err)
				}
				var text string
				for {
					if buffered {
						resp.Buffered()
					}
					ev, err := resp.Next()
					if err != nil {
						if !errors.Is(err, io.EOF) {
							t.Errorf("stream with its finish_reason ended with %v; want io.EOF (complete)", err)
						}
						break
					}
					text += gjson.GetBytes(ev.Data, "choices.0.delta.content").String()
				}
				resp.Close()
				if text != "whole answer" {
					t.Errorf("text %q; want the whole answer once", text)
				}
				// The breaker trips at one failure: a provider that answered
				// whole must still be asked first.
				if got := e.open(t.Context(), true); got.provider != "a" || !got.complete() {
					t.Errorf("the next round was served by %q (%v); want a, whose breaker counted no failure", got.provider, got.end)
				}
			})
		}
	}
}

// TestLateErrorBeforeEveryChoiceFinished: with n=2, an error event after
// the first choice's finish but before the second choice was shown is a
// cut, as the connection's end there is (streamEnd): the stream is whole
// only once every choice asked for was shown and finished.
func TestLateErrorBeforeEveryChoiceFinished(t *testing.T) {
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": always(func(c *fconn) {
			c.sse()
			c.event(roleChunk())
			c.event(contentChunk("first choice"))
			c.event(finishChunk())
			c.event(errBody("", "server_error", "second choice failed"))
			c.done()
		}),
	}, []string{"a"}, nil)
	got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
		Body:   []byte(`{"model":"gpt","stream":true,"n":2,"messages":[{"role":"user","content":"hi"}]}`),
		Stream: true, Choices: 2, ContentType: "application/json", Accept: "text/event-stream"})
	var se *StreamError
	if !errors.As(got.end, &se) || se.Cause != CauseStreamError {
		t.Errorf("stream ended %v; want a stream error (choice 1 never shown)", got.end)
	}
}

// TestStreamErrorReasonHidesErr: the client's words for a stream's end name
// its cause, never the underlying error's text (Go's read error names both
// ends' addresses); the provider's own error object is quoted.
func TestStreamErrorReasonHidesErr(t *testing.T) {
	raw := errors.New("read tcp 10.0.0.1:51234->10.0.0.2:443: read: connection reset by peer")
	for _, cause := range []string{CauseConnectionLost, CauseIdleTimeout, CauseTotalTimeout, CauseRoundTime, CauseMalformed,
		CauseResponseTooLarge, CauseCanceled, CauseStreamError, "something_new"} {
		se := &StreamError{Provider: "a", Cause: cause, Err: raw}
		if r := se.Reason(); r == "" || strings.Contains(r, "10.0.0") {
			t.Errorf("%s: reason %q; want fixed words without the error's text", cause, r)
		}
	}
	se := &StreamError{Provider: "a", Cause: CauseStreamError, Err: raw, Status: 500, Code: "server_error", Message: "Provider disconnected"}
	if r := se.Reason(); !strings.Contains(r, "Provider disconnected") || !strings.Contains(r, "server_error") {
		t.Errorf("reason %q; want the provider's error object quoted", r)
	}
	se = &StreamError{Provider: "a", Cause: CauseConnectionLost, Err: errDoneBeforeFinish}
	if r := se.Reason(); !strings.Contains(r, "[DONE]") {
		t.Errorf("reason %q; want it to say the stream ended with [DONE] before its finish", r)
	}
}

// TestEmptyErrorBesideChoicesIsNoError: a chat completion with valid
// choices and an empty "error" member ({}, "", [] or null, as some relays
// put one on every answer) is the answer: it was classified a 500, thrown
// away and generated (and billed) again elsewhere. An empty error with no
// choices beside it stays what it was.
func TestEmptyErrorBesideChoicesIsNoError(t *testing.T) {
	for _, empty := range []string{`{}`, `""`, `[]`, `null`, `{ }`} {
		t.Run("non-stream "+empty, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": always(statusFn(200, `{"id":"c1","object":"chat.completion","error":`+empty+`,"choices":[{"index":0,"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"}]}`)),
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), false)
			if got.openErr != nil || got.provider != "a" || !strings.Contains(got.body, "from a") {
				t.Errorf("served by %q (%v): %s; want a's answer", got.provider, got.openErr, got.body)
			}
		})
		t.Run("stream "+empty, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": always(func(c *fconn) {
					c.sse()
					c.event(`{"id":"c1","object":"chat.completion.chunk","error":` + empty + `,"choices":[{"index":0,"delta":{"role":"assistant","content":"from a"},"finish_reason":null}]}`)
					c.event(`{"id":"c1","object":"chat.completion.chunk","error":` + empty + `,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`)
					c.done()
				}),
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			if got.openErr != nil || got.provider != "a" || !got.complete() || got.text != "from a" {
				t.Errorf("served by %q (%v), ended %v, text %q; want a's whole answer", got.provider, got.openErr, got.end, got.text)
			}
		})
	}
	for _, f := range []string{`{"error":{}}`, `{"error":""}`, `{ "error" : [ ] }`, `{"error":{},"message":"boom"}`} {
		if errorObject([]byte(f)) == nil {
			t.Errorf("%s: no error; want the error it was (nothing beside it makes it an answer)", f)
		}
	}
}

// TestEmptyErrorBesideAnswerMembersIsNoError: an empty "error" member is no
// error beside any member that makes the object an answer, not only
// non-empty choices: the include_usage chunk after the finish ("choices":[]
// and the usage) and Azure's first chunk ("choices":[] and
// prompt_filter_results) of a relay that puts "error":{} on every chunk.
// The usage chunk ended the stream as an "error event after the finish"
// (the bot got no usage, the ledger priced 0 tokens), Azure's first chunk
// was a 500 before the first byte (every provider asked, then a 502). An
// error that says something is one whatever is beside it.
func TestEmptyErrorBesideAnswerMembersIsNoError(t *testing.T) {
	for _, f := range []string{
		`{"error":{},"choices":[]}`,
		`{"id":"c1","object":"chat.completion.chunk","error":{},"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`,
		`{"error":"","usage":{"prompt_tokens":1}}`,
		`{"id":"","object":"","error":[],"choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}`,
		`{"error":{},"prompt_filter_results":[]}`,
		`{"error":{},"id":"c1"}`,
		`{"error":{},"object":"chat.completion.chunk"}`,
	} {
		if got := errorObject([]byte(f)); got != nil {
			t.Errorf("%s: an error (status %d); want the answer it is", f, got.status)
		}
		if got := answerError("/chat/completions", []byte(f)); got != nil {
			t.Errorf("%s: an error answer (status %d); want the answer it is", f, got.status)
		}
	}
	for _, f := range []string{`{"id":"c1","error":{"message":"boom"},"choices":[]}`, `{"error":"boom","usage":{}}`, `{"object":"error","error":{}}`} {
		if errorObject([]byte(f)) == nil {
			t.Errorf("%s: no error; want the error it says", f)
		}
	}
	const c = `{"id":"c1","object":"chat.completion.chunk","error":{},"choices":`
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": always(func(fc *fconn) {
			fc.sse()
			fc.event(`{"id":"","object":"","created":0,"model":"","error":{},"choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}`)
			fc.event(c + `[{"index":0,"delta":{"role":"assistant","content":"from a"},"finish_reason":null}]}`)
			fc.event(c + `[{"index":0,"delta":{},"finish_reason":"stop"}]}`)
			fc.event(c + `[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`)
			fc.done()
		}),
	}, []string{"a", "b"}, nil)
	got := e.open(t.Context(), true)
	if got.openErr != nil || got.provider != "a" || !got.complete() || got.text != "from a" {
		t.Fatalf("served by %q (%v), ended %v, text %q; want a's whole answer", got.provider, got.openErr, got.end, got.text)
	}
	if last := got.events[len(got.events)-1]; gjson.Get(last, "usage.total_tokens").Int() != 15 {
		t.Errorf("last event %s; want the usage chunk", last)
	}
}

// TestErrorReadAheadByBuffered: an error after the first token that
// Buffered reads ahead (it came in one write with the chunk before it)
// ends the stream as a *StreamError, as one Next reads itself does. Next
// checks a read-ahead event with the marks Buffered's validating pass
// found in it (scanEvent): the error object, a choice finished with
// "error" (OpenRouter) and DeepSeek's insufficient_system_resource are
// each known by a mark, and one lost on the way made Next relay the
// provider's error to the bot as a chunk and wait for more.
func TestErrorReadAheadByBuffered(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"error object", errBody("server_error", "overloaded", "overloaded for key k")},
		{"choice finished with error", `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"error"}]}`},
		{"insufficient_system_resource", `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"` + resourceFinish + `"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": func(c *fconn, n int) {
					c.sse()
					c.chunk("data: " + contentChunk("Hel") + "\n\ndata: " + contentChunk("lo") + "\n\ndata: " + tc.data + "\n\n")
					<-release
					c.event(finishChunk())
					c.done()
				},
			}, []string{"a"}, nil)
			releaseOnce := sync.OnceFunc(func() { close(release) })
			t.Cleanup(releaseOnce) // before the fake provider's own cleanup waits for the script
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
				Body: chatBody(true), Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Close()
			var events []string
			readAhead := false
			for {
				if resp.Buffered() {
					readAhead = readAhead || len(events) == 2
				} else {
					releaseOnce() // the error was not read ahead: Next is not to wait for it
				}
				ev, err := resp.Next()
				if err != nil {
					var se *StreamError
					if !errors.As(err, &se) || se.Cause != CauseStreamError {
						t.Errorf("stream ended %v; want a *StreamError of cause %s", err, CauseStreamError)
					}
					break
				}
				events = append(events, string(ev.Data))
			}
			if !readAhead {
				t.Fatal("Buffered did not read the error ahead: the provider's one write came in parts")
			}
			if len(events) != 2 {
				t.Errorf("events %q; want the two content chunks and no more", events)
			}
		})
	}
}
