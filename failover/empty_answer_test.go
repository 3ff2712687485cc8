package failover

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestForwardedEmptyJSONAnswerIsTheAnswer: a forwarded call's 2xx answer
// with a JSON Content-Type and no body (a DELETE answered 200 with
// Content-Length: 0, or chunked with no bytes) was read as a malformed
// answer: the call was sent again (a DELETE twice) and then to the next
// target, and each was held against the provider's circuit breaker, which
// opened after a few such calls and took the provider out of every bot's
// chat. On a forwarded path it is the answer, as it came: its status and
// Content-Type, asked once, no failure counted. A chat completion still
// must be a JSON object (and a generation's empty answer is still none:
// TestNonStreamAnswerMustBeAJSONObject).
func TestForwardedEmptyJSONAnswerIsTheAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		chunked bool
		status  int
	}{
		{"Content-Length: 0", false, http.StatusOK},
		{"chunked, no bytes", true, http.StatusOK},
		{"202, Content-Length: 0", false, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hitsA, hitsB atomic.Int32
			a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				hitsA.Add(1)
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				if !tc.chunked {
					w.Header().Set("Content-Length", "0")
				}
				w.WriteHeader(tc.status)
				if tc.chunked {
					w.(http.Flusher).Flush() // chunked, and then no byte
				}
			}))
			t.Cleanup(a.Close)
			b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				hitsB.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"id":"b1","object":"chat.completion","model":"from b","choices":[{"index":0,"message":{"role":"assistant","content":"b"},"finish_reason":"stop"}]}`)
			}))
			t.Cleanup(b.Close)
			cfg := testConfig(map[string]string{"a": a.URL + "/v1", "b": b.URL + "/v1"}, []string{"a", "b"})
			r, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })

			calls := int(cfg.Failover.Breaker.Failures) + 1 // more than open the breaker
			for i := range calls {
				resp, err := r.Open(t.Context(), &Request{Model: "gpt", Method: http.MethodDelete, Path: "/files/file-1"})
				if err != nil {
					t.Fatalf("call %d: Open: %v; want a's empty answer", i, err)
				}
				var body []byte
				if resp.Piped() {
					body, err = io.ReadAll(resp)
					if err != nil {
						t.Fatalf("call %d: reading the body: %v", i, err)
					}
				} else {
					body = resp.Body
				}
				resp.Close()
				if resp.Provider != "a" || resp.StatusCode != tc.status || len(body) != 0 ||
					resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
					t.Fatalf("call %d: answered by %s, %d, %q, %d bytes; want a's %d, its Content-Type, no body",
						i, resp.Provider, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), tc.status)
				}
			}
			if h := [2]int32{hitsA.Load(), hitsB.Load()}; h != [2]int32{int32(calls), 0} {
				t.Errorf("providers saw a=%d b=%d for %d calls; want a once per call, b never", h[0], h[1], calls)
			}
			if st := statusOf(r, "a"); st.Breaker != "closed" {
				t.Errorf("a's breaker after %d empty answers: %s; want closed", calls, st.Breaker)
			}

			// A chat completion must still be a JSON object: a's empty
			// answer is none, and b answers.
			hitsA.Store(0)
			resp, err := r.Open(t.Context(), &Request{Model: "gpt", Method: http.MethodPost, Path: "/chat/completions", Body: chatBody(false)})
			if err != nil {
				t.Fatalf("chat completion: Open: %v; want b's answer", err)
			}
			resp.Close()
			if resp.Provider != "b" || hitsA.Load() == 0 {
				t.Errorf("chat completion answered by %s after a saw it %d times; want a asked, then b", resp.Provider, hitsA.Load())
			}
		})
	}
}
