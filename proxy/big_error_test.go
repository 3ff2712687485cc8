package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// bigErrorBody is a provider's error answer of at least size bytes: an
// OpenAI error object whose message comes first and whose echo of the
// request follows (echoFirst false), or a FastAPI/pydantic validation error
// whose entry quotes the whole request ("input") before its "msg".
func bigErrorBody(size int, echoFirst bool) string {
	return bigErrorShape(size, map[bool]string{false: "openai", true: "pydantic"}[echoFirst])
}

// bigErrorShape is bigErrorBody of a shape: "openai", "pydantic", or
// "own", an object of a relay's own whose "message" follows the echo.
func bigErrorShape(size int, shape string) string {
	echo := strings.Repeat("ECHOED-PROMPT ", size/14+1)
	if shape == "own" {
		return `{"object":"error","input":"` + echo + `","message":"Input is too long"}`
	}
	if shape == "pydantic" {
		return `{"detail":[{"type":"string_too_long","loc":["body","messages",0,"content"],"input":{"messages":[{"role":"user","content":"` +
			echo + `"}]},"msg":"String should have at most 10 characters"}]}`
	}
	return `{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_too_long_custom","input":"` +
		echo + `"}}`
}

// TestProviderErrorLargerThanItsReadBound: a provider's error answer larger
// than paygate reads for its reason (64 KiB) used to be cut to invalid JSON
// and so lose its reason: the bot got an OpenAI error whose message said
// nothing of the cause and the log line had no reason. The reason is read
// from what was read when it is there, and said too large to read when it
// is past the cut; the echoed request reaches neither the bot nor the log;
// the status and the classification do not change with the size.
func TestProviderErrorLargerThanItsReadBound(t *testing.T) {
	t.Parallel()
	// turn sends one chat request to a provider answering body with status
	// (with a Content-Length when declared, else chunked) and returns the
	// bot's answer and the attempts' log lines.
	turn := func(t *testing.T, status int, body string, declared, stream bool) (int, string, []gjson.Result) {
		fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if declared {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		})
		url, logs := newTestProxy(t, testConfig(t, fp.URL, nil))
		resp := post(t, url, "/v1/chat/completions", fmt.Sprintf(`{"model":"gpt-test","stream":%t,"messages":[{"role":"user","content":"hi"}]}`, stream), nil)
		answer := readAll(t, resp.Body)
		if strings.Contains(logs.String(), "ECHOED") {
			t.Errorf("the log holds the echoed request")
		}
		var attempts []gjson.Result
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if gjson.Get(l, "msg").Str == "upstream attempt failed" {
				attempts = append(attempts, gjson.Parse(l))
			}
		}
		if len(attempts) == 0 {
			t.Fatalf("no attempt logged: %.2000s", logs.String())
		}
		return resp.StatusCode, answer, attempts
	}
	for _, size := range []int{64<<10 + 1, 3 << 20} {
		declared := size > 1<<20
		for _, shape := range []string{"openai", "pydantic", "own"} {
			for _, status := range []int{400, 500} {
				for _, stream := range []bool{false, true} {
					name := fmt.Sprintf("%d bytes/%s/%d/stream %t", size, shape, status, stream)
					echoFirst := shape != "openai"
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						body := bigErrorShape(size, shape)
						gotStatus, answer, attempts := turn(t, status, body, declared, stream)
						if !json.Valid([]byte(answer)) || !gjson.Get(answer, "error").IsObject() {
							t.Fatalf("answer is no OpenAI error JSON: %.300s", answer)
						}
						if strings.Contains(answer, "ECHOED") {
							t.Errorf("the bot got the echoed request: %.300s", answer)
						}
						// The same answer, small, is classified the same.
						smallStatus, smallAnswer, small := turn(t, status, bigErrorShape(100, shape), false, stream)
						if gotStatus != smallStatus || len(attempts) != len(small) ||
							attempts[0].Get("cause").Str != small[0].Get("cause").Str || attempts[0].Get("next").Str != small[0].Get("next").Str ||
							gjson.Get(answer, "error.code").Raw != gjson.Get(smallAnswer, "error.code").Raw {
							t.Errorf("status %d, %d attempts, cause %s, next %s, code %s; the small answer's: %d, %d, %s, %s, %s",
								gotStatus, len(attempts), attempts[0].Get("cause"), attempts[0].Get("next"), gjson.Get(answer, "error.code").Raw,
								smallStatus, len(small), small[0].Get("cause"), small[0].Get("next"), gjson.Get(smallAnswer, "error.code").Raw)
						}
						want := "This model's maximum context length is 8192 tokens"
						if echoFirst {
							want = fmt.Sprintf("the provider's error answer (over 65536 bytes) was too large to read its reason (HTTP %d)", status)
							if declared {
								want = fmt.Sprintf("the provider's error answer (%d bytes) was too large to read its reason (HTTP %d)", len(body), status)
							}
						}
						for _, a := range attempts {
							if got := a.Get("message").Str; got != want {
								t.Errorf("log line's message %q; want %q", got, want)
							}
						}
						msg := gjson.Get(answer, "error.message").Str
						if status == 400 && msg != want {
							t.Errorf("bot's error message %q; want %q", msg, want)
						}
						if status == 500 && msg != "no provider answered: fake: upstream_server_error (HTTP 500) x2" {
							t.Errorf("bot's error message %q; want the round's of a 500 failed over", msg)
						}
					})
				}
			}
		}
	}
}
