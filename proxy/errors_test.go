package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/interceptors"
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
		{"outside /v1: a method no route has", jsonHandler(200, `{}`), http.MethodDelete, "/healthz",
			"", 404, "unknown endpoint DELETE /healthz"},
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
			req, err := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
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
		c := usageChunk(s, s, 1700000000, &u)
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
