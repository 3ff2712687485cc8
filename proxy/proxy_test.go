package proxy

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
)

// expectedUserHash recomputes the privacy hash independently of the code
// under test: HMAC-SHA256(key, client NUL user), first 16 bytes, hex.
func expectedUserHash(client, user string) string {
	m := hmac.New(sha256.New, []byte(testHashKey))
	m.Write([]byte(client + "\x00" + user))
	return "u_" + hex.EncodeToString(m.Sum(nil)[:16])
}

// The fields paygate does not know, spacing and number spelling included,
// must reach the provider unchanged.
const losslessBody = `{"model": "gpt-test", "messages":[{"role":"user","content":"h\u00e9llo \"q\" 你好"}],
  "provider":{"order":["a","b"],"allow_fallbacks":false}, "reasoning":{"effort":"high"},
  "metadata":{"k":"v"},"seed":42,"logprobs":true,"top_logprobs":2,
  "response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":{"type":"object","properties":{"a":{"type":"number"}}}}},
  "x_vendor":{"nested":[1,2.50,{"z":null}],"e":1e3}, "user":"oOPENID-abc123", "temperature":0.70%s}`

func TestLosslessRequest(t *testing.T) {
	tests := []struct {
		name   string
		extra  string // fields appended to the client body
		stream bool
		want   string // the body the provider must see
	}{
		{name: "non-stream", want: upstreamBody("")},
		{
			name:   "stream gets include_usage for accounting",
			extra:  `, "stream":true`,
			stream: true,
			want:   strings.TrimSuffix(upstreamBody(`, "stream":true`), "}") + `,"stream_options":{"include_usage":true}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h http.HandlerFunc = jsonHandler(200, okCompletion)
			if tc.stream {
				h = sseHandler("data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n", "data: [DONE]\n\n")
			}
			fp := newFakeProvider(t, h)
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, url, "/v1/chat/completions", fmtBody(tc.extra), nil)
			readAll(t, resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			reqs := fp.requests()
			if len(reqs) != 1 {
				t.Fatalf("provider saw %d requests; want 1", len(reqs))
			}
			if got := string(reqs[0].Body); got != tc.want {
				t.Errorf("provider got body\n%s\nwant\n%s", got, tc.want)
			}
			if reqs[0].Path != "/v1/chat/completions" {
				t.Errorf("path %q", reqs[0].Path)
			}
		})
	}
}

func fmtBody(extra string) string { return strings.Replace(losslessBody, "%s", extra, 1) }

// upstreamBody is the client body with exactly the listed patches: the
// target's model name and the hashed user, each in place.
func upstreamBody(extra string) string {
	b := strings.Replace(fmtBody(extra), `"model": "gpt-test"`, `"model": "vendor/upstream-model"`, 1)
	return strings.Replace(b, `"user":"oOPENID-abc123"`, `"user":"`+expectedUserHash("shop-bot", "oOPENID-abc123")+`"`, 1)
}

func TestLosslessResponse(t *testing.T) {
	nonStream := `{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"vendor/upstream-model-2024","system_fingerprint":"fp_x","provider":"Vendor","choices":[{"index":0,"message":{"role":"assistant","content":"ok","refusal":null,"reasoning":"r","annotations":[{"type":"url_citation"}]},"logprobs":null,"finish_reason":"stop","native_finish_reason":"STOP"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":0},"cost":0.0001}}`
	fp := newFakeProvider(t, jsonHandler(200, nonStream))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[]}`, nil)
	if got := readAll(t, resp.Body); got != nonStream {
		t.Errorf("client got\n%s\nwant\n%s", got, nonStream)
	}

	events := []string{
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"m","provider":"Vendor","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel","reasoning_details":[{"t":1}]},"logprobs":{"content":[]},"finish_reason":null}]}`,
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop","native_finish_reason":"STOP"}]}`,
	}
	usage := `{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`
	var raw []string
	raw = append(raw, ": OPENROUTER PROCESSING\n\n")
	for _, e := range events {
		raw = append(raw, "data: "+e+"\n\n")
	}
	raw = append(raw, "data: "+usage+"\n\n", "data: [DONE]\n\n")
	fp2 := newFakeProvider(t, sseHandler(raw...))
	url2, _ := newTestProxy(t, testConfig(t, fp2.URL, nil))

	tests := []struct {
		name string
		body string
		want []string
	}{
		{"usage withheld from a client that did not ask", `{"model":"gpt-test","stream":true,"messages":[]}`, append(append([]string{}, events...), "[DONE]")},
		{"usage passed to a client that asked", `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[]}`, append(append(append([]string{}, events...), usage), "[DONE]")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, url2, "/v1/chat/completions", tc.body, nil)
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("content-type %q", ct)
			}
			got := readAll(t, resp.Body)
			want := ""
			for _, e := range tc.want {
				want += "data: " + e + "\n\n"
			}
			if got != want {
				t.Errorf("client got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestHeaderHygiene(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	const openID = "oWx-secret-openid-777"
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"user":"`+openID+`"}`, map[string]string{
		"Cookie":              "session=client-cookie",
		"X-WeChat-OpenID":     openID,
		"X-Forwarded-For":     "10.1.2.3",
		"User-Agent":          "client-agent/1.0",
		"OpenAI-Organization": "org-client",
		"X-Paygate-Session":   "s1",
		"Accept":              "application/json",
	})
	readAll(t, resp.Body)

	reqs := fp.requests()
	if len(reqs) != 1 {
		t.Fatalf("provider saw %d requests", len(reqs))
	}
	got := reqs[0]
	if a := got.Header.Get("Authorization"); a != "Bearer "+testProviderKey {
		t.Errorf("upstream Authorization %q; want the provider's key", a)
	}
	if got.Header.Get("X-Title") != "paygate-test" {
		t.Errorf("provider's configured header missing")
	}
	allowed := map[string]bool{"Content-Type": true, "Accept": true, "Authorization": true, "X-Title": true,
		"Content-Length": true, "Accept-Encoding": true, "User-Agent": true}
	for k := range got.Header {
		if !allowed[k] {
			t.Errorf("upstream got header %s: %q", k, got.Header[k])
		}
	}
	if ua := got.Header.Get("User-Agent"); strings.Contains(ua, "client-agent") {
		t.Errorf("client User-Agent reached the upstream: %q", ua)
	}
	var all strings.Builder
	for k, vs := range got.Header {
		all.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	all.Write(got.Body)
	for _, leak := range []string{testClientKey, "client-cookie", openID, "10.1.2.3", "org-client"} {
		if strings.Contains(all.String(), leak) {
			t.Errorf("upstream request contains %q", leak)
		}
	}

	for _, h := range []string{"X-Upstream-Secret-Header", "Openai-Organization", "Set-Cookie"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("client got upstream header %s: %q", h, v)
		}
	}
	for _, h := range []string{"X-Request-Id", "X-Paygate-Provider", "X-Paygate-Attempts"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("client response lacks %s", h)
		}
	}
	if p := resp.Header.Get("X-Paygate-Provider"); p != "fake" {
		t.Errorf("X-Paygate-Provider %q; want fake", p)
	}
}

func TestOpenIDFromHeaderHashesBodyUser(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[],"user":"bot-label"}`,
		map[string]string{"X-WeChat-OpenID": "oHEADER"}).Body)
	body := string(fp.requests()[0].Body)
	if want := `"user":"` + expectedUserHash("shop-bot", "oHEADER") + `"`; !strings.Contains(body, want) {
		t.Errorf("body %s; want %s (the header names the user)", body, want)
	}
}

func TestPrivacyModes(t *testing.T) {
	tests := []struct {
		mode string
		want string
	}{
		{"drop", `{"model":"vendor/upstream-model","messages":[]}`},
		{"keep", `{"model":"vendor/upstream-model","messages":[],"user":"oU"}`},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, okCompletion))
			url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.mode }))
			readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[],"user":"oU"}`, nil).Body)
			if got := string(fp.requests()[0].Body); got != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
		})
	}
}

// TestEndUserIdentifiersNeverReachProvider: OpenAI deprecated "user" for
// "safety_identifier" and "prompt_cache_key", and current SDKs send those;
// bots also tag a request with the OpenID in "metadata". Wherever the bot
// names the end user, on chat completions and on every other /v1 path, the
// provider gets what privacy.forward_user says (SPEC 2.2): under hash the
// same keyed hash "user" gets (an identifier that is not the OpenID is
// hashed by its own value), under drop nothing, under keep the body as
// sent; the rest of the body reaches it byte for byte.
func TestEndUserIdentifiersNeverReachProvider(t *testing.T) {
	const openID = "oWx-openid-4242"
	ho := expectedUserHash("shop-bot", openID)
	for _, tc := range []struct {
		name, mode, path, body, want string
	}{
		{"chat, hash", "hash", "/v1/chat/completions",
			`{"model":"gpt-test","messages":[],"user":"` + openID + `","safety_identifier":"` + openID + `", "prompt_cache_key":"faq","metadata":{"openid":"` + openID + `","shop":"s1"}}`,
			`{"model":"vendor/upstream-model","messages":[],"user":"` + ho + `","safety_identifier":"` + ho + `", "prompt_cache_key":"` + expectedUserHash("shop-bot", "faq") + `","metadata":{"openid":"` + ho + `","shop":"s1"}}`},
		{"chat, drop", "drop", "/v1/chat/completions",
			`{"model":"gpt-test","messages":[],"user":"` + openID + `","safety_identifier":"` + openID + `","prompt_cache_key":"faq","metadata":{"openid":"` + openID + `","shop":"s1"}}`,
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"shop":"s1"}}`},
		{"chat, keep", "keep", "/v1/chat/completions",
			`{"model":"gpt-test","messages":[],"safety_identifier":"` + openID + `","metadata":{"openid":"` + openID + `"}}`,
			`{"model":"vendor/upstream-model","messages":[],"safety_identifier":"` + openID + `","metadata":{"openid":"` + openID + `"}}`},
		{"embeddings, hash", "hash", "/v1/embeddings",
			`{"model":"embed-test","input":"hi","safety_identifier":"` + openID + `"}`,
			`{"model":"vendor/embed","input":"hi","safety_identifier":"` + ho + `"}`},
		{"responses, hash, no user member", "hash", "/v1/responses",
			`{"model":"gpt-test","input":"hi","prompt_cache_key":"` + openID + `","metadata":{"u":"` + openID + `"}}`,
			`{"model":"vendor/upstream-model","input":"hi","prompt_cache_key":"` + ho + `","metadata":{"u":"` + ho + `"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, okCompletion))
			url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.mode }))
			resp := post(t, url, tc.path, tc.body, map[string]string{"X-WeChat-OpenID": openID})
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			if got := string(fp.requests()[0].Body); got != tc.want {
				t.Errorf("provider got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestHashKeyPending: under forward_user hash without the key yet (the
// store that keeps it did not answer at startup), a provider gets none of
// the end user's identifiers on any path, neither the OpenID nor a hash
// under some other key, and each such request naming an end user is
// counted (one naming none loses nothing); from SetHashKey
// on, the keyed hash. A key once set stays, and reading it costs a request
// no allocation.
func TestHashKeyPending(t *testing.T) {
	const openID = "oWx-openid-4242"
	ho := expectedUserHash("shop-bot", openID)
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	cfg := testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.HashKey = "" })
	log, reg := logging.New(io.Discard, slog.LevelInfo, nil), prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	formCT := map[string]string{"Content-Type": "multipart/form-data; boundary=" + formBoundaryTest, "X-WeChat-OpenID": openID}
	header := map[string]string{"X-WeChat-OpenID": openID}
	cases := []struct {
		name, path, body string
		hdr              map[string]string
		pending, withKey string
	}{
		{"chat", "/v1/chat/completions",
			`{"model":"gpt-test","messages":[],"user":"` + openID + `","safety_identifier":"` + openID + `","metadata":{"openid":"` + openID + `","shop":"s1"}}`, header,
			`{"model":"vendor/upstream-model","messages":[],"metadata":{"shop":"s1"}}`,
			`{"model":"vendor/upstream-model","messages":[],"user":"` + ho + `","safety_identifier":"` + ho + `","metadata":{"openid":"` + ho + `","shop":"s1"}}`},
		{"embeddings", "/v1/embeddings",
			`{"model":"embed-test","input":"hi","user":"` + openID + `","prompt_cache_key":"` + openID + `"}`, header,
			`{"model":"vendor/embed","input":"hi"}`,
			`{"model":"vendor/embed","input":"hi","user":"` + ho + `","prompt_cache_key":"` + ho + `"}`},
		{"form", "/v1/images/edits",
			form(t, field{"user", "", openID}, field{"safety_identifier", "", openID}, field{"metadata[openid]", "", openID}), formCT,
			"--" + formBoundaryTest + "--\r\n",
			form(t, field{"user", "", ho}, field{"safety_identifier", "", ho}, field{"metadata[openid]", "", ho})},
		// No end user: nothing to drop, and not counted.
		{"chat naming nobody", "/v1/chat/completions", `{"model":"gpt-test","messages":[]}`, nil,
			`{"model":"vendor/upstream-model","messages":[]}`, `{"model":"vendor/upstream-model","messages":[]}`},
	}
	// check sends each case and compares what the provider got with want's
	// choice, and how much the pending count rose with pendingRise.
	check := func(phase string, want func(i int) string, pendingRise float64) {
		t.Helper()
		for i, tc := range cases {
			before := testutil.ToFloat64(s.metrics.hashKeyPending)
			n := len(fp.requests())
			resp := post(t, srv.URL, tc.path, tc.body, tc.hdr)
			if body := readAll(t, resp.Body); resp.StatusCode != 200 {
				t.Fatalf("%s, %s: status %d %s", tc.name, phase, resp.StatusCode, body)
			}
			if got := string(fp.requests()[n].Body); got != want(i) {
				t.Errorf("%s, %s: provider got\n%q\nwant\n%q", tc.name, phase, got, want(i))
			}
			wantRise := pendingRise
			if tc.hdr == nil {
				wantRise = 0 // names no end user
			}
			if rise := testutil.ToFloat64(s.metrics.hashKeyPending) - before; rise != wantRise {
				t.Errorf("%s, %s: paygate_user_hash_key_pending_total rose by %v; want %v", tc.name, phase, rise, wantRise)
			}
		}
	}
	check("the key pending", func(i int) string { return cases[i].pending }, 1)
	if n := testing.AllocsPerRun(100, func() { _ = s.forwardPrivacy(openID) }); n != 0 {
		t.Errorf("reading forward_user allocates %v times a request; want 0", n)
	}
	if !s.SetHashKey([]byte(testHashKey)) {
		t.Fatal("SetHashKey refused the key of a server waiting for it")
	}
	if s.SetHashKey([]byte("another-key-entirely")) {
		t.Error("SetHashKey replaced a key already set")
	}
	check("the key set", func(i int) string { return cases[i].withKey }, 0)
}

func TestClientErrors(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Server.MaxBodyBytes = 1024 }))
	tests := []struct {
		name     string
		key      string
		body     string
		status   int
		wantType string
		wantCode string
	}{
		{"no key", "", `{"model":"gpt-test","messages":[]}`, 401, "invalid_request_error", "invalid_api_key"},
		{"wrong key", "sk-wrong", `{"model":"gpt-test","messages":[]}`, 401, "invalid_request_error", "invalid_api_key"},
		{"bad JSON", testClientKey, `{"model":`, 400, "invalid_request_error", ""},
		{"not an object", testClientKey, `[1,2]`, 400, "invalid_request_error", ""},
		{"no model", testClientKey, `{"messages":[]}`, 400, "invalid_request_error", ""},
		{"unknown model", testClientKey, `{"model":"gpt-nope","messages":[]}`, 404, "invalid_request_error", "model_not_found"},
		{"body too large", testClientKey, `{"model":"gpt-test","messages":[],"pad":"` + strings.Repeat("x", 2000) + `"}`, 413, "invalid_request_error", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(tc.body))
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(body, `"type":"`+tc.wantType+`"`) || !strings.HasPrefix(body, `{"error":{"message":"`) {
				t.Errorf("body %s is not OpenAI error JSON of type %s", body, tc.wantType)
			}
			if tc.wantCode != "" && !strings.Contains(body, `"code":"`+tc.wantCode+`"`) {
				t.Errorf("body %s lacks code %s", body, tc.wantCode)
			}
		})
	}
	if n := len(fp.requests()); n != 0 {
		t.Errorf("provider saw %d requests for rejected client requests", n)
	}
}

// TestPaymentToolNameClash: a signed-in user's request that names one of
// its own tools like a payment tool is a 400 in OpenAI's error JSON (SPEC
// 3), stream or not, and reaches no provider: the model could not tell the
// two apart, and a call of it would be executed as a payment. The legacy
// "functions" field clashes as "tools" does.
func TestPaymentToolNameClash(t *testing.T) {
	tests := []struct{ name, members string }{
		{"tools", `"tools":[{"type":"function","function":{"name":"create_order","parameters":{"type":"object"}}}],`},
		{"functions", `"functions":[{"name":"query_order","parameters":{"type":"object"}}],`},
		{"functions, beside the client's tools", weatherTool + `"functions":[{"name":"get_weather"},{"name":"request_refund"}],`},
		{"functions, a name repeated in another case", `"functions":[{"name":"lookup","Name":"create_order"}],`},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: "/stream", false: "/non-stream"}[stream], func(t *testing.T) {
				fp := newFakeProvider(t, textRound(stream, "hi"))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d; want 400 (%s)", resp.StatusCode, body)
				}
				if msg := gjson.Get(body, "error.message").Str; !strings.Contains(msg, "reserved") ||
					gjson.Get(body, "error.type").Str != "invalid_request_error" {
					t.Errorf("body %s is not OpenAI error JSON naming the clash", body)
				}
				if n := len(fp.requests()); n != 0 {
					t.Errorf("the provider saw %d requests", n)
				}
			})
		}
	}
}

func TestUpstreamFailureStatus(t *testing.T) {
	tests := []struct {
		name     string
		h        http.HandlerFunc
		status   int
		contains string
	}{
		{"provider 400 content filter passed on", jsonHandler(400, `{"error":{"message":"flagged by content filter","type":"invalid_request_error","code":"content_filter"}}`), 400, "content filter"},
		{"provider keeps failing with 500", jsonHandler(500, `{"error":{"message":"boom"}}`), 502, "fake"},
		// A 200 without choices is no chat completion (Baidu Qianfan's
		// rate limit): it used to reach the bot as a 200.
		{"provider's error in a 200", jsonHandler(200, `{"error_code":18,"error_msg":"Open api qps request limit reached"}`), 502, "upstream_malformed_response"},
		{"provider rate limited for long", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3600")
			jsonHandler(429, `{"error":{"message":"slow down","type":"rate_limit_error"}}`)(w, r)
		}, 429, "fake"},
		{"provider overloaded for long", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3600")
			jsonHandler(503, `{"error":{"message":"overloaded","type":"server_error"}}`)(w, r)
		}, 503, "fake"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.h)
			url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
				c.Failover.MaxAttempts = 2
			}))
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[]}`, nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d; want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if !strings.HasPrefix(body, `{"error":`) || !strings.Contains(body, tc.contains) {
				t.Errorf("body %s; want OpenAI error JSON naming %q", body, tc.contains)
			}
			if (tc.status == 429 || tc.status == 503) && resp.Header.Get("Retry-After") != "3600" {
				t.Errorf("%d with Retry-After %q; want the provider's 3600: the client cannot tell when to come back",
					tc.status, resp.Header.Get("Retry-After"))
			}
		})
	}
}

func TestModelsList(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	for _, m := range []string{`"id":"gpt-test"`, `"id":"embed-test"`, `"object":"list"`} {
		if !strings.Contains(body, m) {
			t.Errorf("models %s lacks %s", body, m)
		}
	}
	if strings.Contains(body, "vendor/") {
		t.Errorf("models list leaks upstream names: %s", body)
	}
}

// TestModelRetrieve: GET /v1/models/{id} (models.retrieve in the SDKs)
// answers from the config, as the list does: the model object for a
// configured public name, else OpenAI's 404 model_not_found; the provider,
// which knows only its own names, is not asked.
func TestModelRetrieve(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		req.Header.Set("Authorization", "Bearer "+testClientKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp.Body)
	}
	_, list := get("/v1/models")
	status, body := get("/v1/models/gpt-test")
	if status != 200 || body != gjson.Get(list, `data.#(id=="gpt-test")`).Raw {
		t.Errorf("GET /v1/models/gpt-test: %d %s; want the list's object", status, body)
	}
	status, body = get("/v1/models/vendor/upstream-model")
	if status != 404 || gjson.Get(body, "error.code").Str != "model_not_found" || gjson.Get(body, "error.param").Str != "model" {
		t.Errorf("an unknown name: %d %s; want 404 model_not_found", status, body)
	}
	if n := len(fp.requests()); n != 0 {
		t.Errorf("the provider was asked %d times", n)
	}
}

// TestModelsReadOnly: the models routes serve GET from the config and
// nothing else. Forwarded, DELETE /v1/models/{id} (models.delete in the
// SDKs) deleted a fine-tuned model of the operator's provider account for
// any bot's key; now every other method is a 405 in OpenAI's error shape,
// and the provider is not asked.
func TestModelsReadOnly(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"ft:gpt-4o:acme::abc","object":"model","deleted":true}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, "/v1/models/ft:gpt-4o:acme::abc"},
		{http.MethodDelete, "/v1/models/gpt-test"},
		{http.MethodPost, "/v1/models"},
		{http.MethodPut, "/v1/models/gpt-test"},
		// Spelled so that the models routes miss it but a provider's
		// server may read it as /v1/models: case-insensitive routing
		// (ASP.NET, Azure), ";" parameters dropped (Tomcat, Jetty,
		// Spring).
		{http.MethodDelete, "/v1/Models/ft:gpt-4o:acme::abc"},
		{http.MethodDelete, "/v1/MODELS/ft:gpt-4o:acme::abc"},
		{http.MethodDelete, "/v1/models;x=1/ft:gpt-4o:acme::abc"},
		{http.MethodDelete, "/v1/Models;/ft:gpt-4o:acme::abc"},
		{http.MethodPost, "/v1/Models"},
		{http.MethodDelete, "/v1/%6Dodels/ft:gpt-4o:acme::abc"},
		// Escaped twice or three times: a server in front of the
		// provider that decodes before it does (heldDecoded) makes it
		// /v1/models.
		{http.MethodDelete, "/v1/%256Dodels/ft:gpt-4o:acme::abc"},
		{http.MethodDelete, "/v1/%25256Dodels/ft:gpt-4o:acme::abc"},
		{http.MethodDelete, "/v1/%254Dodels;/ft:gpt-4o:acme::abc"},
	} {
		resp, body := rawRequest(t, url, tc.method, tc.path, `{"model":"gpt-test"}`)
		if resp.StatusCode != http.StatusMethodNotAllowed || gjson.Get(body, "error.code").Str != "method_not_allowed" || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: %d %s (Allow %q); want 405 method_not_allowed, Allow GET, HEAD", tc.method, tc.path, resp.StatusCode, body, resp.Header.Get("Allow"))
		}
	}
	// HEAD, which Allow names, is served as GET is.
	for _, p := range []string{"/v1/models", "/v1/models/gpt-test"} {
		if resp := send(t, http.MethodHead, url, p, "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d; want 200", p, resp.StatusCode)
		}
	}
	// Read in another spelling, the provider's own list is not the
	// config's.
	if resp, body := rawRequest(t, url, http.MethodGet, "/v1/Models", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/Models: %d %s; want 404", resp.StatusCode, body)
	}
	if n := len(fp.requests()); n != 0 {
		t.Errorf("the provider was asked %d times; want 0", n)
	}
}

func TestPassthroughEmbeddings(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[{"embedding":[0.1,0.2]}],"model":"vendor/embed"}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/embeddings?x=1", `{"model":"embed-test","input":"hi","encoding_format":"float","user":"oEmbedUser"}`, nil)
	body := readAll(t, resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(body, `"embedding":[0.1,0.2]`) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	got := fp.requests()[0]
	if got.Path != "/v1/embeddings?x=1" {
		t.Errorf("path %q", got.Path)
	}
	if want := `{"model":"vendor/embed","input":"hi","encoding_format":"float","user":"` + expectedUserHash("shop-bot", "oEmbedUser") + `"}`; string(got.Body) != want {
		t.Errorf("body %s; want %s", got.Body, want)
	}
}

// TestClientDisconnectCancelsUpstream: a bot that hangs up must not leave a
// provider generating (and billing) an answer nobody reads.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	sawCancel := make(chan struct{})
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(sawCancel)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-test","stream":true,"messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "first") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-sawCancel:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled after the client left")
	}
}

// TestRequestIDs checks the ids' shape and that concurrent requests do not
// share one: they join a request's logs, audit records and answer.
func TestRequestIDs(t *testing.T) {
	const n = 2000
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 4 {
				ids <- new(routed).newID()
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if len(id) != 28 || !strings.HasPrefix(id, "req_") || strings.Trim(id[4:], "0123456789abcdef") != "" {
			t.Fatalf("request id %q: want req_ and 24 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("request id %q issued twice", id)
		}
		seen[id] = true
	}
}

// TestPassthroughUserHiddenWhateverTheType: the OpenID in a passthrough
// body is hashed whatever Content-Type the bot sent, since providers'
// servers often parse a JSON body without looking at its type.
func TestPassthroughUserHiddenWhateverTheType(t *testing.T) {
	for _, ct := range []string{"application/json", "Application/JSON", "application/json; charset=utf-8", "text/plain", ""} {
		t.Run(ct, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, `{"object":"list","data":[]}`))
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, url, "/v1/embeddings", ` {"model":"embed-test","input":"hi","user":"oEmbedUser"}`, map[string]string{"Content-Type": ct})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %s", resp.StatusCode, readAll(t, resp.Body))
			}
			got := string(fp.requests()[0].Body)
			if strings.Contains(got, "oEmbedUser") || !strings.Contains(got, expectedUserHash("shop-bot", "oEmbedUser")) {
				t.Errorf("upstream body %s: the OpenID is not hashed", got)
			}
		})
	}
}

// TestReadyzWhileDraining: once shutdown began (Drain), /readyz answers
// 503 so a load balancer stops sending traffic; /healthz stays 200 (the
// process is alive and finishing its requests).
func TestReadyzWhileDraining(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", nil)
	log, reg := logging.New(io.Discard, slog.LevelInfo, nil), prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg, HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	status := func(path string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code
	}
	if got := status("/readyz"); got != 200 {
		t.Fatalf("/readyz before Drain: %d", got)
	}
	s.Drain()
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d; want 503", got)
	}
	if got := status("/healthz"); got != 200 {
		t.Errorf("/healthz while draining: %d; want 200", got)
	}
}

// pingerFunc is a store for /readyz that answers with its error.
type pingerFunc func(context.Context) error

func (f pingerFunc) Ping(ctx context.Context) error { return f(ctx) }

// localPinger is pingerFunc for a store in a local file (store.Local),
// the embedded one.
type localPinger struct{ pingerFunc }

func (localPinger) Local() bool { return true }

// TestReadyzNamesFailingWrites: a store that answers reads while its
// writes fail (store.ErrWritesFail) makes /readyz answer 503 saying so,
// and where to look: "store unreachable" sent an operator to look for a
// network fault on a store in a local file, and "check its disk" sent one
// whose Redis refused writes at its maxmemory to a disk paygate does not
// write to.
func TestReadyzNamesFailingWrites(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", nil)
	log, reg := logging.New(io.Discard, slog.LevelInfo, nil), prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	for _, tc := range []struct {
		err   error
		local bool
		code  int
		body  string
		not   string
	}{
		{nil, true, http.StatusOK, "ready", ""},
		{fmt.Errorf("embedded: data/paygate.db: the last write failed: %w: no space left on device", store.ErrWritesFail), true, http.StatusServiceUnavailable, "writes fail: check its disk", "Redis"},
		{fmt.Errorf("redis write probe: %w: OOM command not allowed when used memory > 'maxmemory'", store.ErrWritesFail), false, http.StatusServiceUnavailable, "writes fail: Redis refuses", "disk"},
		{fmt.Errorf("dial: %w", store.ErrUnavailable), false, http.StatusServiceUnavailable, "store unreachable", ""},
		// Redis answered, refusing paygate's credentials: a config to put
		// right, not a network to look at.
		{errors.New("redis ping: redis owner: WRONGPASS invalid username-password pair or user is disabled."), false, http.StatusServiceUnavailable, "Redis refuses paygate's commands", "unreachable"},
	} {
		var st Pinger = pingerFunc(func(context.Context) error { return tc.err })
		if tc.local {
			st = localPinger{st.(pingerFunc)}
		}
		s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: prometheus.NewRegistry(), HashKey: []byte("k"), Store: st})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) || (tc.not != "" && strings.Contains(w.Body.String(), tc.not)) {
			t.Errorf("/readyz with the store's ping %v (local %v): %d %q; want %d saying %q, not %q", tc.err, tc.local, w.Code, w.Body, tc.code, tc.body, tc.not)
		}
	}
}

// TestStoreStatusMetric: an SRE alerts from /metrics, and nothing there
// said the store was down, refusing writes or had lost its data: /readyz
// said so, but it is no metric, the Kubernetes manifest probes /healthz
// (a native sidecar's readiness is the pod's), and
// paygate_state_unavailable_total moves only with turns. The store's state
// as /readyz reads it is paygate_store_status{status}, 1 for the current
// one and 0 for the others, read at each scrape.
func TestStoreStatusMetric(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", nil)
	log, reg := logging.New(io.Discard, slog.LevelInfo, nil), prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	var pingErr error
	var mu sync.Mutex
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg, HashKey: []byte("k"),
		Store: pingerFunc(func(context.Context) error { mu.Lock(); defer mu.Unlock(); return pingErr })})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ready"},
		{fmt.Errorf("dial: %w", store.ErrUnavailable), "unreachable"},
		{fmt.Errorf("probe: %w: OOM", store.ErrWritesFail), "writes_fail"},
		{fmt.Errorf("epoch: %w: %w", store.ErrUnavailable, store.ErrDataLost), "data_lost"},
		{nil, "ready"},
	} {
		mu.Lock()
		pingErr = tc.err
		mu.Unlock()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for _, st := range []string{"ready", "unreachable", "writes_fail", "data_lost"} {
			want := 0.0
			if st == tc.want {
				want = 1
			}
			line := `paygate_store_status{status="` + st + `"} `
			if !strings.Contains(w.Body.String(), line+strconv.FormatFloat(want, 'g', -1, 64)+"\n") {
				t.Errorf("ping %v: want %s%v in /metrics", tc.err, line, want)
			}
		}
	}
}

// TestRecoveryOutcomesInHelp: the on-call reads what an outcome of
// paygate_stream_recoveries_total means from its HELP in /metrics; each
// outcome the server counts is named there. too_long, a stream cut after
// more than the kept log of events, was counted but not named.
func TestRecoveryOutcomesInHelp(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", nil)
	log, reg := logging.New(io.Discard, slog.LevelInfo, nil), prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg, HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	s.countRecovery(nil, recoveryTooLong) // a series, so the family and its HELP are served
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var help string
	for line := range strings.SplitSeq(w.Body.String(), "\n") {
		if strings.HasPrefix(line, "# HELP paygate_stream_recoveries_total ") {
			help = line
		}
	}
	if help == "" {
		t.Fatalf("no HELP of paygate_stream_recoveries_total in /metrics:\n%s", w.Body.String())
	}
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(help, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' }) {
		words[w] = true
	}
	for _, o := range []string{recoveryRecovered, recoveryDiverged, recoveryPartialCall, recoveryOpaque, recoveryBudget,
		recoveryOff, recoveryNoProvider, recoveryChoices, recoveryClientGone, recoveryTooLong, recoveryRefused} {
		if !words[o] {
			t.Errorf("HELP does not name outcome %s: %s", o, help)
		}
	}
}
