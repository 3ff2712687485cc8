package failover

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
)

// TestProviderLinesCarryRequestID: failover's lines about a provider,
// written while a request's round runs (its key refused, in words or by
// status, a redirect, its quota spent, an answer taken though its framing
// was cut, its breaker opened by the request's failed attempt or by its
// stream's cut), carry that request's id from the context, as the attempt's
// failure line does, or an operator cannot tie them to the X-Request-Id the
// client was answered with. Every line of the round names the upstream model
// as target and the client's model as model, as the attempt's failure line,
// the admin API and the cool-down metric do: a line that put the upstream
// model under model was missed by a search for either.
func TestProviderLinesCarryRequestID(t *testing.T) {
	t.Parallel()
	const completion = `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"}],"usage":{"total_tokens":5}}`
	tests := []struct {
		name   string
		a      func(*fconn)
		msg    string
		stream bool
		// breaker, when set, is failover.breaker.failures: 1 opens it
		// at a's first failure.
		breaker int
	}{
		{"key wrong in words", statusFn(400, errBody("invalid_request_error", "", "Incorrect API key provided: xa***yz")),
			"upstream said in words that the provider key is wrong: next target, no cool-down", false, 0},
		{"redirect", statusFn(301, "<html>moved</html>", "Location: https://api.example.com/v1/chat/completions", "Content-Type: text/html"),
			"upstream answered a redirect: provider marked misconfigured", false, 0},
		{"key refused", statusFn(401, errBody("invalid_request_error", "invalid_api_key", "bad key")),
			"upstream refused the provider key: provider marked misconfigured", false, 0},
		{"out of quota", statusFn(429, errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota")),
			"upstream out of quota: provider out of service until reset or cool-down end", false, 0},
		{"framing cut", func(c *fconn) {
			fmt.Fprintf(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(completion)+2, completion)
			c.cut()
		}, "upstream answer complete, its framing cut: accepted", false, 0},
		{"out of quota mid-stream", func(c *fconn) {
			c.sse()
			c.event(roleChunk())
			c.event(contentChunk("from a"))
			c.event(errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota"))
			c.done()
		}, "upstream out of quota: provider out of service until reset or cool-down end", true, 0},
		{"breaker opened", statusFn(500, errBody("server_error", "", "boom")), "upstream breaker", false, 1},
		{"breaker opened at a stream's cut", func(c *fconn) {
			c.sse()
			c.event(roleChunk())
			c.event(contentChunk("from a"))
			c.cut()
		}, "upstream breaker", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			a := newFakeProvider(t, clock, always(tc.a))
			b := newFakeProvider(t, clock, healthy("b"))
			cfg := testConfig(map[string]string{"a": a.url, "b": b.url}, []string{"a", "b"})
			if tc.breaker != 0 {
				cfg.Failover.Breaker.Failures = tc.breaker
			}
			logs := &logtest.Buffer{}
			r, err := New(cfg, Options{Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets()),
				Now: clock.Now, Sleep: clock.Sleep, Jitter: func(d time.Duration) time.Duration { return d }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			const id = "req_failover_line_1"
			ctx := logging.WithRequestID(t.Context(), id)
			resp, err := r.Open(ctx, &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(tc.stream),
				Stream: tc.stream, ContentType: "application/json", Accept: "text/event-stream"})
			if err != nil {
				t.Fatalf("round failed: %v", err)
			}
			if tc.stream {
				for {
					if _, err := resp.Next(); err != nil {
						break
					}
				}
			} else {
				_, _ = io.Copy(io.Discard, resp)
			}
			resp.Close()
			found := false
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) != nil {
					continue
				}
				if m, ok := rec["model"]; ok && m != "gpt" {
					t.Errorf("model %v; want the client's model gpt (the upstream model is the target): %s", m, line)
				}
				if rec["msg"] != tc.msg {
					continue
				}
				found = true
				if rec["request_id"] != id {
					t.Errorf("request_id %v; want %q: %s", rec["request_id"], id, line)
				}
			}
			if !found {
				t.Fatalf("no %q line: %s", tc.msg, logs.String())
			}
		})
	}
}
