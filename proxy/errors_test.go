package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// decodeErrorBody parses an OpenAI error body, failing the test when it is
// not JSON an SDK can read.
func decodeErrorBody(t *testing.T, body []byte) (msg, typ string, param, code *string) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("error body is not valid JSON: %q", body)
	}
	var v struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return v.Error.Message, v.Error.Type, v.Error.Param, v.Error.Code
}

// TestErrorJSON: whatever bytes a message holds (client model names, decoded
// paths, upstream error text), the body is valid JSON and reads back as the
// message, each invalid UTF-8 byte as U+FFFD, as encoding/json would.
func TestErrorJSON(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want string // the message after a JSON round trip
	}{
		{"plain", "The model `gpt-nope` does not exist", "The model `gpt-nope` does not exist"},
		{"empty", "", ""},
		{"quotes and backslashes", `say "hi" \ C:\path\n`, `say "hi" \ C:\path\n`},
		{"common controls", "a\nb\rc\td", "a\nb\rc\td"},
		{"other controls", "nul\x00 bel\a bs\b vt\v ff\f esc\x1b us\x1f", "nul\x00 bel\a bs\b vt\v ff\f esc\x1b us\x1f"},
		{"DEL", "The model `gpt\x7f` does not exist", "The model `gpt\x7f` does not exist"},
		{"C1 control", "x\u0085y\u009fz", "x\u0085y\u009fz"},
		{"invalid UTF-8 bytes", "a\xffb\xc3", "a\ufffdb\ufffd"},
		{"truncated rune", "caf\xc3", "caf\ufffd"},
		{"split emoji", "x\xf0\x9f\x98", "x\ufffd\ufffd\ufffd"},
		{"surrogate encoded as UTF-8", "\xed\xa0\x80", "\ufffd\ufffd\ufffd"},
		{"line and paragraph separators", "a\u2028b\u2029c", "a\u2028b\u2029c"},
		{"astral runes", "😀 𝄞 \U0010ffff", "😀 𝄞 \U0010ffff"},
		{"BMP non-ASCII", "café 模型 \ufeff \ufffd", "café 模型 \ufeff \ufffd"},
		{"HTML", "<script>&amp;</script>", "<script>&amp;</script>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every field goes through the same encoder.
			e := &apiError{Status: 404, Type: "t" + tc.msg, Code: "c" + tc.msg, Param: "p" + tc.msg, Message: tc.msg}
			msg, typ, param, code := decodeErrorBody(t, errorJSON(e))
			if msg != tc.want {
				t.Errorf("message: got %q; want %q", msg, tc.want)
			}
			if typ != "t"+tc.want || param == nil || *param != "p"+tc.want || code == nil || *code != "c"+tc.want {
				t.Errorf("type %q, param %v, code %v; want each to read back as its field", typ, param, code)
			}
			// encoding/json is the reference for what the text reads back as.
			ref, _ := json.Marshal(tc.msg)
			var refMsg string
			if err := json.Unmarshal(ref, &refMsg); err != nil || refMsg != msg {
				t.Errorf("got %q; encoding/json reads back %q", msg, refMsg)
			}
		})
	}
}

func TestErrorJSONNullFields(t *testing.T) {
	got := string(errorJSON(&apiError{Type: "upstream_error", Message: "m"}))
	if want := `{"error":{"message":"m","type":"upstream_error","param":null,"code":null}}`; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

// TestErrorBodiesAreValidJSON: the error answers that carry client or
// upstream text stay JSON an SDK can parse, so it raises its typed error.
func TestErrorBodiesAreValidJSON(t *testing.T) {
	midStream := sseHandler(
		"data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
		"data: {\"error\":{\"message\":\"bad \\u007f \\u0007 \\u2028 \\ud83d\\ude00 \\\"q\\\" \\\\\",\"type\":\"server_error\"}}\n\n",
	)
	tests := []struct {
		name     string
		upstream http.HandlerFunc
		method   string
		path     string
		body     string
		status   int
		wantMsg  string // a substring of the decoded message
	}{
		{"unknown model with DEL", jsonHandler(200, `{}`), http.MethodPost, "/v1/chat/completions",
			`{"model":"gpt\u007f","messages":[]}`, 404, "The model `gpt\x7f` does not exist"},
		{"unknown model with controls and separators", jsonHandler(200, `{}`), http.MethodPost, "/v1/chat/completions",
			`{"model":"g\u0007\u000b\u2028\ud83d\ude00","messages":[]}`, 404, "The model `g\a\v\u2028😀` does not exist"},
		{"unknown endpoint with odd bytes in its path", jsonHandler(200, `{}`), http.MethodGet, "/v1/paygate/%7F%0B%FF%E2%80%A8",
			"", 404, "unknown endpoint GET /v1/paygate/\x7f\v\ufffd\u2028"},
		{"outside /v1: a base URL without it", jsonHandler(200, `{}`), http.MethodPost, "/chat/completions",
			`{"model":"gpt-test","messages":[]}`, 404, "unknown endpoint POST /chat/completions; the OpenAI API is served under /v1"},
		{"outside /v1: a method the route does not serve", jsonHandler(200, `{}`), http.MethodDelete, "/healthz",
			"", 405, "DELETE /healthz is not served; use GET"},
		{"upstream text error cut mid-rune", jsonHandler(400, strings.Repeat("x", 511)+"é and more"), http.MethodPost, "/v1/chat/completions",
			`{"model":"gpt-test","messages":[]}`, 400, strings.Repeat("x", 511)},
		{"mid-stream error event", midStream, http.MethodPost, "/v1/chat/completions",
			`{"model":"gpt-test","stream":true,"messages":[]}`, 200, "bad \x7f \a \u2028 😀 \"q\" \\"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.upstream)
			url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
				c.Failover.MaxAttempts = 1
				c.Failover.Recovery.MaxAttempts = -1
			}))
			resp := send(t, tc.method, url, tc.path, tc.body, nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%q)", resp.StatusCode, tc.status, body)
			}
			if tc.status == http.StatusOK {
				// The stream's last event is the error.
				i := strings.LastIndex(body, "data: {\"error\"")
				if i < 0 {
					t.Fatalf("stream %q has no error event", body)
				}
				body, _, _ = strings.Cut(body[i+len("data: "):], "\n")
			}
			msg, _, _, _ := decodeErrorBody(t, []byte(body))
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q; want it to contain %q", msg, tc.wantMsg)
			}
			if strings.ContainsRune(tc.wantMsg, '\ufffd') != strings.ContainsRune(msg, '\ufffd') {
				t.Errorf("message %q: U+FFFD only where the input had invalid bytes", msg)
			}
		})
	}
}

// TestErrorJSONAllocs: errorJSON is on the failover and stream paths; a
// message that needs no escaping costs one allocation, the body itself.
func TestErrorJSONAllocs(t *testing.T) {
	e := &apiError{Type: "upstream_error", Code: "stream_error", Message: "paygate: provider fake: stream_error: café 😀"}
	if n := testing.AllocsPerRun(100, func() { _ = errorJSON(e) }); n != 1 {
		t.Errorf("errorJSON: %v allocations; want 1", n)
	}
}

// TestOwnChunksAreValidJSON: the chunks paygate writes itself (the usage
// chunk, the clarification's head) carry a provider's id and a model name;
// odd bytes in them must still give JSON.
func TestOwnChunksAreValidJSON(t *testing.T) {
	for _, s := range []string{"plain", "ctl\x01\x7f", "bad\xff utf-8", "sep\u2028", `q"b\`} {
		u := interceptors.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}
		c := usageChunk(s, s, 1700000000, nil, &u)
		if !json.Valid(c) {
			t.Errorf("usageChunk(%q): not JSON: %s", s, c)
		}
		if got := gjson.GetBytes(c, "model").Str; got != strings.ToValidUTF8(s, "\ufffd") {
			t.Errorf("usageChunk(%q): model %q", s, got)
		}
		if h := append(chunkHead(s, s, 1), '}'); !json.Valid(h) {
			t.Errorf("chunkHead(%q): not JSON: %s", s, h)
		}
	}
}

// TestProviderKeyNeverReachesBot: providers, their proxies and aggregators
// quote the request's Authorization header or key in their error text
// (validation layers echo headers, some 4xx texts name the key). paygate
// passes a provider's reason on (SPEC 5), so every upstream string that
// reaches the bot in an error, before or after the first byte, on chat
// completions and passthrough paths alike, has the known secrets (the
// config's: provider keys and key headers, client keys, tokens) and any
// "Bearer" credential masked. The status and the rest of the text stay, so
// the bot still learns why.
func TestProviderKeyNeverReachesBot(t *testing.T) {
	const headerKey = "azure-header-key-0123456789"
	const chat = `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	const stream = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	first := `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}` + "\n\n"
	textHandler := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	for _, tc := range []struct {
		name     string
		upstream http.HandlerFunc
		path     string
		body     string
		status   int
		secrets  []string // none may reach the bot
		keep     string   // the text around them that must
	}{
		{"chat: a 400 quoting the Authorization header",
			jsonHandler(400, `{"error":{"message":"invalid header 'Authorization: Bearer `+testProviderKey+`': malformed","type":"invalid_request_error"}}`),
			"/v1/chat/completions", chat, 400, []string{testProviderKey}, "invalid header 'Authorization: Bearer "},
		{"chat: the key in the error's type and code",
			jsonHandler(400, `{"error":{"message":"rejected","type":"key `+testProviderKey+`","code":"`+testProviderKey+`"}}`),
			"/v1/chat/completions", chat, 400, []string{testProviderKey}, "rejected"},
		{"chat: a key header's value quoted",
			jsonHandler(400, `{"error":{"message":"api-key `+headerKey+` has no access to this deployment"}}`),
			"/v1/chat/completions", chat, 400, []string{headerKey}, "has no access to this deployment"},
		{"chat: a bearer credential paygate does not know",
			jsonHandler(400, `{"error":{"message":"upstream said: Authorization: Bearer sk-aggregator-own-key-77 refused"}}`),
			"/v1/chat/completions", chat, 400, []string{"sk-aggregator-own-key-77"}, "refused"},
		{"chat: a non-JSON error body",
			textHandler(400, "<html>bad request for key "+testProviderKey+"</html>"),
			"/v1/chat/completions", chat, 400, []string{testProviderKey}, "bad request for key"},
		{"embeddings: a 422 naming the key",
			jsonHandler(422, `{"detail":"bad input","message":"key `+testProviderKey+` cannot use vendor/embed"}`),
			"/v1/embeddings", `{"model":"embed-test","input":"hi"}`, 422, []string{testProviderKey}, "cannot use vendor/embed"},
		{"embeddings: a non-JSON error body",
			textHandler(400, "key="+testProviderKey+" is not allowed here"),
			"/v1/embeddings", `{"model":"embed-test","input":"hi"}`, 400, []string{testProviderKey}, "is not allowed here"},
		{"stream: an error event after the first byte",
			sseHandler(first, `data: {"error":{"message":"upstream auth failed for Authorization: Bearer `+testProviderKey+`","type":"server_error","code":"internal"}}`+"\n\n"),
			"/v1/chat/completions", stream, 200, []string{testProviderKey}, "upstream auth failed"},
		{"stream: a refusal after the first byte",
			sseHandler(first, `data: {"error":{"message":"flagged; key `+testProviderKey+`","type":"invalid_request_error","code":"content_filter"}}`+"\n\n"),
			"/v1/chat/completions", stream, 200, []string{testProviderKey}, "flagged; key "},
		// Errors with no "error" member: the fields at the top level, or
		// only the event's name saying it is one. They were relayed as
		// chunks, unmasked, or (a 200 body) passed on as the answer.
		{"stream: an error event with its fields at the top level",
			sseHandler(first, `data: {"type":"error","message":"auth failed for key `+testProviderKey+`"}`+"\n\n"),
			"/v1/chat/completions", stream, 200, []string{testProviderKey}, "auth failed for key "},
		{"stream: an event named error",
			sseHandler(first, "event: error\n"+`data: {"message":"auth failed for key `+testProviderKey+`"}`+"\n\n"),
			"/v1/chat/completions", stream, 200, []string{testProviderKey}, "auth failed for key "},
		{"stream: an error finish with the provider's reason",
			sseHandler(first, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"error","native_finish_reason":"key `+testProviderKey+` revoked"}]}`+"\n\n"),
			"/v1/chat/completions", stream, 200, []string{testProviderKey}, " revoked"},
		{"stream: a first event that is a vLLM error object",
			sseHandler(`data: {"object":"error","message":"auth failed for key ` + testProviderKey + `","type":"BadRequestError","param":null,"code":400}` + "\n\n"),
			"/v1/chat/completions", stream, 400, []string{testProviderKey}, "auth failed for key "},
		{"chat: a vLLM error object with 200",
			jsonHandler(200, `{"object":"error","message":"auth failed for key `+testProviderKey+`","type":"BadRequestError","param":null,"code":400}`),
			"/v1/chat/completions", chat, 400, []string{testProviderKey}, "auth failed for key "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.upstream)
			url, logs := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
				c.Providers[0].Headers["api-key"] = headerKey
				c.Failover.MaxAttempts = 1
			}))
			resp := post(t, url, tc.path, tc.body, nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.status == http.StatusOK {
				i := strings.LastIndex(body, "data: {\"error\"")
				if i < 0 {
					t.Fatalf("stream %q has no error event", body)
				}
				body, _, _ = strings.Cut(body[i+len("data: "):], "\n")
			}
			msg, typ, _, code := decodeErrorBody(t, []byte(body))
			for _, s := range tc.secrets {
				if strings.Contains(body, s) {
					t.Errorf("the bot got the secret %q: %s", s, body)
				}
				if strings.Contains(logs.String(), s) {
					t.Errorf("the log holds the secret %q", s)
				}
			}
			if !strings.Contains(msg+typ+derefOr(code), logging.Mask) || !strings.Contains(msg, tc.keep) {
				t.Errorf("error %s: want the provider's text %q with the secret masked as %s", body, tc.keep, logging.Mask)
			}
		})
	}
}

// TestErrorPageKeyMaskedBeforeCut: a non-JSON error page (a WAF's, a
// proxy's debug page) quoting the provider's key near byte 512, where
// paygate cuts such a page for the bot's message. It was cut first and
// masked after, and masking replaces whole keys only: the bot and the log
// line of the failed turn got the key's first 40 bytes. The page is masked
// whole, then cut.
func TestErrorPageKeyMaskedBeforeCut(t *testing.T) {
	const key = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJK"
	page := strings.Repeat("x", 460) + " x-api-key: " + key + " rejected"
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(page))
	})
	url, logs := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].APIKey = key
		c.Failover.MaxAttempts = 1
	}))
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	body := readAll(t, resp.Body)
	msg, _, _, _ := decodeErrorBody(t, []byte(body))
	if want := strings.Repeat("x", 460) + " x-api-key: " + logging.Mask + " rejected"; resp.StatusCode != 400 || msg != want {
		t.Errorf("got %d message %q; want 400 with the page's text, its key masked", resp.StatusCode, msg)
	}
	for _, out := range []struct{ name, text string }{{"the bot", body}, {"the log", logs.String()}} {
		if strings.Contains(out.text, key[:12]) {
			t.Errorf("%s got the beginning of the provider key: %s", out.name, out.text)
		}
	}
}

func derefOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestProviderAnswerNotRedacted: masking is for errors only. A provider's
// successful answer reaches the bot byte for byte, even where its text
// holds a string that is a configured secret (a model may well repeat
// what a user typed).
func TestProviderAnswerNotRedacted(t *testing.T) {
	answer := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"you typed ` + testProviderKey + `"},"finish_reason":"stop"}]}`
	chunk := `{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"you typed ` + testProviderKey + `"},"finish_reason":"stop"}]}`
	for _, tc := range []struct {
		name, body string
		upstream   http.HandlerFunc
		want       string
	}{
		{"non-stream", `{"model":"gpt-test","messages":[]}`, jsonHandler(200, answer), answer},
		{"stream", `{"model":"gpt-test","stream":true,"messages":[]}`, sseHandler("data: "+chunk+"\n\n", "data: [DONE]\n\n"), "data: " + chunk + "\n\n"},
		{"embeddings", `{"model":"embed-test","input":"x"}`, jsonHandler(200, `{"object":"list","data":[],"note":"`+testProviderKey+`"}`), `{"object":"list","data":[],"note":"` + testProviderKey + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.upstream)
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			path := "/v1/chat/completions"
			if strings.Contains(tc.body, "embed-test") {
				path = "/v1/embeddings"
			}
			resp := post(t, url, path, tc.body, nil)
			if got := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(got, tc.want) {
				t.Errorf("status %d, body\n%s\nwant it to hold\n%s", resp.StatusCode, got, tc.want)
			}
		})
	}
}

// TestFailedResponseErrorMasked: a failed background Response (200,
// "status":"failed", "error":{code, message}) is the answer a bot polls
// for, passed on as such (failover.answerError), but its error text is the
// provider's and reached the bot with the key it quoted. The "error"
// member is masked as an error's text is; the rest of the answer, a secret
// a user typed in it included, is untouched.
func TestFailedResponseErrorMasked(t *testing.T) {
	answer := `{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"upstream auth failed for x-api-key ` + testProviderKey + `"},"instructions":"you typed ` + testProviderKey + `","output":[]}`
	fp := newFakeProvider(t, jsonHandler(200, answer))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`},
		{http.MethodGet, "/v1/responses/resp_1", ""},
	} {
		resp := send(t, tc.method, url, tc.path, tc.body, nil)
		body := readAll(t, resp.Body)
		want := strings.Replace(answer, "x-api-key "+testProviderKey, "x-api-key "+logging.Mask, 1)
		if resp.StatusCode != 200 || body != want {
			t.Errorf("%s %s: %d\n%s\nwant\n%s", tc.method, tc.path, resp.StatusCode, body, want)
		}
	}
}

// rejectingAdmin is an AdminPayments whose approvals WeChat Pay refuses
// with err; nothing else is called.
type rejectingAdmin struct {
	AdminPayments
	err error
}

func (a rejectingAdmin) Approve(context.Context, string) (*payments.CreateResult, error) {
	return nil, a.err
}

// TestAdminApprovalErrorRedacted: an approval WeChat Pay did not open tells
// the operator WeChat Pay's reason; that text, too, comes from outside and
// must not carry a configured secret (the APIv3 key here) into the answer.
func TestAdminApprovalErrorRedacted(t *testing.T) {
	const apiv3 = "apiv3-key-0123456789abcdef012345"
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) {
		c.Admin.Token = auditAdminToken
		c.Payments.WeChatPay.APIv3Key = apiv3
	})
	log := slog.New(slog.DiscardHandler)
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log,
		AdminPayments: rejectingAdmin{err: fmt.Errorf("%w: SIGN_ERROR for key %s", payments.ErrPrepayRejected, apiv3)}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	req := httptest.NewRequest(http.MethodPost, "/admin/api/approvals/PG1/approve", nil)
	req.Header.Set("Authorization", "Bearer "+auditAdminToken)
	req.Header.Set("X-Paygate-CSRF", "1")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code != http.StatusBadGateway || strings.Contains(body, apiv3) || !strings.Contains(body, "SIGN_ERROR for key "+logging.Mask) {
		t.Errorf("status %d %s; want 502 with WeChat Pay's reason, the key masked", rec.Code, body)
	}
}

// TestClientRedactionSparesPlaceholderKeys: a local provider (vLLM,
// Ollama, llama.cpp) takes any key, and configs carry a placeholder such as
// "none". Masking every configured secret of 4 bytes or more as a
// substring turned the provider's reason "Invalid value: 'nonexistent'.
// Supported values are: 'none', ..." into '[REDACTED]xistent' and
// '[REDACTED]'. Text a client reads masks only secrets of 12 bytes or
// more, as every real key or token is; a real-length key quoted by the
// provider is still masked. (The log masks from 4 bytes still: logging's
// tests.)
func TestClientRedactionSparesPlaceholderKeys(t *testing.T) {
	const realKey = "sk-local-0123456789abcdef"
	tests := []struct {
		name, apiKey string
		msg          string // the provider's
		want         string // the bot's
	}{
		{"a placeholder key", "none",
			"Invalid value: 'nonexistent'. Supported values are: 'none', 'auto' and 'required'.",
			"Invalid value: 'nonexistent'. Supported values are: 'none', 'auto' and 'required'."},
		{"EMPTY", "EMPTY", "EMPTY messages are not allowed", "EMPTY messages are not allowed"},
		{"eleven bytes", "abcdefghijk", "model abcdefghijk-7b not loaded", "model abcdefghijk-7b not loaded"},
		{"a real-length key", realKey, "key " + realKey + " has no access to this model",
			"key " + logging.Mask + " has no access to this model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(400, `{"error":{"message":"`+tc.msg+`","type":"invalid_request_error","param":"tool_choice","code":"invalid_value"}}`))
			url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Providers[0].APIKey = tc.apiKey }))
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
			body := readAll(t, resp.Body)
			msg, _, _, _ := decodeErrorBody(t, []byte(body))
			if resp.StatusCode != 400 || msg != tc.want {
				t.Errorf("got %d message %q; want 400 with %q", resp.StatusCode, msg, tc.want)
			}
		})
	}
}

// TestResponseTooLargeIsNotRetriedBySDKs: an answer over paygate's cap
// (failover.Options.MaxResponseBytes for a non-stream chat completion) is a
// 502 upstream_response_too_large that no provider is asked again for, as
// the same request would only be answered, and billed, as large again. The
// OpenAI SDKs retry a 502 on their own (twice by default): the answer says
// x-should-retry: false, which they obey, so that the bot's user is not
// billed three generations for one error.
func TestResponseTooLargeIsNotRetriedBySDKs(t *testing.T) {
	huge := strings.Repeat("x", 4096)
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"`+huge+`"},"finish_reason":"stop"}]}`))
	cfg := testConfig(t, fp.URL, nil)
	log := slog.New(slog.DiscardHandler)
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry(), MaxResponseBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, HashKey: []byte(cfg.Privacy.HashKey)})
	if err != nil {
		t.Fatal(err)
	}
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusBadGateway || gjson.Get(body, "error.code").Str != failover.CauseResponseTooLarge {
		t.Fatalf("got %d %s; want 502 %s", resp.StatusCode, body, failover.CauseResponseTooLarge)
	}
	if got := resp.Header.Get("X-Should-Retry"); got != "false" {
		t.Errorf("x-should-retry %q; want false, so that the SDKs do not ask for the same answer again", got)
	}
	if n := len(fp.requests()); n != 1 {
		t.Errorf("the provider was asked %d times; want once", n)
	}
}
