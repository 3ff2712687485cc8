package failover

import (
	"bufio"
	"cmp"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestReplayable: a forwarded call is sent again after a failure the
// provider may have acted on only when a second send does no harm: a
// generation, which at worst is billed twice for one answer, or a method
// that changes nothing twice (GET, HEAD, DELETE, OPTIONS). A POST that
// creates something (a batch, a file, a fine-tuning job, a background
// Response) is sent at most once, however its JSON spells "background",
// in any case.
// A rerank or score call (vLLM, Jina, SiliconFlow, Cohere-compatible) is a
// generation too.
func TestReplayable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path, body string
		want               bool
	}{
		{"POST", "/chat/completions", `{"model":"m"}`, true},
		{"", "/chat/completions", `{"model":"m"}`, true}, // "" is POST
		{"POST", "/completions", `{"model":"m"}`, true},
		{"POST", "/embeddings", `{"model":"m"}`, true},
		{"POST", "/embeddings?api-version=1", `{"model":"m"}`, true},
		{"POST", "/moderations", `{"input":"x"}`, true},
		{"POST", "/responses", `{"model":"m","input":"hi"}`, true},
		{"POST", "/responses", `{"model":"m","input":"hi","background":false}`, true},
		{"POST", "/responses", `{"model":"m","input":"hi","background":null}`, true},
		{"POST", "/responses", `{"model":"m","input":"hi","background":true}`, false},
		{"POST", "/responses", `{"background":false,"model":"m","background":true}`, false}, // a provider reads the last
		{"POST", "/responses", `{"model":"m","metadata":{"background":true}}`, true},
		{"POST", "/responses", `{"model":"m","input":"x","backgr\u006fund":true}`, false}, // a JSON parser reads the key unescaped
		{"POST", "/responses", `{"model":"m","input":"x","\u0062ackground":1}`, false},
		{"POST", "/responses", `{"model":"m","input":"x","backgr\u006fund":false}`, true},
		{"POST", "/responses", `{"model":"m","input":"x","Background":true}`, false}, // Go's encoding/json (one-api, new-api) matches keys in any case
		{"POST", "/responses", `{"model":"m","input":"x","BACKGROUND":"yes"}`, false},
		{"POST", "/responses", `{"model":"m","input":"x","bac\u212aground":true}`, false}, // the Kelvin sign folds to "k"
		{"POST", "/responses", `{"model":"m","input":"x","Background":false}`, true},
		{"POST", "/audio/speech", `{"model":"m","input":"hi"}`, true},
		{"POST", "/audio/transcriptions", "--b\r\n", true},
		{"POST", "/audio/translations", "--b\r\n", true},
		{"POST", "/images/generations", `{"model":"m"}`, true},
		{"POST", "/images/edits", "--b\r\n", true},
		{"POST", "/images/variations", "--b\r\n", true},
		{"POST", "/rerank", `{"model":"m","query":"q","documents":["a"]}`, true}, // vLLM, Jina, SiliconFlow, Cohere's shape
		{"POST", "/score", `{"model":"m","text_1":"a","text_2":"b"}`, true},      // vLLM
		{"POST", "/rerank/", `{"model":"m"}`, false},
		{"GET", "/files/file-1", "", true},
		{"HEAD", "/files/file-1", "", true},
		{"DELETE", "/files/file-1", "", true},
		{"OPTIONS", "/files", "", true},
		{"POST", "/files", "--b\r\n", false},
		{"POST", "/uploads", `{"filename":"x"}`, false},
		{"POST", "/uploads/upload_1/parts", "--b\r\n", false},
		{"POST", "/batches", `{"input_file_id":"file-1"}`, false},
		{"POST", "/fine_tuning/jobs", `{"model":"m"}`, false},
		{"POST", "/assistants", `{"model":"m"}`, false},
		{"POST", "/threads", `{}`, false},
		{"POST", "/threads/thread_1/runs", `{"assistant_id":"a"}`, false},
		{"POST", "/vector_stores", `{}`, false},
		{"POST", "/responses/resp_1/cancel", "", false},
		{"POST", "/chat/completions/chatcmpl-1", `{"metadata":{}}`, false},
		{"POST", "/embeddings/", `{"model":"m"}`, false},
		{"PUT", "/embeddings", `{"model":"m"}`, false},
		{"PATCH", "/files/file-1", `{}`, false},
	}
	for _, tc := range tests {
		if got := Replayable(tc.method, tc.path, []byte(tc.body)); got != tc.want {
			t.Errorf("Replayable(%s %s %s) = %v; want %v", tc.method, tc.path, tc.body, got, tc.want)
		}
	}
}

// tlsToPlain is fake's base_url as https: the fake speaks plain HTTP, so
// the TLS handshake fails before any byte of a request is written.
func tlsToPlain(t *testing.T, fake string) string {
	return strings.Replace(fake, "http://", "https://", 1)
}

// resetAfterHead is the base_url of a server that reads a request's head
// and resets the connection (a provider's front refusing an upload
// mid-body): the request is not sent whole.
func resetAfterHead(t *testing.T, _ string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_ = c.(*net.TCPConn).SetLinger(0)
				_ = c.Close()
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/v1"
}

// closedURL is a base_url nothing listens at: a dial there fails before
// any byte of a request is written.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String() + "/v1"
	_ = ln.Close()
	return u
}

// TestAtMostOnceRequest: a forwarded POST that creates something (a batch
// here) used to go through chat's retry rules: after a 5xx, a head
// timeout or a connection lost once the request was written it was sent
// again, to the same provider or the next, and each provider that had
// acted on it created (and billed) its own batch. Such a request
// (Request.AtMostOnce) still moves on when the provider surely did not
// act on it: nothing of it was written (a dial error, a TLS handshake
// that failed), not all of it (a body cut mid-way: h1.ErrNotSent), or the
// provider refused it (429, 503, 529, another 4xx). Otherwise the round
// ends with the cause and a note that the request is sent at most once;
// its wait for a head is not cut at a share of the round's time, since no
// other target would be asked after it.
func TestAtMostOnceRequest(t *testing.T) {
	t.Parallel()
	created := func(c *fconn) { c.status(200, `{"id":"batch_1","object":"batch","status":"validating"}`) }
	tests := []struct {
		name       string
		a          func(c *fconn, n int)
		closedA    bool                                   // a's base_url refuses connections
		aURL       func(t *testing.T, fake string) string // a's base_url, given its fake's; nil: the fake's
		path, body string                                 // the request's; "": a batch's creation
		roundTime  time.Duration                          // failover.max_round_time; 0: the test default
		replayable bool                                   // the request is not AtMostOnce: the old rules apply

		wantFrom   string // "" when Open fails
		wantStatus int
		wantCode   string
		wantHits   [2]int
	}{
		{name: "500: the round ends, nothing sent again", a: always(statusFn(500, errBody("server_error", "", "boom"))),
			wantStatus: 502, wantCode: CauseServerError, wantHits: [2]int{1, 0}},
		{name: "502: the round ends", a: always(statusFn(502, "bad gateway")),
			wantStatus: 502, wantCode: CauseServerError, wantHits: [2]int{1, 0}},
		{name: "504: the round ends", a: always(statusFn(504, "")),
			wantStatus: 502, wantCode: CauseServerError, wantHits: [2]int{1, 0}},
		{name: "connection reset once the request was written: the round ends", a: always((*fconn).reset),
			wantStatus: 502, wantCode: CauseConnect, wantHits: [2]int{1, 0}},
		{name: "connection cut after the head: the round ends", a: always(func(c *fconn) {
			_, _ = c.c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":"))
			c.cut()
		}), wantStatus: 502, wantCode: CauseConnectionLost, wantHits: [2]int{1, 0}},
		{name: "a slow creation is waited for past its share of the round", roundTime: 600 * time.Millisecond,
			a: always(func(c *fconn) { c.pause(900 * time.Millisecond); created(c) }), wantFrom: "a", wantHits: [2]int{1, 0}},
		{name: "a 2xx error envelope: the round ends", a: always(statusFn(200, `{"error":{"code":502,"message":"upstream failed"}}`)),
			wantStatus: 502, wantCode: CauseServerError, wantHits: [2]int{1, 0}},
		{name: "an error as a stream's first event: the round ends", a: always(firstEvent(errBody("rate_limit_error", "rate_limit_exceeded", "slow"))),
			wantStatus: 429, wantCode: CodeRateLimitExceeded, wantHits: [2]int{1, 0}},
		{name: "no first event before first_token: the round ends", a: always(func(c *fconn) { c.sse(); c.pause(10 * tFirstToken) }),
			wantStatus: 504, wantCode: CauseFirstTokenTimeout, wantHits: [2]int{1, 0}},
		{name: "dial refused: nothing was sent, the next target", closedA: true, wantFrom: "b", wantHits: [2]int{0, 1}},
		{name: "TLS handshake failed: nothing was sent, the next target", aURL: tlsToPlain,
			path: "/responses/resp_1/cancel", body: "-", wantFrom: "b", wantHits: [2]int{0, 1}},
		{name: "an upload reset mid-body: not sent whole, the next target", aURL: resetAfterHead,
			path: "/files", body: strings.Repeat("x", 16<<20), wantFrom: "b", wantHits: [2]int{0, 1}},
		{name: "503 overloaded: not acted on, back-off then the next target", a: always(statusFn(503, "overloaded")),
			wantFrom: "b", wantHits: [2]int{2, 1}},
		{name: "529 overloaded: the next target", a: always(statusFn(529, errBody("overloaded_error", "", "overloaded"))),
			wantFrom: "b", wantHits: [2]int{2, 1}},
		{name: "429 rate limited: the next target", a: always(statusFn(429, errBody("rate_limit_error", "rate_limit_exceeded", "slow"))),
			wantFrom: "b", wantHits: [2]int{2, 1}},
		{name: "401: the next target", a: always(statusFn(401, errBody("invalid_request_error", "invalid_api_key", "bad key"))),
			wantFrom: "b", wantHits: [2]int{1, 1}},
		{name: "404: the next target", a: always(statusFn(404, errBody("invalid_request_error", "", "no such file"))),
			wantFrom: "b", wantHits: [2]int{1, 1}},
		{name: "a replayable call still fails over after a 502", replayable: true, a: always(statusFn(502, "bad gateway")),
			wantFrom: "b", wantHits: [2]int{2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": tc.a,
				"b": always(statusFn(200, `{"id":"batch_b","object":"batch","status":"validating"}`)),
			}, []string{"a", "b"}, func(c *config.Config) {
				if tc.closedA {
					c.Providers[0].BaseURL = closedURL(t)
				}
				if tc.aURL != nil {
					c.Providers[0].BaseURL = tc.aURL(t, c.Providers[0].BaseURL)
				}
				if tc.roundTime > 0 {
					c.Failover.MaxRoundTime = config.Duration(tc.roundTime)
				}
				if len(tc.body) > 1<<20 {
					// A 16 MiB upload, twice, under -race on a loaded
					// machine takes more than the suite's first-byte and
					// total seconds, which this case is not about.
					for i := range c.Providers {
						to := &c.Providers[i].Timeouts
						to.FirstByte, to.Total = config.Duration(time.Minute), config.Duration(time.Minute)
					}
				}
			})
			path, body := cmp.Or(tc.path, "/batches"),
				[]byte(cmp.Or(tc.body, `{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}`))
			if tc.body == "-" {
				body = []byte{} // bodyless
			}
			got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: path,
				Body: body, ContentType: "application/json", AtMostOnce: !tc.replayable})
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != tc.wantHits {
				t.Errorf("providers saw a=%d b=%d; want %v", h[0], h[1], tc.wantHits)
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
			if ue.Status != tc.wantStatus || ue.Code != tc.wantCode {
				t.Errorf("client gets %d %s; want %d %s", ue.Status, ue.Code, tc.wantStatus, tc.wantCode)
			}
			if !strings.Contains(ue.Message, "POST /batches is sent at most once") || !strings.Contains(ue.Message, "provider a may have acted on it") {
				t.Errorf("message %q does not say why nothing was sent again", ue.Message)
			}
		})
	}
}

// TestAtMostOnceRoundSpentUnsentMayNotHaveActed: an AtMostOnce call that no
// provider may have acted on is not reported as one that may have
// (UpstreamError.MayHaveActed, which the proxy answers with x-should-retry:
// false and which the drain deadline answers with a 504 saying to check
// first): here provider a refused it (a 503: not acted on), and the round's
// time was spent before b could be asked. The round's end was counted as
// an attempt the provider may have run, so the bot's SDK was told not to
// send again a call that no provider had made.
func TestAtMostOnceRoundSpentUnsentMayNotHaveActed(t *testing.T) {
	var clock *fakeClock
	e := newEnv(t, map[string]func(*fconn, int){
		"a": func(c *fconn, _ int) {
			clock.Advance(2 * time.Minute) // a slow refusal: the round's time is gone
			c.status(503, errBody("server_error", "", "overloaded"))
		},
	}, []string{"a", "b"}, nil)
	clock = e.clock
	got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/batches", ContentType: "application/json",
		Body: []byte(`{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}`), AtMostOnce: true})
	var ue *UpstreamError
	if !errors.As(got.openErr, &ue) {
		t.Fatalf("Open: %v (answered by %q); want an *UpstreamError", got.openErr, got.provider)
	}
	if ue.Class != CauseRoundTime || len(e.fakes["b"].hits()) != 0 {
		t.Fatalf("round ended by %q, b asked %d times; want %s before b was asked", ue.Class, len(e.fakes["b"].hits()), CauseRoundTime)
	}
	if ue.MayHaveActed {
		t.Errorf("the round says a provider may have acted on the call; want not: a refused it and b never had it")
	}
}
