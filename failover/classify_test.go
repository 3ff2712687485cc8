package failover

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
		ok     bool
	}{
		{"absent", nil, 0, false},
		{"seconds", map[string]string{"Retry-After": "2"}, 2 * time.Second, true},
		{"fractional seconds", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond, true},
		{"HTTP date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second, true},
		{"HTTP date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0, true},
		{"milliseconds header wins", map[string]string{"Retry-After-Ms": "1500", "Retry-After": "9"}, 1500 * time.Millisecond, true},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, false},
		{"negative", map[string]string{"Retry-After": "-3"}, 0, false},
		{"huge seconds are capped, not overflowed", map[string]string{"Retry-After": "10000000000"}, maxRetryAfter, true},
		{"1e300 seconds", map[string]string{"Retry-After": "1e300"}, maxRetryAfter, true},
		{"NaN", map[string]string{"Retry-After": "NaN"}, 0, false},
		{"Inf", map[string]string{"Retry-After": "Inf"}, 0, false},
		{"huge milliseconds", map[string]string{"Retry-After-Ms": "1e13"}, maxRetryAfter, true},
		{"NaN milliseconds fall back to seconds", map[string]string{"Retry-After-Ms": "NaN", "Retry-After": "2"}, 2 * time.Second, true},
		// RFC 9110's delay-seconds is 1*DIGIT, of any length: past a
		// float64's range it is still "a long time", not no answer.
		{"delay-seconds past a float64's range", map[string]string{"Retry-After": strings.Repeat("9", 400)}, maxRetryAfter, true},
		{"1e400 seconds", map[string]string{"Retry-After": "1e400"}, maxRetryAfter, true},
		{"milliseconds past a float64's range", map[string]string{"Retry-After-Ms": strings.Repeat("9", 400), "Retry-After": "2"}, maxRetryAfter, true},
		{"negative past a float64's range", map[string]string{"Retry-After": "-" + strings.Repeat("9", 400)}, 0, false},
		{"HTTP date years away", map[string]string{"Retry-After": now.Add(5 * 365 * 24 * time.Hour).Format(http.TimeFormat)}, maxRetryAfter, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			got, ok := parseRetryAfter(h, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// geminiRateLimited is Gemini's 429 (its OpenAI-compatible endpoint wraps
// it in an array), which gives the wait in a google.rpc.RetryInfo and sends
// no Retry-After header.
func geminiRateLimited(delay string) string {
	return `[{"error":{"code":429,"message":"You exceeded your current quota. Please retry in ` + delay + `.",` +
		`"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure",` +
		`"violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.Help","links":[{"url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"` + delay + `"}]}}]`
}

// TestRetryInfoIsARetryAfter: the delay of a google.rpc.RetryInfo in an
// error body counts as a Retry-After; a header, when there is one, wins.
func TestRetryInfoIsARetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		body   string
		want   time.Duration
		ok     bool
	}{
		{"whole seconds", nil, geminiRateLimited("7s"), 7 * time.Second, true},
		{"fractional seconds", nil, geminiRateLimited("2.463586755s"), 2463586755 * time.Nanosecond, true},
		{"not in an array", nil, strings.TrimSuffix(strings.TrimPrefix(geminiRateLimited("53s"), "["), "]"), 53 * time.Second, true},
		{"header wins", map[string]string{"Retry-After": "2"}, geminiRateLimited("53s"), 2 * time.Second, true},
		{"huge is capped", nil, geminiRateLimited("1e300s"), maxRetryAfter, true},
		{"no unit", nil, geminiRateLimited("7"), 0, false},
		{"negative", nil, geminiRateLimited("-7s"), 0, false},
		{"no RetryInfo", nil, `{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`, 0, false},
		{"openrouter's reset in metadata.headers", nil, openRouterDailyLimit(now.Add(90*time.Minute), "0"), 90 * time.Minute, true},
		{"openrouter's reset with requests remaining", nil, openRouterDailyLimit(now.Add(90*time.Minute), "3"), 0, false},
		{"openrouter's reset passed", nil, openRouterDailyLimit(now.Add(-time.Minute), "0"), 0, true},
		{"retryDelay outside a RetryInfo", nil, `{"error":{"code":429,"message":"m","details":[{"@type":"type.googleapis.com/google.rpc.Help","retryDelay":"7s"}]}}`, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			f := classifyHTTP(http.StatusTooManyRequests, h, []byte(tc.body), now)
			if f.retryAfter != tc.want || f.hasRetry != tc.ok {
				t.Errorf("got %v, %v; want %v, %v", f.retryAfter, f.hasRetry, tc.want, tc.ok)
			}
			if f.cause != CauseRateLimited {
				t.Errorf("cause %q; want %q", f.cause, CauseRateLimited)
			}
		})
	}
}

func TestClassifyHTTP(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		wantCause string
	}{
		{"500", 500, "", CauseServerError},
		{"502 html", 502, "<html>bad gateway</html>", CauseServerError},
		{"408", 408, "", CauseServerError},
		{"429 rate limit", 429, errBody("requests", "rate_limit_exceeded", "x"), CauseRateLimited},
		{"429 quota (OpenAI)", 429, errBody("insufficient_quota", "insufficient_quota", "quota"), CauseInsufficientQuota},
		{"402 credits (OpenRouter)", 402, `{"error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits"}}`, CauseInsufficientQuota},
		{"402 balance (DeepSeek)", 402, `{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}`, CauseInsufficientQuota},
		{"503", 503, "", CauseRateLimited},
		{"529 Anthropic", 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, CauseRateLimited},
		{"498 Groq flex capacity", 498, groqFlexFull, CauseRateLimited},
		{"400 context length code", 400, errBody("invalid_request_error", "context_length_exceeded", "x"), CauseContextLength},
		{"400 context length message only", 400, `{"error":{"message":"This model's maximum context length is 8192 tokens"}}`, CauseContextLength},
		{"413", 413, "", CauseRequestTooLarge},
		{"413 nginx page", 413, "<html><head><title>413 Request Entity Too Large</title></head></html>", CauseRequestTooLarge},
		{"413 request_too_large (Anthropic)", 413, `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`, CauseRequestTooLarge},
		{"413 context length code", 413, errBody("invalid_request_error", "context_length_exceeded", "x"), CauseContextLength},
		{"413 context length message", 413, `{"error":{"message":"prompt is too long: 250000 tokens > 200000 maximum"}}`, CauseContextLength},
		{"400 content filter", 400, errBody("invalid_request_error", "content_filter", "filtered"), CauseClientError},
		{"400 plain", 400, `{"error":"bad json"}`, CauseClientError},
		{"401", 401, "", CauseMisconfigured},
		{"403", 403, "", CauseMisconfigured},
		{"404", 404, errBody("invalid_request_error", "model_not_found", "no such model"), CauseModelNotFound},
		{"422", 422, `{"detail":"x"}`, CauseClientError},
		{"301", 301, "<html>moved</html>", CauseMisconfigured},
		{"308 with an error object", 308, errBody("invalid_request_error", "bad_request", "x"), CauseMisconfigured},
		{"101 unasked", 101, "", CauseMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := classifyHTTP(tc.status, http.Header{}, []byte(tc.body), time.Now())
			if f.cause != tc.wantCause || f.status != tc.status {
				t.Errorf("got %s %d; want %s %d", f.cause, f.status, tc.wantCause, tc.status)
			}
		})
	}
}

func TestErrorObject(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		wantNil    bool
		wantStatus int
		wantCause  string
	}{
		{"no error", contentChunk("x"), true, 0, ""},
		{"error word in content is not an error", contentChunk(`an \"error\": nothing`), true, 0, ""},
		{"null error", `{"error":null,"choices":[]}`, true, 0, ""},
		{"rate limit code", errBody("", "rate_limit_exceeded", "x"), false, 429, CauseRateLimited},
		{"rate limit type", `{"error":{"type":"rate_limit_error","message":"x"}}`, false, 429, CauseRateLimited},
		{"quota", errBody("insufficient_quota", "insufficient_quota", "x"), false, 429, CauseInsufficientQuota},
		{"relay group saturated (new-api), quota code kept", errBody("insufficient_quota", "insufficient_quota", "当前分组上游负载已饱和，请稍后再试"), false, 429, CauseRateLimited},
		{"overloaded (Anthropic)", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, false, 529, CauseRateLimited},
		{"numeric code (OpenRouter)", `{"error":{"code":503,"message":"no provider"}}`, false, 503, CauseRateLimited},
		{"context length", errBody("invalid_request_error", "context_length_exceeded", "x"), false, 400, CauseContextLength},
		{"content filter", errBody("", "content_filter", "x"), false, 400, CauseClientError},
		{"bad key", errBody("", "invalid_api_key", "x"), false, 401, CauseMisconfigured},
		{"unknown", `{"error":{"message":"weird"}}`, false, 500, CauseServerError},
		{"string error", `{"error":"weird"}`, false, 500, CauseServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := errorObject([]byte(tc.data))
			if tc.wantNil {
				if f != nil {
					t.Errorf("got %+v; want no error", f)
				}
				return
			}
			if f == nil || f.status != tc.wantStatus || f.cause != tc.wantCause {
				t.Errorf("got %+v; want status %d cause %s", f, tc.wantStatus, tc.wantCause)
			}
		})
	}
}

func TestTokenBearing(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"role only", roleChunk(), false},
		{"empty content", `{"choices":[{"delta":{"content":""}}]}`, false},
		{"null content", `{"choices":[{"delta":{"content":null}}]}`, false},
		{"usage only", usageChunk(), false},
		{"content", contentChunk("x"), true},
		{"reasoning_content", reasoningChunk("hm"), true},
		{"reasoning (OpenRouter)", `{"choices":[{"delta":{"reasoning":"hm"}}]}`, true},
		{"refusal", `{"choices":[{"delta":{"refusal":"no"}}]}`, true},
		{"tool call", `{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":""}}]}}]}`, true},
		{"finish", finishChunk(), true},
		{"second choice content", `{"choices":[{"delta":{}},{"delta":{"content":"x"}}]}`, true},
		{"legacy text", `{"choices":[{"text":"x"}]}`, true},
		{"content parts (Mistral thinking)", `{"choices":[{"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"hm"}]}]}}]}`, true},
		{"empty content parts", `{"choices":[{"delta":{"content":[]}}]}`, false},
		// Audio output (modalities ["text","audio"]) streams in delta.audio.
		{"audio transcript", `{"choices":[{"index":0,"delta":{"content":null,"audio":{"id":"audio_1","transcript":"word "}}}]}`, true},
		{"audio data", `{"choices":[{"index":0,"delta":{"audio":{"id":"audio_1","data":"UklGRiQAAABXQVZF"}}}]}`, true},
		{"audio id only", `{"choices":[{"index":0,"delta":{"audio":{"id":"audio_1","transcript":"","data":""}}}]}`, false},
		{"audio null", `{"choices":[{"index":0,"delta":{"content":null,"audio":null}}]}`, false},
		// An image model's picture (modalities ["image"]) in delta.images.
		{"image", `{"choices":[{"index":0,"delta":{"content":"","images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}}]}`, true},
		{"no images", `{"choices":[{"index":0,"delta":{"content":"","images":[]}}]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tokenBearing(tc.data); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestHasFinish(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"null", contentChunk("x"), false},
		{"stop", finishChunk(), true},
		{"with space", `{"choices":[{"delta":{},"finish_reason": "length"}]}`, true},
		{"key text inside content", `{"choices":[{"delta":{"content":"\"finish_reason\":\"stop\""},"finish_reason":null}]}`, false},
		{"longer key", `{"choices":[{"delta":{},"xfinish_reason":"stop","finish_reason":null}]}`, false},
		{"longer key before the key", `{"xfinish_reason":"a","choices":[{"delta":{},"finish_reason":"stop"}]}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hasFinish([]byte(tc.data)); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
			if m, ok := scanEvent([]byte(tc.data)); !ok || (m&markFinish != 0) != tc.want {
				t.Errorf("scanEvent: valid %v, finish %v; want %v", ok, m&markFinish != 0, tc.want)
			}
		})
	}
}

func FuzzHasFinish(f *testing.F) {
	for _, s := range []string{finishChunk(), contentChunk("x"), `{"choices":[{"finish_reason" : "stop"}]}`, `{"finish_reason":""}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !gjson.Valid(s) {
			return
		}
		got := hasFinish([]byte(s))
		// The scan must agree with a parse wherever the key sits in the
		// first choice (the shape every provider uses).
		if fr := gjson.Get(s, "choices.0.finish_reason"); fr.Type == gjson.String && fr.Str != "" && !got {
			t.Errorf("hasFinish(%q) = false; a parse finds %q", s, fr.Str)
		}
	})
}

// TestPlainErrorTextCut: a non-JSON error body is kept up to 512 bytes, cut
// back to a rune boundary so the client's error message stays valid UTF-8.
func TestPlainErrorTextCut(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		body string
		want string
	}{
		{"short", "<html>bad gateway</html>", "<html>bad gateway</html>"},
		{"exactly 512", x(512), x(512)},
		{"ASCII cut at 512", x(600), x(512)},
		{"2-byte rune across the cut", x(511) + "é tail", x(511)},
		{"2-byte rune ends at the cut", x(510) + "é tail", x(510) + "é"},
		{"3-byte rune across the cut, 1 byte in", x(511) + "模 tail", x(511)},
		{"3-byte rune across the cut, 2 bytes in", x(510) + "模 tail", x(510)},
		{"4-byte rune across the cut, 1 byte in", x(511) + "😀 tail", x(511)},
		{"4-byte rune across the cut, 2 bytes in", x(510) + "😀 tail", x(510)},
		{"4-byte rune across the cut, 3 bytes in", x(509) + "😀 tail", x(509)},
		{"4-byte rune ends at the cut", x(508) + "😀 tail", x(508) + "😀"},
		{"stray continuation bytes at the cut", x(511) + "\x80\x80\x80\x80", x(511) + "\x80"},
		{"not UTF-8 at all", strings.Repeat("\xff", 600), strings.Repeat("\xff", 512)},
		{"space before the cut trimmed", x(500) + strings.Repeat(" ", 11) + "é", x(500)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := classifyHTTP(502, http.Header{}, []byte(tc.body), time.Now())
			got := errorText{}.cut(f.errMsg, maxPlainErrorText) // as the attempt cuts it
			if !f.plain || got != tc.want {
				t.Errorf("got %q (%d bytes, plain %v); want %q (%d bytes)", got, len(got), f.plain, tc.want, len(tc.want))
			}
			if utf8.ValidString(tc.body) && !utf8.ValidString(got) {
				t.Errorf("got %q: a valid UTF-8 body was cut into invalid UTF-8", got)
			}
		})
	}
}

// TestPlainErrorTextMaskedBeforeCut: a provider or the WAF in front of it
// may quote the request's key anywhere in a non-JSON error page. The page
// used to be cut to 512 bytes first and masked after, by the proxy and the
// log, which replace whole secrets only: a key straddling the cut reached
// the bot and the log as its first bytes. Secrets are masked on the whole
// text, then it is cut; and the cut never splits a secret too short for
// the client's masking (a placeholder key, which the log still masks).
func TestPlainErrorTextMaskedBeforeCut(t *testing.T) {
	const key = "sk-proj-REVIEWabcdefghijklmnopqrstuvwxyz0123456789ABCDEF" // 55 bytes
	const short = "pw-short9"                                              // 9 bytes: the log's, not the client's
	x := func(n int) string { return strings.Repeat("x", n) }
	cfg := &config.Config{Providers: []config.Provider{{Name: "p", APIKey: key}}}
	cfg.Store.Redis.Password = short
	et := newErrorText(cfg)
	tests := []struct {
		name, page, want string
	}{
		{"key straddling the cut", x(460) + " x-api-key: " + key + " rejected",
			x(460) + " x-api-key: " + logging.Mask + " rejected"},
		{"key starting right before the cut", x(500) + key, x(500) + logging.Mask},
		{"key starting at the cut", x(512) + key, x(512)},
		{"key past the cut", x(600) + key, x(512)},
		{"mask across the cut", x(505) + key + " tail", x(505) + logging.Mask[:7]},
		{"short secret straddling the cut", x(508) + short + " tail", x(508)},
		{"short secret before the cut kept for the log", x(10) + short + x(600), x(10) + short + x(512-10-len(short))},
		{"bearer credential straddling the cut", x(480) + " Authorization: Bearer " + "unknown-token-0123456789",
			x(480) + " Authorization: Bearer " + logging.Mask[:512-480-len(" Authorization: Bearer ")]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := classifyHTTP(400, http.Header{}, []byte(tc.page), time.Now())
			got := et.cut(f.errMsg, maxPlainErrorText)
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			for _, s := range []string{key[:8], short[:3], "unknown-tok"} {
				if strings.Contains(got, s) && !strings.Contains(tc.want, s) {
					t.Errorf("got %q: holds %q, the beginning of a secret", got, s)
				}
			}
		})
	}
}
