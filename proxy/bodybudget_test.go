package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/store/embedded"
)

// budgetBody is a chat request of exactly size bytes, an image in base64
// as vision bots send it, with members (each followed by a comma) after
// its model.
func budgetBody(size int, members string) []byte {
	head := `{"model":"gpt-test",` + members + `"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,`
	tail := `"}}]}]}`
	return []byte(head + strings.Repeat("A", size-len(head)-len(tail)) + tail)
}

// panicOnce is a ResponseWriter whose first WriteHeader panics, as a
// handler's bug would, after the body was read and the provider asked.
type panicOnce struct {
	http.ResponseWriter
	done bool
}

func (p *panicOnce) WriteHeader(code int) {
	if !p.done {
		p.done = true
		panic("test: a handler's panic after its body was read")
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *panicOnce) Flush() {}

// TestBodyBudgetRefusesLargeBodiesOverIt: while request bodies up to
// server.max_body_bytes_in_flight are held (a burst of image requests
// waiting on a slow provider), one more large body is answered 503 with
// Retry-After and an OpenAI error before it is read, on the chat route,
// chunked or not, and on a forwarded path; a small request is still
// served; once a held request ends, the refused one is admitted. Every
// byte taken is given back however its request ends: answered, refused,
// its body cut short, its client gone, its handler panicking. Without the
// budget every body was admitted and held with its copies, and a burst
// outgrew the container's memory limit.
func TestBodyBudgetRefusesLargeBodiesOverIt(t *testing.T) {
	const size = 900 << 10
	arrived := make(chan struct{}, 8)
	release := make(chan struct{})
	var holding atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		// Two large bodies are held until released; one more, which the
		// budget should have refused, is answered at once.
		if n > reserveUpTo && holding.Add(1) <= 2 {
			defer holding.Add(-1)
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		} else if n > reserveUpTo {
			holding.Add(-1)
		}
		if strings.HasSuffix(r.URL.Path, "/embeddings") {
			jsonHandler(200, `{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)(w, r)
			return
		}
		jsonHandler(200, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a cat"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)(w, r)
	}))
	t.Cleanup(up.Close)
	cfg := testConfig(t, up.URL, func(c *config.Config) {
		c.Server.MaxBodyBytes = 1 << 20
		c.Server.MaxBodyBytesInFlight = 2<<20 + 256<<10 // two bodies of size, not three
	})
	ended := make(chan struct{}, 16)
	s, url := servePaygate(t, cfg, Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() { ended <- struct{}{} }()
			if r.Header.Get("X-Test-Panic") != "" {
				defer func() { _ = recover() }()
				w = &panicOnce{ResponseWriter: w}
			}
			h.ServeHTTP(w, r)
		})
	})
	body := budgetBody(size, "")
	do := func(ctx context.Context, name, path string, b io.Reader, hdr ...string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, b)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return http.DefaultClient.Do(req)
	}
	type result struct {
		status int
		err    error
	}
	start := func(ctx context.Context, name string, hdr ...string) chan result {
		c := make(chan result, 1)
		go func() {
			resp, err := do(ctx, name, "/v1/chat/completions", bytes.NewReader(body), hdr...)
			if err != nil {
				c <- result{err: err}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c <- result{status: resp.StatusCode}
		}()
		return c
	}
	refused := func(what string, resp *http.Response, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s over the budget: %d, Retry-After %q: %s; want a 503 with Retry-After", what, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
		var e struct {
			Error struct{ Message, Type, Code string }
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Code != "request_bodies_busy" || !strings.Contains(e.Error.Message, "server.max_body_bytes_in_flight") {
			t.Fatalf("%s: the error %s; want an OpenAI error naming the budget", what, b)
		}
	}

	first, second := start(t.Context(), "first"), start(t.Context(), "second")
	<-arrived
	<-arrived
	// Two held: a third large body is refused, before it is read (a client
	// waiting on 100-continue sends none of it).
	resp, err := do(t.Context(), "third", "/v1/chat/completions", bytes.NewReader(body))
	refused("a third body", resp, err)
	<-ended
	resp, err = do(t.Context(), "chunked", "/v1/chat/completions", io.MultiReader(bytes.NewReader(body)))
	refused("a chunked body", resp, err)
	<-ended
	resp, err = do(t.Context(), "forwarded", "/v1/embeddings", bytes.NewReader(body))
	refused("a forwarded body", resp, err)
	<-ended
	// A text chat is served all the same.
	small := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	resp, err = do(t.Context(), "small", "/v1/chat/completions", strings.NewReader(small))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a small request beside the held ones: %v %v; want a 200", resp, err)
	}
	resp.Body.Close()
	<-ended
	// One held ends: a large body is admitted again.
	release <- struct{}{}
	var r result
	select { // whichever the provider answered
	case r = <-first:
		first = second
	case r = <-second:
	}
	if r.err != nil || r.status != 200 {
		t.Fatalf("a held request: %+v", r)
	}
	<-ended
	third := start(t.Context(), "third again")
	select {
	case <-arrived: // admitted: it reached the provider
	case r := <-third:
		t.Fatalf("a large body once a held one ended: %+v; want it admitted (%d bytes of the budget taken)", r, s.bodies.used.Load())
	}

	// Ends that are not answers give their bytes back too: a client gone
	// while its provider thinks, a handler that panics, a body cut short.
	release <- struct{}{}
	release <- struct{}{}
	for _, c := range []chan result{first, third} {
		if r := <-c; r.err != nil || r.status != 200 {
			t.Fatalf("a held request: %+v", r)
		}
		<-ended
	}
	ctx, cancel := context.WithCancel(t.Context())
	gone := start(ctx, "gone")
	<-arrived
	cancel()
	<-gone
	<-ended
	panicked := start(t.Context(), "panics", "X-Test-Panic", "1")
	<-arrived
	release <- struct{}{}
	<-panicked
	<-ended
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		testClientKey, size, body[:size/2])
	conn.(*net.TCPConn).CloseWrite()
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a body cut short: %v %v; want a 400", resp, err)
	}
	conn.Close()
	<-ended
	// A forwarded path gives its bytes back as the chat route does.
	resp, err = do(t.Context(), "forwarded small", "/v1/embeddings", strings.NewReader(`{"model":"gpt-test","input":"a cat"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a forwarded request: %v %v; want a 200", resp, err)
	}
	resp.Body.Close()
	<-ended
	if used := s.bodies.used.Load(); used != 0 {
		t.Fatalf("%d bytes of the budget still taken with no request in flight", used)
	}
	// And the budget holds two bodies again.
	a, b := start(t.Context(), "a"), start(t.Context(), "b")
	<-arrived
	<-arrived
	resp, err = do(t.Context(), "c", "/v1/chat/completions", bytes.NewReader(body))
	refused("a third body after the others ended", resp, err)
	release <- struct{}{}
	release <- struct{}{}
	<-a
	<-b
}

// TestBodyBudgetLimit: the budget is the key's, else an eighth of the
// memory limit, never below max_body_bytes, and none at -1 or without a
// memory limit.
func TestBodyBudgetLimit(t *testing.T) {
	for _, tc := range []struct {
		key, memory, want int64
	}{
		{0, 0, 0},
		{0, 256 << 20, 32 << 20},
		{0, 32 << 20, 8 << 20}, // raised to max_body_bytes
		{-1, 256 << 20, 0},
		{100 << 20, 256 << 20, 100 << 20},
		{100 << 20, 0, 100 << 20},
	} {
		s := config.Server{MaxBodyBytes: 8 << 20, MaxBodyBytesInFlight: tc.key}
		if got := bodyBudgetLimit(s, tc.memory); got != tc.want {
			t.Errorf("key %d, memory limit %d: budget %d; want %d", tc.key, tc.memory, got, tc.want)
		}
	}
}

// TestBodyCopiesHeldPerRequest measures what a request in flight holds,
// as a multiple of its body, while its provider thinks: the read body, the
// rewritten one and the provider's patched one (model and user set), and
// for a signed-in user's turn the body with the payment tools besides.
// The budget's default (an eighth of the memory limit, bodyBudgetLimit)
// counts on about four; a copy more would let a burst the budget admits
// outgrow the container again.
func TestBodyCopiesHeldPerRequest(t *testing.T) {
	const size, n = 2 << 20, 4
	for _, tc := range []struct {
		name   string
		user   bool
		most   float64
		stream bool
	}{{"plain", false, 3.4, false}, {"plain stream", false, 3.4, true}, {"payment turn", true, 4.4, false}, {"payment turn stream", true, 4.4, true}} {
		t.Run(tc.name, func(t *testing.T) {
			arrived, release := make(chan struct{}, n), make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				arrived <- struct{}{}
				<-release
				if tc.stream {
					w.Header().Set("Content-Type", "text/event-stream")
					w.Write(streamOf(2))
					return
				}
				jsonHandler(200, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a cat"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)(w, r)
			}))
			defer up.Close()
			o := Options{}
			if tc.user {
				o.Tools = noTools{}
				db, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), embedded.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				o.State = db
			}
			_, url := servePaygate(t, testConfig(t, up.URL, nil), o, nil)
			body := budgetBody(size, "")
			if tc.stream {
				body = budgetBody(size, `"stream":true,`)
			}
			send := func() {
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testClientKey)
				if tc.user {
					req.Header.Set("X-WeChat-OpenID", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("%d: %s", resp.StatusCode, b)
				}
			}
			go func() { <-arrived; release <- struct{}{} }()
			send() // the pools and caches filled
			before := liveHeap()
			var wg sync.WaitGroup
			for range n {
				wg.Go(send)
			}
			for range n {
				<-arrived
			}
			held := float64(int64(liveHeap())-int64(before)) / (n * size)
			for range n {
				release <- struct{}{}
			}
			wg.Wait()
			t.Logf("held per request in flight: %.2f × its body", held)
			if held > tc.most {
				t.Errorf("a request in flight holds %.2f × its body; want at most %.1f", held, tc.most)
			}
		})
	}
}

// liveHeap is the heap still reachable after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestBodyBudgetAdmitsTheLargestBodyBesideSmallOnes: a budget of
// server.max_body_bytes (the least the config allows, and what a derived
// one is raised to in a small container) admits a body of that size while
// text chats are in flight. Their bytes count, and counted against the
// large body, a busy text bot with a chat always waiting on its provider
// kept every body near the largest allowed refused with 503 on each retry,
// for as long as the traffic lasted: the config's promise that a body it
// allows can be read was broken by any small request at all.
func TestBodyBudgetAdmitsTheLargestBodyBesideSmallOnes(t *testing.T) {
	const limit = 1 << 20
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n <= reserveUpTo { // the text chat waits on its provider
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		jsonHandler(200, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a cat"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)(w, r)
	}))
	t.Cleanup(up.Close)
	cfg := testConfig(t, up.URL, func(c *config.Config) {
		c.Server.MaxBodyBytes = limit
		c.Server.MaxBodyBytesInFlight = limit
	})
	s, url := servePaygate(t, cfg, Options{}, nil)
	post := func(b io.Reader) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/v1/chat/completions", b)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got)
	}
	small := make(chan int, 1)
	go func() {
		code, _ := post(strings.NewReader(`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`))
		small <- code
	}()
	<-arrived
	large := budgetBody(limit, "")
	for _, tc := range []struct {
		name string
		body io.Reader
	}{{"declared", bytes.NewReader(large)}, {"chunked", io.MultiReader(bytes.NewReader(large))}} {
		if code, b := post(tc.body); code != 200 {
			t.Errorf("a %s body of max_body_bytes beside one text chat in flight: %d %s; want a 200", tc.name, code, b)
		}
	}
	close(release)
	if code := <-small; code != 200 {
		t.Fatalf("the text chat: %d", code)
	}
	if used := s.bodies.used.Load(); used != 0 {
		t.Fatalf("%d bytes of the budget still taken with no request in flight", used)
	}
}
