package proxy

import (
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
)

// wireError is an OpenAI error body as an SDK reads it: param and code may
// be null (nil here).
type wireError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func decodeWireError(t *testing.T, body string) wireError {
	t.Helper()
	var e struct {
		Error *wireError `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == nil {
		t.Fatalf("body %s is not an OpenAI error: %v", body, err)
	}
	return *e.Error
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// TestProviderNotFoundStaysNotFound: files.retrieve("file-nope") used to
// get a 502 upstream_model_not_found, which SDKs retry and never raise as
// NotFoundError; so did a chat completion whose every target's model was
// gone. When every target answered 404, the bot gets the provider's 404
// with its message, type, code and param, after one request per target.
func TestProviderNotFoundStaysNotFound(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		provider                 string
		wantType, wantCode       string
		wantParam                string
		wantMsg                  string
	}{
		{"files.retrieve", http.MethodGet, "/v1/files/file-nope", "",
			`{"error":{"message":"No such File object: file-nope","type":"invalid_request_error","param":"id","code":null}}`,
			"invalid_request_error", "<null>", "id", "No such File object: file-nope"},
		{"batches.retrieve, a bare 404", http.MethodGet, "/v1/batches/batch_nope", "", `{"detail":"Not Found"}`,
			"invalid_request_error", "<null>", "<null>", "provider fake: not found (HTTP 404)"},
		{"chat completion of a model gone upstream", http.MethodPost, "/v1/chat/completions",
			`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`,
			`{"error":{"message":"The model vendor/upstream-model does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			"invalid_request_error", "model_not_found", "<null>", "The model vendor/upstream-model does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(404, tc.provider))
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			var resp *http.Response
			if tc.method == http.MethodGet {
				resp = clientReq(t, tc.method, url+tc.path, nil, nil)
			} else {
				resp = post(t, url, tc.path, tc.body, nil)
			}
			b := readAll(t, resp.Body)
			e := decodeWireError(t, b)
			if resp.StatusCode != http.StatusNotFound || e.Type != tc.wantType || str(e.Code) != tc.wantCode ||
				str(e.Param) != tc.wantParam || e.Message != tc.wantMsg {
				t.Errorf("got %d %s; want 404 type %q code %s param %s message %q", resp.StatusCode, b,
					tc.wantType, tc.wantCode, tc.wantParam, tc.wantMsg)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("provider saw %d requests; want 1 (a 404 is not retried)", n)
			}
		})
	}
}

// TestProviderRateLimitReachesBotAs429: a provider's 429 used to reach the
// bot as a 503, and without a Retry-After unless the provider sent one.
// SDKs type a rate limit by its status (RateLimitError, go-openai's
// HTTPStatusCode 429) and back off by Retry-After: a round every attempt of
// which was rate limited is a 429 rate_limit_exceeded, an overload stays a
// 503, and both always carry a Retry-After in whole seconds, at least 1.
func TestProviderRateLimitReachesBotAs429(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		retryAfter     string // the provider's
		body           string
		wantStatus     int
		wantCode       string
		wantRetryAfter string // "": any whole number of seconds from 1
	}{
		{"429 with Retry-After", 429, "20", `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			429, "rate_limit_exceeded", "20"},
		{"429 without Retry-After", 429, "", `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			429, "rate_limit_exceeded", ""},
		{"503 overloaded with Retry-After", 503, "20", `{"error":{"message":"overloaded","type":"server_error"}}`,
			503, "upstream_rate_limited", "20"},
		{"503 overloaded without Retry-After", 503, "", `{"error":{"message":"overloaded","type":"server_error"}}`,
			503, "upstream_rate_limited", ""},
		// Out of quota: the provider cools down 30 minutes, too long for an
		// SDK to wait out in the bot's request (x-should-retry: false).
		{"429 out of quota", 429, "", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`,
			503, "upstream_insufficient_quota", "1800"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				jsonHandler(tc.status, tc.body)(w, r)
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
			b := readAll(t, resp.Body)
			e := decodeWireError(t, b)
			if resp.StatusCode != tc.wantStatus || str(e.Code) != tc.wantCode {
				t.Errorf("got %d %s; want %d with code %s", resp.StatusCode, b, tc.wantStatus, tc.wantCode)
			}
			ra := resp.Header.Get("Retry-After")
			n, err := strconv.Atoi(ra)
			if err != nil || n < 1 || (tc.wantRetryAfter != "" && ra != tc.wantRetryAfter) {
				t.Errorf("Retry-After %q; want %s", ra, cmp.Or(tc.wantRetryAfter, "whole seconds, at least 1"))
			}
			if got, want := resp.Header.Get("X-Should-Retry"), map[bool]string{true: "false"}[n > 60]; got != want {
				t.Errorf("x-should-retry %q with Retry-After %q; want %q", got, ra, want)
			}
		})
	}
}

// TestWriteErrorRetryAfter: a 429 or 503 always tells the client when to
// come back, in whole seconds rounded up and at least 1, whether or not the
// error knows how long; other statuses carry it only when it does. A wait
// longer than a minute (a provider out of quota cools down 30 minutes), or
// an error a retry cannot mend, also says "x-should-retry: false": the
// OpenAI Node SDK sleeps out any Retry-After inside the bot's request, so
// the user heard nothing for an hour (two retries of 30 minutes).
func TestWriteErrorRetryAfter(t *testing.T) {
	tests := []struct {
		status      int
		retryAfter  time.Duration
		noRetry     bool
		want        string
		shouldRetry string
	}{
		{429, 0, false, "1", ""},
		{503, 0, false, "1", ""},
		{429, 300 * time.Millisecond, false, "1", ""},
		{503, 1500 * time.Millisecond, false, "2", ""},
		{429, 20 * time.Second, false, "20", ""},
		{429, 60 * time.Second, false, "60", ""},
		{503, 61 * time.Second, false, "61", "false"},
		{503, 30 * time.Minute, false, "1800", "false"},
		{502, 0, false, "", ""},
		{502, 0, true, "", "false"},
		{400, 0, false, "", ""},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		writeError(w, &apiError{Status: tc.status, Type: "upstream_error", Message: "x", RetryAfter: tc.retryAfter, NoRetry: tc.noRetry})
		if got := w.Header().Get("Retry-After"); got != tc.want || w.Code != tc.status {
			t.Errorf("%d with RetryAfter %v: status %d, Retry-After %q; want %q", tc.status, tc.retryAfter, w.Code, got, tc.want)
		}
		if got := w.Header().Get("X-Should-Retry"); got != tc.shouldRetry {
			t.Errorf("%d with RetryAfter %v, NoRetry %v: x-should-retry %q; want %q", tc.status, tc.retryAfter, tc.noRetry, got, tc.shouldRetry)
		}
	}
}

// TestProviderErrorKeepsParam: the provider's error names the request
// parameter at fault ("param": "temperature"); SDKs expose it as err.param
// and bots branch on it. It used to reach the bot as null, before the
// first byte and in a stream's error event alike. It now comes through as
// the provider sent it (null when it sent null or nothing).
func TestProviderErrorKeepsParam(t *testing.T) {
	const chunk = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Partial"},"finish_reason":null}]}` + "\n\n"
	tests := []struct {
		name      string
		h         http.HandlerFunc
		stream    bool
		wantParam string // "<null>": null
	}{
		{"a 400", jsonHandler(400, `{"error":{"message":"Invalid value for 'temperature': must be <= 2.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`),
			false, "temperature"},
		{"a 400 with param null", jsonHandler(400, `{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"invalid_value"}}`),
			false, "<null>"},
		{"a 400 without param", jsonHandler(400, `{"error":{"message":"bad","type":"invalid_request_error","code":"invalid_value"}}`),
			false, "<null>"},
		{"an error object as the first event", sseHandler(`data: {"error":{"message":"Invalid 'messages[0].content'","type":"invalid_request_error","param":"messages[0].content","code":"invalid_value"}}` + "\n\n"),
			true, "messages[0].content"},
		{"a content filter after the first byte", sseHandler(chunk,
			`data: {"error":{"message":"Output data may contain inappropriate content.","type":"data_inspection_failed","param":"messages","code":"data_inspection_failed"}}`+"\n\n"),
			true, "messages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.h)
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			body := `{"model":"gpt-test","temperature":5,"messages":[{"role":"user","content":"hi"}]}`
			if tc.stream {
				body = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			}
			resp := post(t, url, "/v1/chat/completions", body, nil)
			b := readAll(t, resp.Body)
			errJSON := b
			if resp.StatusCode == http.StatusOK {
				// The stream's last event carries the error.
				i := strings.LastIndex(b, `data: {"error"`)
				if i < 0 {
					t.Fatalf("stream without an error event:\n%s", b)
				}
				errJSON = strings.TrimSpace(strings.TrimPrefix(b[i:], "data: "))
			} else if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %d %s; want the provider's 400", resp.StatusCode, b)
			}
			if e := decodeWireError(t, errJSON); str(e.Param) != tc.wantParam {
				t.Errorf("param %s in %s; want %s", str(e.Param), errJSON, tc.wantParam)
			}
		})
	}
}

// TestProvider413IsNotContextLength: a provider (or the nginx or Cloudflare
// in front of it) that refuses a multi-MB image body with a 413 used to
// reach the bot as context_length_exceeded, telling it to shorten a
// conversation that was not too long. The bot now gets the 413 as such:
// code request_too_large and a message saying so, or the provider's own
// error when it sent one.
func TestProvider413IsNotContextLength(t *testing.T) {
	tests := []struct {
		name              string
		h                 http.HandlerFunc
		wantType          string
		wantCode, wantMsg string
	}{
		{"an nginx page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(413)
			_, _ = io.WriteString(w, "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 Request Entity Too Large</h1></center><hr><center>nginx</center></body></html>")
		}, "invalid_request_error", "request_too_large", "provider fake refused the request as too large (HTTP 413)"},
		{"the provider's error object", jsonHandler(413, `{"error":{"message":"Request body exceeds 20 MB","type":"invalid_request_error","param":"messages","code":"payload_too_large"}}`),
			"invalid_request_error", "payload_too_large", "Request body exceeds 20 MB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.h)
			u, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, u, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`, nil)
			b := readAll(t, resp.Body)
			e := decodeWireError(t, b)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || e.Type != tc.wantType || str(e.Code) != tc.wantCode ||
				!strings.HasPrefix(e.Message, tc.wantMsg) {
				t.Errorf("got %d %s; want 413 type %s code %s message %q", resp.StatusCode, b, tc.wantType, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

// TestProviderRedirectIsNotPassedOn: a provider that answered a redirect
// (its base_url http where it serves https) used to hand the bot the 3xx,
// without its Location, as if the bot had erred. The bot now gets a 502
// OpenAI error naming the provider, the redirect and what to check.
func TestProviderRedirectIsNotPassedOn(t *testing.T) {
	up := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/v1/chat/completions", http.StatusMovedPermanently)
	})
	url, _ := newTestProxy(t, testConfig(t, up.URL, nil))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("bot got HTTP %d (Location %q) %s; want a 502", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	e := decodeWireError(t, body)
	const want = "provider fake answered a redirect (HTTP 301) to https://elsewhere.example/v1/chat/completions: check its base_url"
	if e.Type != "upstream_error" || str(e.Code) != "upstream_misconfigured" || !strings.Contains(e.Message, want) {
		t.Errorf("bot got %s; want upstream_error upstream_misconfigured saying %q", body, want)
	}
}

// TestForwardedPathRedirectCoolsNothing: on a forwarded path the bot chose
// the path; a FastAPI-based provider (vLLM, SGLang, LiteLLM) redirects a
// trailing slash. The bot gets a 502 saying so, and the provider stays in
// service for every other bot (a redirect on the chat path, which paygate
// builds, is the base_url's fault and cools it down).
func TestForwardedPathRedirectCoolsNothing(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			w.Header().Set("Location", strings.TrimSuffix(p, "/"))
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`)(w, r)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/embeddings/", `{"model":"gpt-test","input":"x"}`, nil)
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "redirect (HTTP 307) to /v1/embeddings") || !strings.Contains(body, "check the request's path") {
		t.Errorf("the bot's POST /v1/embeddings/: %d %s; want a 502 naming the redirect", resp.StatusCode, body)
	}
	resp = post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	if body := readAll(t, resp.Body); resp.StatusCode != http.StatusOK {
		t.Errorf("another bot's chat after it: %d %s; want 200 from the provider, not in cool-down", resp.StatusCode, body)
	}
}

// TestRateLimitStaysA429WhileCoolingDown: a provider's 429 with a long
// Retry-After reaches the bot as 429 rate_limit_exceeded, and so does the
// next request, which finds the provider cooling down for it and asks no
// one: the same rate limit was a 429 first and a 503 upstream_unavailable
// after, which the SDKs type as two different errors (RateLimitError,
// then InternalServerError). A cool-down for an overload stays a 503.
func TestRateLimitStaysA429WhileCoolingDown(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   int
	}{
		{"rate limited", 429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, 429},
		{"overloaded", 503, `{"error":{"message":"overloaded","type":"server_error"}}`, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "600")
				jsonHandler(tc.status, tc.body)(w, r)
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			for i := range 2 {
				resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
				b := readAll(t, resp.Body)
				if resp.StatusCode != tc.want {
					t.Errorf("request %d: %d %s; want %d", i+1, resp.StatusCode, b, tc.want)
				}
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("the provider was asked %d times; want once (then cooling down)", n)
			}
		})
	}
}

// TestFailedRoundNamesItsAttempts: the error answer of a round no target
// answered carried no X-Paygate-Attempts nor X-Paygate-Provider (SPEC 5:
// on every answer), on chat completions, a signed-in user's turn and a
// forwarded path alike: "x2" was in the message text only. It now names
// the attempts made and the provider asked last, for a provider's error
// passed on as it came too.
func TestFailedRoundNamesItsAttempts(t *testing.T) {
	const chat = `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	const chatStream = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	const filtered = `{"error":{"message":"flagged by content filter","type":"invalid_request_error","code":"content_filter"}}`
	tests := []struct {
		name, path, body, user string
		provider               http.HandlerFunc
		wantStatus             int
	}{
		{"chat", "/v1/chat/completions", chat, "", jsonHandler(500, `{"error":{"message":"boom"}}`), 502},
		{"chat stream", "/v1/chat/completions", chatStream, "", jsonHandler(500, `{"error":{"message":"boom"}}`), 502},
		{"signed-in turn", "/v1/chat/completions", chat, "o-user-1", jsonHandler(500, `{"error":{"message":"boom"}}`), 502},
		{"signed-in stream turn", "/v1/chat/completions", chatStream, "o-user-1", jsonHandler(500, `{"error":{"message":"boom"}}`), 502},
		{"forwarded path", "/v1/embeddings", `{"model":"embed-test","input":"hi"}`, "", jsonHandler(500, `{"error":{"message":"boom"}}`), 502},
		{"the provider's refusal passed on", "/v1/chat/completions", chat, "", jsonHandler(400, filtered), 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.provider)
			url := toolsProxy(t, fp.URL, &recordingTools{}, func(c *config.Config) { c.Failover.MaxAttempts = 2 })
			hdr := map[string]string{}
			if tc.user != "" {
				hdr["X-WeChat-OpenID"] = tc.user
			}
			resp := post(t, url, tc.path, tc.body, hdr)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d %s; want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if got, want := resp.Header.Get("X-Paygate-Attempts"), strconv.Itoa(len(fp.requests())); got != want {
				t.Errorf("X-Paygate-Attempts %q; want %s, the attempts made", got, want)
			}
			if got := resp.Header.Get("X-Paygate-Provider"); got != "fake" {
				t.Errorf("X-Paygate-Provider %q; want fake, the provider asked last", got)
			}
		})
	}
}

// TestFailedRoundNamesTheProviderOfItsError: a failed round's
// X-Paygate-Provider named the provider asked last, though the error the
// client reads may be an earlier one's: a refusal of the request's length
// wins over a 500 after it, and a 429's Retry-After is the shortest wait
// among the providers. Whoever debugged the 400 or the wait looked at the
// wrong provider. The header now names the provider whose error (its
// status and message, its wait) is passed on, on every path, and
// X-Paygate-Attempts still counts every attempt.
func TestFailedRoundNamesTheProviderOfItsError(t *testing.T) {
	const chat = `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	const chatStream = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	paths := []struct{ name, path, body, user string }{
		{"chat", "/v1/chat/completions", chat, ""},
		{"chat stream", "/v1/chat/completions", chatStream, ""},
		{"signed-in turn", "/v1/chat/completions", chat, "o-user-1"},
		{"signed-in stream turn", "/v1/chat/completions", chatStream, "o-user-1"},
		{"forwarded path", "/v1/embeddings", `{"model":"gpt-test","input":"hi"}`, ""},
	}
	limited := func(retryAfter string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", retryAfter)
			jsonHandler(429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)(w, r)
		}
	}
	cases := []struct {
		name        string
		fake, other http.HandlerFunc
		wantStatus  int
	}{
		{"a length refused before a 500", contextTooLong, jsonHandler(500, `{"error":{"message":"boom"}}`), 400},
		{"the shorter Retry-After asked first", limited("30"), limited("3600"), 429},
	}
	for _, c := range cases {
		for _, p := range paths {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				fake, other := newFakeProvider(t, c.fake), newFakeProvider(t, c.other)
				url := toolsProxy(t, fake.URL, &recordingTools{}, withSecondProvider(other.URL))
				hdr := map[string]string{}
				if p.user != "" {
					hdr["X-WeChat-OpenID"] = p.user
				}
				resp := post(t, url, p.path, p.body, hdr)
				body := readAll(t, resp.Body)
				if resp.StatusCode != c.wantStatus {
					t.Fatalf("status %d %s; want %d", resp.StatusCode, body, c.wantStatus)
				}
				if len(other.requests()) == 0 {
					t.Fatal("the other provider was not asked")
				}
				if got := resp.Header.Get("X-Paygate-Provider"); got != "fake" {
					t.Errorf("X-Paygate-Provider %q; want fake, whose error the client got: %s", got, body)
				}
				if got, want := resp.Header.Get("X-Paygate-Attempts"), strconv.Itoa(len(fake.requests())+len(other.requests())); got != want {
					t.Errorf("X-Paygate-Attempts %q; want %s, every attempt made", got, want)
				}
			})
		}
	}
}

// TestProviderURLFunctionKeyMasked: an OpenAI-compatible server behind an
// Azure Functions HTTP trigger takes its function key in the base_url's
// query as ?code= (the webhook relay masks it so for a merchant's
// endpoint); a provider whose error quotes its request URL handed that key
// to the bot and the log, as code is no credential-like name.
func TestProviderURLFunctionKeyMasked(t *testing.T) {
	const functionKey = "AzFnQw7Rt2Lm9Xv4Pz8Ns6Kd3Jb"
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		jsonHandler(http.StatusBadRequest, `{"error":{"message":"no route for `+r.URL.RequestURI()+`"}}`)(w, r)
	})
	url, logs := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].BaseURL = fp.URL + "/v1?code=" + functionKey
	}))
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	body := readAll(t, resp.Body)
	if strings.Contains(body, functionKey) || !strings.Contains(body, "code="+logging.Mask) {
		t.Errorf("the bot got %d %s; want the function key masked as %s", resp.StatusCode, body, logging.Mask)
	}
	if strings.Contains(logs.String(), functionKey) {
		t.Errorf("the log holds the function key:\n%s", logs.String())
	}
}
