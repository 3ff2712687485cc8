package failover

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
)

// TestNonStreamAnswerMustBeAJSONObject: a 2xx non-stream answer whose body
// is empty, truncated JSON or an HTML page (a CDN's or WAF's interstitial)
// used to reach the client as a successful answer, which its SDK then failed
// to parse. A chat completion, and any answer whose Content-Type says JSON,
// is now an answer only as a JSON object; anything else is a malformed
// answer (the same target once more, then the next), while the binary
// answers of passthrough paths (speech, a file's content) go through as
// they are. A chat completion must hold its choices too: a JSON object
// without them (Baidu Qianfan's {"error_code":18,"error_msg":"Open api qps
// request limit reached"} with 200, an empty {}) reached the bot as a
// successful, empty answer.
func TestNonStreamAnswerMustBeAJSONObject(t *testing.T) {
	t.Parallel()
	const completion = `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"}]}`
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		wantFrom    string // "b": a's answer was malformed
	}{
		{"chat: empty body", "/chat/completions", "application/json", "", "b"},
		{"chat: truncated JSON", "/chat/completions", "application/json", completion[:60], "b"},
		{"chat: an HTML page", "/chat/completions", "text/html", "<html><body>Just a moment...</body></html>", "b"},
		{"chat: an HTML page sent as JSON", "/chat/completions", "application/json", "<html><body>502</body></html>", "b"},
		{"chat: a JSON array", "/chat/completions", "application/json", `[` + completion + `]`, "b"},
		{"chat: a JSON string", "/chat/completions", "application/json", `"from a"`, "b"},
		{"chat: a provider's error in a 200 (Qianfan)", "/chat/completions", "application/json", `{"error_code":18,"error_msg":"Open api qps request limit reached"}`, "b"},
		{"chat: a relay's busy code in a 200", "/chat/completions", "application/json", `{"code":50001,"msg":"system busy, please retry"}`, "b"},
		{"chat: an empty object", "/chat/completions", "application/json", `{}`, "b"},
		{"chat: empty choices", "/chat/completions", "application/json", `{"id":"c1","object":"chat.completion","choices":[]}`, "b"},
		{"chat: choices not an array", "/chat/completions", "application/json", `{"id":"c1","object":"chat.completion","choices":{}}`, "b"},
		{"chat: a completion after keep-alive whitespace", "/chat/completions", "application/json", "\n\n " + completion, "a"},
		{"chat with a query: empty body", "/chat/completions?api-version=2024-06-01", "application/json", "", "b"},
		{"passthrough JSON: truncated", "/embeddings", "application/json; charset=utf-8", `{"object":"list","data":[{"embedd`, "b"},
		{"passthrough +json: empty body", "/embeddings", "application/vnd.api+json", "", "b"},
		{"passthrough JSON: an object", "/embeddings", "application/json", `{"object":"list","data":[],"model":"from a"}`, "a"},
		{"passthrough audio", "/audio/speech", "audio/mpeg", "ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb", "a"},
		{"passthrough text", "/files/f1/content", "text/plain", "from a, line 1\n", "a"},
		{"passthrough without a body", "/files/f1/content", "application/octet-stream", "", "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := askAThenB(t, tc.path, statusFn(200, tc.body, "Content-Type: "+tc.contentType), tc.wantFrom)
			if tc.wantFrom == "a" && body != tc.body {
				t.Errorf("body %q; want a's as sent, %q", body, tc.body)
			}
		})
	}
}

// TestNonStreamWholeAnswerWithCutFraming: a non-stream answer whose whole
// JSON arrived but whose framing was then cut (a chunked body without its
// last chunk, fewer bytes than its Content-Length) was failed as a lost
// connection: a asked again, then b, each generating and billing the
// answer anew. As a stream that ends after its finish reason is complete,
// such an answer is now taken when the bytes read are one valid JSON
// object (a chat completion's with its choices). A body cut inside the
// JSON still fails over.
func TestNonStreamWholeAnswerWithCutFraming(t *testing.T) {
	t.Parallel()
	const completion = `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from a"},"finish_reason":"stop"}],"usage":{"total_tokens":5}}`
	const embeddings = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"from a"}`
	chunkedCut := func(body string) func(*fconn) { return chunkedThen(body, (*fconn).cut) }
	shortCut := func(body string) func(*fconn) {
		return func(c *fconn) {
			fmt.Fprintf(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body)+2, body)
			c.cut()
		}
	}
	tests := []struct {
		name, path string
		a          func(*fconn)
		wantFrom   string
	}{
		{"chat: whole, no last chunk", "/chat/completions", chunkedCut(completion), "a"},
		{"chat: whole, then white space, no last chunk", "/chat/completions", chunkedCut(completion + "\n"), "a"},
		{"chat: whole, short of its Content-Length", "/chat/completions", shortCut(completion), "a"},
		{"chat: cut inside the JSON", "/chat/completions", chunkedCut(completion[:len(completion)-1]), "b"},
		{"chat: whole, then its connection reset", "/chat/completions", chunkedThen(completion, (*fconn).reset), "a"},
		{"chat: whole, then silent past idle", "/chat/completions", chunkedThen(completion, (*fconn).hang), "a"},
		{"chat: reset inside the JSON", "/chat/completions", chunkedThen(completion[:len(completion)-1], (*fconn).reset), "b"},
		{"embeddings: whole, then its connection reset", "/embeddings", chunkedThen(embeddings, (*fconn).reset), "a"},
		{"chat: an object without choices", "/chat/completions", chunkedCut(`{"id":"c1","object":"chat.completion"}`), "b"},
		{"chat: an error object", "/chat/completions", chunkedCut(errBody("server_error", "", "boom")), "b"},
		{"embeddings: whole, no last chunk", "/embeddings", chunkedCut(embeddings), "a"},
		{"embeddings: cut inside the JSON", "/embeddings", chunkedCut(embeddings[:40]), "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if body := askAThenB(t, tc.path, tc.a, tc.wantFrom); tc.wantFrom == "a" && !strings.Contains(body, "from a") {
				t.Errorf("body %q; want a's answer", body)
			}
		})
	}
}

// chunkedThen answers 200 with body, JSON in one chunk of a chunked
// answer, and then does then (cut: no last chunk, reset, hang).
func chunkedThen(body string, then func(*fconn)) func(*fconn) {
	return func(c *fconn) {
		_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
		c.chunk(body)
		then(c)
	}
}

// askAThenB opens a non-stream POST of path on the targets a and b, a
// answering as a does, and checks who answered: wantFrom "a", a at once;
// "b", a once more (a lost connection or a malformed answer), then b. It
// returns the body answered.
func askAThenB(t *testing.T, path string, a func(*fconn), wantFrom string) string {
	t.Helper()
	e := newEnv(t, map[string]func(*fconn, int){"a": always(a)}, []string{"a", "b"}, nil)
	got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: path, Body: chatBody(false),
		ContentType: "application/json"})
	if got.openErr != nil || got.provider != wantFrom {
		t.Fatalf("answered by %q with %q (err %v) after %d attempts; want %s", got.provider, got.body, got.openErr, got.attempts, wantFrom)
	}
	wantHits := [2]int{1, 0}
	if wantFrom == "b" {
		wantHits = [2]int{2, 1}
	}
	if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != wantHits {
		t.Errorf("providers saw a=%d b=%d; want a=%d b=%d", h[0], h[1], wantHits[0], wantHits[1])
	}
	return got.body
}

// TestStoredCompletionsListIsAnAnswer: GET /v1/chat/completions lists the
// stored chat completions (OpenAI's "List Chat Completions"), an object
// without choices. Only a POST there is a chat completion: the list was
// thrown away as malformed, asked again, and the bot got a 502.
func TestStoredCompletionsListIsAnAnswer(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"object":"list","data":[{"object":"chat.completion","id":"chatcmpl-1","model":"gpt-4o","created":1738960610,"choices":[{"index":0,"message":{"content":"hi","role":"assistant"},"finish_reason":"stop","logprobs":null}]}],"first_id":"chatcmpl-1","last_id":"chatcmpl-1","has_more":false}`,
		`{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}`,
	} {
		e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(200, body))}, []string{"a"}, nil)
		got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "GET", Path: "/chat/completions?limit=10", SameUpstreamModel: true})
		if got.openErr != nil || got.body != body {
			t.Errorf("GET /chat/completions: err %v, body %q; want the provider's list (asked %d times)", got.openErr, got.body, len(e.fakes["a"].hits()))
		}
	}
}

// TestDefaultMethodChatMustHoldChoices: Request.Method "" is a POST, and
// its chat answer must hold choices as a POST's does.
func TestDefaultMethodChatMustHoldChoices(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": always(statusFn(200, `{"error_code":18,"error_msg":"Open api qps request limit reached"}`)),
	}, []string{"a", "b"}, nil)
	got := e.openReq(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"})
	if got.openErr != nil || got.provider != "b" {
		t.Errorf("Method \"\" (POST): answered by %q with %q (err %v); want b, a's 200 without choices malformed", got.provider, got.body, got.openErr)
	}
}

// TestOwnErrorTextMaskedBeforeCut: the text of a provider's error in a 200
// of its own shape (Qianfan's error_msg) goes into the attempt's error and
// so the log; cut at 512 bytes before masking, a key across the cut reached
// the log as its first bytes, which the log's masking does not know.
func TestOwnErrorTextMaskedBeforeCut(t *testing.T) {
	const key = "sk-proj-OWNTEXTabcdefghijklmnopqrstuvwxyz0123456789ABCDE" // 55 bytes
	body := `{"error_code":17,"error_msg":"` + strings.Repeat("x", 480) + ` key ` + key + ` is over its qps"}`
	logs := &logtest.Buffer{}
	a := newFakeProvider(t, nil, always(statusFn(200, body)))
	cfg := testConfig(map[string]string{"a": a.url}, []string{"a"})
	cfg.Providers[0].APIKey = key
	clock := newFakeClock()
	r, err := New(cfg, Options{Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets()),
		Now: clock.Now, Sleep: clock.Sleep, Jitter: func(d time.Duration) time.Duration { return d }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if resp, err := r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(false), ContentType: "application/json"}); err == nil {
		resp.Close()
		t.Fatal("a 200 without choices was taken for an answer")
	}
	if !strings.Contains(logs.String(), "provider says") {
		t.Fatalf("no attempt's error in the log: %s", logs.String())
	}
	if i := strings.Index(logs.String(), key[:12]); i >= 0 {
		t.Errorf("the log holds the first bytes of the provider key: …%s", logs.String()[max(0, i-20):min(len(logs.String()), i+60)])
	}
}
