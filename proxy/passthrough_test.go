package proxy

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// rawRequest sends target on the request line byte for byte (net/http's
// client would escape or clean some of it) and returns the answer.
func rawRequest(t *testing.T, proxyURL, method, target, body string) (*http.Response, string) {
	t.Helper()
	u, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := method + " " + target + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + testClientKey +
		"\r\nConnection: close\r\n"
	if body != "" {
		req += "Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n" + body)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readAll(t, resp.Body)
}

// openAIError decodes an OpenAI error body; ok is false when body is not one.
func openAIError(body string) (typ, msg string, ok bool) {
	var e struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) != nil || e.Error == nil {
		return "", "", false
	}
	return e.Error.Type, e.Error.Message, true
}

// TestPassthroughPath: a passthrough path reaches the provider escaped as
// the client sent it, with its query as sent, and never above the
// provider's base_url: a '.' or '..' segment (raw or escaped), an escaped
// slash or a backslash is a 400, and the provider, which would get the
// operator's key, sees nothing.
func TestPassthroughPath(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"file"}`))
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, tc := range []struct {
		name, target string
		want         string // the request target the provider gets; "" for a 400
	}{
		{"plain", "/v1/files/file-abc/content", "/v1/files/file-abc/content"},
		{"query as sent", "/v1/files?purpose=batch&after=a%2Fb&q=%3F%23", "/v1/files?purpose=batch&after=a%2Fb&q=%3F%23"},
		{"escaped percent", "/v1/files/100%25", "/v1/files/100%25"},
		{"escaped question mark", "/v1/files/a%3Fb?x=1", "/v1/files/a%3Fb?x=1"},
		{"escaped hash", "/v1/files/a%23b", "/v1/files/a%23b"},
		{"escaped space and tilde", "/v1/files/a%20b%7E", "/v1/files/a%20b%7E"},
		{"dots in a name", "/v1/files/.../a..b/.env", "/v1/files/.../a..b/.env"},

		{"escaped slashes and dots", "/v1/files/..%2F..%2Fadmin%2Fkeys", ""},
		{"escaped dot-dot", "/v1/files/%2e%2e/admin", ""},
		{"escaped dot-dot, upper case", "/v1/files/%2E%2E", ""},
		{"half escaped dot-dot", "/v1/files/.%2e/admin", ""},
		{"escaped dot", "/v1/%2e/files", ""},
		{"escaped slash, lower case", "/v1/files/a%2fb", ""},
		{"escaped backslash", "/v1/files/..%5Cadmin", ""},
		{"raw backslash", `/v1/files/..\admin`, ""},
		// Tomcat, Jetty and Spring drop a segment's ";" parameters before
		// resolving dot segments: "..;" is ".." to them.
		{"dot-dot with a parameter", "/v1/files/..;/..;/admin/keys", ""},
		{"dot-dot with a named parameter", "/v1/files/..;x=1/admin", ""},
		{"escaped dot-dot with a parameter", "/v1/files/%2e%2e;/admin", ""},
		{"dot with a parameter", "/v1/.;/files", ""},
		{"dot-dot with an escaped semicolon", "/v1/files/..%3B/admin", ""},
		{"a NUL byte", "/v1/files/..%00/admin", ""},
		{"a semicolon in a name", "/v1/files/a;b", "/v1/files/a;b"},
		// A segment of ";" parameters alone is an empty one to those
		// servers, and Tomcat merges the "//" it leaves: "/v1/;/models"
		// is /v1/models, which the models routes keep read-only.
		{"an empty segment with a parameter before models", "/v1/;/models/ft:gpt-4o:acme::abc", ""},
		{"an empty segment with a named parameter", "/v1/;x=1/Models/ft:gpt-4o:acme::abc", ""},
		{"an empty segment with an escaped semicolon", "/v1/%3B/models/ft:gpt-4o:acme::abc", ""},
		// A front that decodes before the provider's server reads these
		// as the ones above.
		{"dot-dot escaped twice", "/v1/files/%252e%252e/%252e%252e/admin/keys", ""},
		{"escaped slash escaped twice", "/v1/files/..%252Fadmin", ""},
		{"a percent sign in a name", "/v1/files/50%25off", "/v1/files/50%25off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fp.requests())
			resp, body := rawRequest(t, proxyURL, http.MethodGet, tc.target, "")
			seen := fp.requests()[before:]
			if tc.want != "" {
				if resp.StatusCode != 200 || len(seen) != 1 || seen[0].Path != tc.want {
					t.Fatalf("GET %s: status %d, provider saw %+v; want 200 and one request for %s (%s)", tc.target, resp.StatusCode, seen, tc.want, body)
				}
				if seen[0].Header.Get("Authorization") != "Bearer "+testProviderKey {
					t.Errorf("provider key not sent")
				}
				return
			}
			typ, _, ok := openAIError(body)
			if resp.StatusCode != http.StatusBadRequest || !ok || typ != "invalid_request_error" {
				t.Errorf("GET %s: status %d body %s; want 400 invalid_request_error", tc.target, resp.StatusCode, body)
			}
			if len(seen) != 0 {
				t.Errorf("GET %s reached the provider as %s", tc.target, seen[0].Path)
			}
		})
	}
	// Raw dot segments are redirected by the mux before the handler (its
	// path cleaning): they never reach a provider either.
	for _, target := range []string{"/v1/files/../../admin/keys", "/v1/./files"} {
		before := len(fp.requests())
		resp, body := rawRequest(t, proxyURL, http.MethodGet, target, "")
		if resp.StatusCode < 300 || len(fp.requests()) != before {
			t.Errorf("GET %s: status %d (%s), provider requests %d → %d", target, resp.StatusCode, body, before, len(fp.requests()))
		}
	}
}

// TestUpstreamPath covers what the mux does not let reach the handler (raw
// dot segments), URLs whose RawPath net/url re-escapes, and segments that
// are a dot segment, or hold a slash, a backslash or a NUL, once decoded
// twice or three times.
func TestUpstreamPath(t *testing.T) {
	for _, tc := range []struct {
		target, want string
		ok           bool
	}{
		{"/v1/embeddings", "/embeddings", true},
		{"/v1/files?", "/files?", true},
		{"/v1/files/a%2Fb?x=1", "", false},
		{"/v1/files/../x", "", false},
		{"/v1/files/./x", "", false},
		{"/v1/files/..", "", false},
		{"/v1/..", "", false},
		{"/v1/files/a{b%2Fc", "", false}, // EscapedPath gives a%7Bb/c: RawPath decides
		{"/v1/files/a{b%7Dc", "/files/a%7Bb%7Dc", true},
		{"/v1", "", false},
		{"/v2/files", "", false},
		// Escaped twice or three times: a server in front of the provider
		// that decodes before the provider's does (heldDecoded) reads a
		// dot segment, a slash, a backslash or a NUL there.
		{"/v1/files/%252e%252e/batches", "", false},
		{"/v1/files/%252E%252E;x/batches", "", false},
		{"/v1/files/%25252e%25252e/batches", "", false},
		{"/v1/files/%2e%252e;%2525ZZ/batches", "", false}, // "..;%ZZ" decoded twice, its bad escape kept
		{"/v1/files/a%252Fb", "", false},
		{"/v1/files/a%255cb", "", false},
		{"/v1/files/a%2500", "", false},
		// A "%" that decodes to nothing of those stays the bot's.
		{"/v1/files/50%25off", "/files/50%25off", true},
		{"/v1/files/a%2541b", "/files/a%2541b", true},
		{"/v1/files/%25ZZ", "/files/%25ZZ", true},
	} {
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := upstreamPath(u); got != tc.want || ok != tc.ok {
			t.Errorf("upstreamPath(%s) = %q, %v; want %q, %v", tc.target, got, ok, tc.want, tc.ok)
		}
	}
}

// TestRepeatedMembersRefused: a body that repeats a member paygate reads or
// rewrites is a 400 naming it, on chat completions and on passthrough
// paths, and reaches no provider. Most JSON parsers keep the last of a
// repeated member where paygate acts on the first: the provider would
// serve a model the operator never configured, on the operator's key, and
// get the raw OpenID (SPEC 2.2).
func TestRepeatedMembersRefused(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[]}`))
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].DropFields = []string{"parallel_tool_calls"}
	}))
	for _, tc := range []struct {
		name, path, body, member string
	}{
		{"chat: model and user", "/v1/chat/completions",
			`{"model":"gpt-test","user":"oWx-openid-123","messages":[{"role":"user","content":"hi"}],"model":"openai/o1-pro","user":"oWx-openid-123"}`, "model"},
		{"chat: user", "/v1/chat/completions", `{"model":"gpt-test","user":"u1","messages":[],"user":"oWx-openid-123"}`, "user"},
		{"chat: user, key escaped", "/v1/chat/completions", `{"model":"gpt-test","user":"u1","messages":[],"us\u0065r":"oWx-openid-123"}`, "user"},
		{"chat: stream", "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[],"stream":false}`, "stream"},
		{"chat: stream_options", "/v1/chat/completions", `{"model":"gpt-test","stream":true,"stream_options":null,"messages":[],"stream_options":{"include_usage":false}}`, "stream_options"},
		{"chat: include_usage", "/v1/chat/completions", `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true,"include_usage":false},"messages":[]}`, "include_usage"},
		{"chat: messages", "/v1/chat/completions", `{"model":"gpt-test","messages":[],"messages":[{"role":"user","content":"x"}]}`, "messages"},
		{"chat: tools", "/v1/chat/completions", `{"model":"gpt-test","messages":[],"tools":[],"tools":[{"type":"function","function":{"name":"f"}}]}`, "tools"},
		{"chat: tool_choice", "/v1/chat/completions", `{"model":"gpt-test","messages":[],"tool_choice":"none","tool_choice":"required"}`, "tool_choice"},
		{"chat: safety_identifier", "/v1/chat/completions", `{"model":"gpt-test","safety_identifier":"u1","messages":[],"safety_identifier":"oWx-openid-123"}`, "safety_identifier"},
		{"chat: prompt_cache_key", "/v1/chat/completions", `{"model":"gpt-test","prompt_cache_key":"u1","messages":[],"prompt_cache_key":"oWx-openid-123"}`, "prompt_cache_key"},
		{"chat: metadata", "/v1/chat/completions", `{"model":"gpt-test","metadata":{},"messages":[],"metadata":{"openid":"oWx-openid-123"}}`, "metadata"},
		{"chat: drop_fields", "/v1/chat/completions", `{"model":"gpt-test","parallel_tool_calls":true,"messages":[],"parallel_tool_calls":false}`, "parallel_tool_calls"},
		{"embeddings: model", "/v1/embeddings", `{"model":"embed-test","input":"x","model":"openai/text-embedding-3-large"}`, "model"},
		{"embeddings: user", "/v1/embeddings", `{"model":"embed-test","user":"u1","input":"x","user":"oWx-openid-123"}`, "user"},
		{"responses: safety_identifier", "/v1/responses", `{"model":"gpt-test","safety_identifier":"u1","input":"x","safety_identifier":"oWx-openid-123"}`, "safety_identifier"},
		{"embeddings: stream", "/v1/embeddings", `{"model":"embed-test","stream":false,"input":"x","stream":true}`, "stream"},
		{"embeddings: drop_fields", "/v1/embeddings", `{"model":"embed-test","parallel_tool_calls":1,"input":"x","parallel_tool_calls":2}`, "parallel_tool_calls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, proxyURL, tc.path, tc.body, nil)
			body := readAll(t, resp.Body)
			typ, msg, ok := openAIError(body)
			if resp.StatusCode != http.StatusBadRequest || !ok || typ != "invalid_request_error" || !strings.Contains(msg, `"`+tc.member+`"`) {
				t.Errorf("status %d body %s; want 400 invalid_request_error naming %q", resp.StatusCode, body, tc.member)
			}
		})
	}
	if seen := fp.requests(); len(seen) != 0 {
		t.Errorf("provider saw %d requests for refused bodies, the first %s", len(seen), seen[0].Body)
	}
	// Members paygate neither reads nor rewrites may repeat: they reach the
	// provider byte for byte.
	body := `{"model":"embed-test","input":"a","input":"b"}`
	if resp := post(t, proxyURL, "/v1/embeddings", body, nil); resp.StatusCode != 200 {
		t.Fatalf("repeated input: status %d %s", resp.StatusCode, readAll(t, resp.Body))
	}
	if seen := fp.requests(); len(seen) != 1 || string(seen[0].Body) != `{"model":"vendor/embed","input":"a","input":"b"}` {
		t.Errorf("provider saw %+v", seen)
	}
}

// TestPassthroughRefusesJSONPaygateCannotRead: a body that a provider's
// JSON parser reads as an object but paygate cannot (a byte-order mark,
// UTF-16 or UTF-32: Python's json.loads detects all of them) is a 400
// whatever its Content-Type, so the "user" in it never reaches a provider
// unhashed (SPEC 2.2). Bodies that only look like one at the first bytes
// (binary uploads) still pass.
func TestPassthroughRefusesJSONPaygateCannotRead(t *testing.T) {
	const obj = ` {"model":"embed-test","input":"hi","user":"oEmbedUser"}`
	utf16 := func(s string, big bool) string {
		var b []byte
		for _, r := range s {
			if big {
				b = append(b, byte(r>>8), byte(r))
			} else {
				b = append(b, byte(r), byte(r>>8))
			}
		}
		return string(b)
	}
	utf32 := func(s string, big bool) string {
		var b []byte
		for _, r := range s {
			if big {
				b = append(b, 0, 0, byte(r>>8), byte(r))
			} else {
				b = append(b, byte(r), byte(r>>8), 0, 0)
			}
		}
		return string(b)
	}
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[]}`))
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, tc := range []struct {
		name, body string
		refused    bool
	}{
		{"UTF-8 BOM", "\xEF\xBB\xBF" + obj, true},
		{"UTF-16LE BOM", "\xFF\xFE" + utf16(obj, false), true},
		{"UTF-16BE BOM", "\xFE\xFF" + utf16(obj, true), true},
		{"UTF-32LE BOM", "\xFF\xFE\x00\x00" + utf32(obj, false), true},
		{"UTF-32BE BOM", "\x00\x00\xFE\xFF" + utf32(obj, true), true},
		{"UTF-16LE", utf16(obj, false), true},
		{"UTF-16BE", utf16(obj, true), true},
		{"UTF-32LE", utf32(obj, false), true},
		{"UTF-32BE", utf32(obj, true), true},

		{"UTF-8 BOM before text", "\xEF\xBB\xBFhello", false},
		{"MPEG audio frame", "\xFF\xFE\x90\x00\x00\x00data", false},
		{"MP4 box", "\x00\x00\x00\x18ftypisom", false},
	} {
		for _, ct := range []string{"", "text/plain", "application/octet-stream"} {
			t.Run(tc.name+"/"+ct, func(t *testing.T) {
				before := len(fp.requests())
				resp := post(t, proxyURL, "/v1/embeddings", tc.body, map[string]string{"Content-Type": ct})
				body := readAll(t, resp.Body)
				forwarded := len(fp.requests()) > before
				if !tc.refused {
					if resp.StatusCode != 200 || !forwarded || string(fp.requests()[before].Body) != tc.body {
						t.Errorf("status %d %s; want the body forwarded byte for byte", resp.StatusCode, body)
					}
					return
				}
				if typ, _, ok := openAIError(body); resp.StatusCode != http.StatusBadRequest || !ok || typ != "invalid_request_error" {
					t.Errorf("status %d %s; want a 400 invalid_request_error", resp.StatusCode, body)
				}
				if forwarded {
					t.Errorf("the provider got %q", fp.requests()[before].Body)
				}
			})
		}
	}
}

// TestPollingFailedObjectsKeepsTheProvider: a bot polls a background
// Response or a fine-tuning job that failed, and OpenAI answers 200 with
// the object, whose "error" member says why it failed. paygate took that
// for the provider's error: each poll was asked twice, answered 502, and
// counted against the provider's breaker, so that three polls opened it
// and every bot's chat completions on that provider got 503. The object
// now reaches the bot as sent, once per poll, and the provider stays
// healthy.
func TestPollingFailedObjectsKeepsTheProvider(t *testing.T) {
	objects := map[string]string{
		"/v1/responses/resp_1":         `{"id":"resp_1","object":"response","status":"failed","background":true,"error":{"code":"server_error","message":"The model failed to generate a response."},"output":[],"usage":null}`,
		"/v1/fine_tuning/jobs/ftjob-1": `{"object":"fine_tuning.job","id":"ftjob-1","model":"gpt-4o-mini","status":"failed","error":{"code":"invalid_training_file","message":"The file is not valid JSONL.","param":"training_file"}}`,
	}
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if obj, ok := objects[r.URL.Path]; ok {
			jsonHandler(200, obj)(w, r)
			return
		}
		jsonHandler(200, `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`)(w, r)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	const polls = 3
	for path, obj := range objects {
		for i := range polls {
			resp := clientReq(t, http.MethodGet, url+path, nil, nil)
			if b := readAll(t, resp.Body); resp.StatusCode != 200 || b != obj {
				t.Errorf("poll %d of %s: %d %s; want 200 with the object as sent", i, path, resp.StatusCode, b)
			}
		}
	}
	if n := len(fp.requests()); n != polls*len(objects) {
		t.Errorf("provider saw %d requests for %d polls; want one each", n, polls*len(objects))
	}
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	if b := readAll(t, resp.Body); resp.StatusCode != 200 {
		t.Errorf("a chat completion after the polls: %d %s", resp.StatusCode, b)
	}
}

// TestForwardedBodyNamingNoModelUntouched: a forwarded body whose "model"
// names no model ("" or null: a bot's unset environment variable, a client
// struct without omitempty) is routed to the first model's
// targets, as one without "model" is, and reaches the provider as the bot
// sent it, the provider's own refusal included. paygate overwrote the
// member with the first model's upstream name, so a bot whose model was
// empty got embeddings of a model it never named, mixed silently with its
// other vectors, or a chat model's name on an embeddings call. A "model"
// of another type (a number, an object) is a 400 of paygate's own
// (TestModelOfAnotherTypeIsRefused).
func TestForwardedBodyNamingNoModelUntouched(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[]}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, c := range []struct{ path, body string }{
		{"/v1/embeddings", `{"model":"","input":"x"}`},
		{"/v1/embeddings", `{"input":"x","model":null}`},
		{"/v1/moderations", `{"input":"x","model":null}`},
	} {
		before := len(fp.requests())
		resp := post(t, url, c.path, c.body, nil)
		b := readAll(t, resp.Body)
		seen := fp.requests()[before:]
		if resp.StatusCode != 200 || len(seen) != 1 {
			t.Fatalf("%s %s: %d %s, %d upstream requests", c.path, c.body, resp.StatusCode, b, len(seen))
		}
		if string(seen[0].Body) != c.body {
			t.Errorf("%s: provider got\n%s\nwant the bot's\n%s", c.path, seen[0].Body, c.body)
		}
	}
}

// TestForwardedBodyWithoutModelUntouched: many forwarded calls name no
// model (a batch, a vector store, an upload, a moderation or an image
// left to the provider's default). paygate added "model" to each, the
// upstream name of the config's first model, a chat model's: a strict
// server refuses the unknown member, a lenient one moderates or draws
// with the model named. SPEC 2.2 leaves nothing touched but the model and
// the user, so such a body reaches the provider byte for byte.
func TestForwardedBodyWithoutModelUntouched(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"x1","object":"thing"}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, c := range []struct{ path, body string }{
		{"/v1/batches", `{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}`},
		{"/v1/vector_stores", `{"name":"docs", "file_ids":["file-1"]}`},
		{"/v1/uploads", `{"purpose":"batch","filename":"a.jsonl","bytes":3,"mime_type":"text/jsonl"}`},
		{"/v1/moderations", `{"input":"hello"}`},
		{"/v1/images/generations", "{\n  \"prompt\": \"a cat\",\n  \"n\": 1\n}"},
	} {
		before := len(fp.requests())
		resp := post(t, url, c.path, c.body, nil)
		b := readAll(t, resp.Body)
		seen := fp.requests()[before:]
		if resp.StatusCode != 200 || len(seen) != 1 {
			t.Fatalf("%s: %d %s, %d upstream requests", c.path, resp.StatusCode, b, len(seen))
		}
		if string(seen[0].Body) != c.body {
			t.Errorf("%s: provider got\n%s\nwant the bot's\n%s", c.path, seen[0].Body, c.body)
		}
	}
}

// TestForwardedBodyNotAdaptedToTheTarget: what paygate adapts of a chat
// conversation for a target's provider (Mistral's tool call ids and
// assistant members, DeepSeek's reasoning_content, another model's
// thinking blocks) is for the conversation paygate sends on
// /chat/completions, never for a forwarded body, which SPEC 2.2 leaves
// untouched but for its model and user. A fine-tuning file uploaded to
// the first model's provider, a Mistral one, had the first example of its
// JSONL (found by reading the form as JSON from its first brace) rewritten:
// its assistant's "weight": 0 gone, so the model was trained on a reply
// the file said to skip, and its call ids replaced.
func TestForwardedBodyNotAdaptedToTheTarget(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"file-1","object":"file"}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
		c.Models[0].Targets[0].Model = "mistral-small-latest"
	}))
	example := `{"messages":[{"role":"user","content":"weather?"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_0","type":"function","function":{"name":"w","arguments":"{}"}}],"weight":0},` +
		`{"role":"tool","tool_call_id":"call_0","content":"sunny"},{"role":"assistant","content":"Sunny."}]}` + "\n"
	upload := form(t, field{"purpose", "", "fine-tune"}, field{"file", "train.jsonl", example + example})
	for _, c := range []struct{ path, ct, body string }{
		{"/v1/files", "multipart/form-data; boundary=" + formBoundaryTest, upload},
		{"/v1/threads", "application/json", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello","metadata":{"k":"v"}}]}`},
	} {
		before := len(fp.requests())
		resp := post(t, url, c.path, c.body, map[string]string{"Content-Type": c.ct})
		b := readAll(t, resp.Body)
		seen := fp.requests()[before:]
		if resp.StatusCode != 200 || len(seen) != 1 {
			t.Fatalf("%s: %d %s, %d upstream requests", c.path, resp.StatusCode, b, len(seen))
		}
		if string(seen[0].Body) != c.body {
			t.Errorf("%s: provider got\n%s\nwant the bot's\n%s", c.path, seen[0].Body, c.body)
		}
	}
}
