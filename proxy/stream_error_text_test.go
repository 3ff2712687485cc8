package proxy

import (
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// socketAddress matches an IPv4 address and port, as Go's net errors name
// both ends of a connection ("read tcp 127.0.0.1:52410->127.0.0.1:8080").
var socketAddress = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// resetAfter answers with head (the status line's headers set by set),
// writes body, flushes it and resets the connection (RST).
func resetAfter(t *testing.T, set func(h http.Header), status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		set(w.Header())
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		_ = conn.Close()
	}
}

// TestStreamErrorEventNamesNoAddress: a stream the provider resets after
// its first byte ends with an error event that names the provider and the
// cause in fixed words; Go's read error, which names paygate's and the
// provider's IP addresses and ports, stays in the log line. On the plain
// path (where no other provider can take the answer on, so it ends
// unrecovered) and on a payment turn.
func TestStreamErrorEventNamesNoAddress(t *testing.T) {
	for _, turn := range []bool{false, true} {
		path := "plain"
		if turn {
			path = "payment turn"
		}
		t.Run(path, func(t *testing.T) {
			fp := newFakeProvider(t, resetAfter(t, func(h http.Header) { h.Set("Content-Type", "text/event-stream") }, 200,
				`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`+"\n\n"))
			cfg := testConfig(t, fp.URL, nil)
			var url string
			var hdr map[string]string
			var logText func() string
			if turn {
				url, hdr = afterFinishURL(t, cfg, true, queryTools{})
			} else {
				u, logs := newTestProxy(t, cfg)
				url, logText = u, logs.String
			}
			body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
			if m := socketAddress.FindString(body); m != "" {
				t.Errorf("the client's error event names a socket address %q:\n%s", m, body)
			}
			var e gjson.Result
			for _, line := range strings.Split(body, "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(d, "error").Exists() {
					e = gjson.Get(d, "error")
				}
			}
			msg := e.Get("message").String()
			if e.Get("code").String() != "upstream_connection_lost" || !strings.Contains(msg, "provider fake") ||
				!strings.Contains(msg, "the connection to the provider was lost") {
				t.Errorf("error event %s; want code upstream_connection_lost and a message naming provider fake and the lost connection", e.Raw)
			}
			if logText != nil && !socketAddress.MatchString(logText()) {
				t.Errorf("the log holds no line with the read error's addresses:\n%s", logText())
			}
		})
	}
}

// TestNonStreamErrorNamesNoAddress: a non-stream answer the provider
// resets mid-body is an error answer that names the provider and the cause,
// and no socket address, on the plain path and on a payment turn.
func TestNonStreamErrorNamesNoAddress(t *testing.T) {
	for _, turn := range []bool{false, true} {
		path := "plain"
		if turn {
			path = "payment turn"
		}
		t.Run(path, func(t *testing.T) {
			const whole = `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}]}`
			fp := newFakeProvider(t, resetAfter(t, func(h http.Header) {
				h.Set("Content-Type", "application/json")
				h.Set("Content-Length", strconv.Itoa(len(whole)))
			}, 200, whole[:20]))
			url, hdr := afterFinishURL(t, testConfig(t, fp.URL, nil), turn, queryTools{})
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"x"}]}`, hdr)
			body := readAll(t, resp.Body)
			if resp.StatusCode < 500 {
				t.Fatalf("status %d (%s); want an upstream error", resp.StatusCode, body)
			}
			if m := socketAddress.FindString(body); m != "" {
				t.Errorf("the client's error names a socket address %q: %s", m, body)
			}
			if msg := gjson.Get(body, "error.message").String(); !strings.Contains(msg, "fake") {
				t.Errorf("error message %q; want it to name provider fake", msg)
			}
		})
	}
}
