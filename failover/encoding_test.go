package failover

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// encode compresses s as the Content-Encoding coding says: "gzip",
// "deflate" (zlib, as RFC 9110 says) or "raw deflate" (RFC 1951 without
// the zlib wrapper, as many servers send "deflate").
func encode(t testing.TB, coding, s string) string {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "raw deflate":
		fw, err := flate.NewWriter(&b, flate.DefaultCompression)
		if err != nil {
			t.Fatal(err)
		}
		w = fw
	default:
		t.Fatalf("no coding %q", coding)
	}
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestEncodedErrorBodyIsClassified: a provider's server or CDN that
// encodes answers paygate never asked to be encoded (b00514a decodes those
// of 2xx JSON answers) encodes its error answers too. Their bodies were
// read raw: a gzipped 400 context_length_exceeded was an unreadable 400,
// so the round ended where the next, larger target would have answered,
// and the client's error message was the gzip bytes. An error body is now
// decoded before it is classified, as gzip, zlib or raw deflate; one in a
// coding paygate does not decode is classified by its status alone, and
// the client never sees its bytes.
func TestEncodedErrorBodyIsClassified(t *testing.T) {
	t.Parallel()
	const (
		tooLong = `{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}`
		invalid = `{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`
		fromB   = `{"id":"c1","object":"chat.completion","model":"from b","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`
	)
	tests := []struct {
		name     string
		body     string // a's 400, as sent
		coding   string // its Content-Encoding; "": none
		wantFrom string // "b": a's 400 failed over; "": it ended the round
		wantMsg  string // the round's message, when it ended
	}{
		{"context length, plain", tooLong, "", "b", ""},
		{"context length, gzip", encode(t, "gzip", tooLong), "gzip", "b", ""},
		{"context length, deflate (zlib)", encode(t, "deflate", tooLong), "deflate", "b", ""},
		{"context length, raw deflate", encode(t, "raw deflate", tooLong), "deflate", "b", ""},
		{"invalid request, gzip: the provider's message, decoded", encode(t, "gzip", invalid), "gzip", "", "Invalid value for 'temperature'"},
		{"invalid request, a coding paygate does not decode: the status alone", invalid, "br", "", "provider a refused the request (HTTP 400)"},
		{"not gzip at all: the status alone", "\x00\x01not gzip", "gzip", "", "provider a refused the request (HTTP 400)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var extra []string
			if tc.coding != "" {
				extra = []string{"Content-Encoding: " + tc.coding}
			}
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(statusFn(400, tc.body, extra...)),
				"b": always(statusFn(200, fromB)),
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), false)
			if tc.wantFrom != "" {
				if got.openErr != nil || got.provider != tc.wantFrom {
					t.Fatalf("Open: %v, answered by %q; want %s's answer", got.openErr, got.provider, tc.wantFrom)
				}
				return
			}
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) || ue.Status != http.StatusBadRequest {
				t.Fatalf("Open: %v (answered by %q); want a's 400", got.openErr, got.provider)
			}
			if ue.Message != tc.wantMsg {
				t.Errorf("message %q; want %q", ue.Message, tc.wantMsg)
			}
			if n := len(e.fakes["b"].hits()); n != 0 {
				t.Errorf("b asked %d times; want never (a's 400 ends the round)", n)
			}
		})
	}
}

// TestReadErrorBodyDecodesWithinItsBound: an error body is read for its
// reason only, at most maxErrorBody bytes. With a Content-Encoding the
// bound is on what it decodes to: a small gzip of a huge body (a bomb, or
// a long HTML page) costs no more than a plain body; what the bytes decode
// to before they turn out corrupt is kept; an undecodable body is none.
func TestReadErrorBodyDecodesWithinItsBound(t *testing.T) {
	t.Parallel()
	const text = `{"error":{"message":"slow down"}}`
	huge := strings.Repeat(" ", 4*maxErrorBody) + text
	cut := encode(t, "gzip", text+strings.Repeat("x", 4<<10))
	tests := []struct {
		name, coding, body string
		want               string // a prefix of it when wantPrefix
		wantPrefix         bool
	}{
		{"plain", "", text, text, false},
		{"identity", "identity", text, text, false},
		{"gzip", "gzip", encode(t, "gzip", text), text, false},
		{"x-gzip", "x-gzip", encode(t, "gzip", text), text, false},
		{"deflate (zlib)", "deflate", encode(t, "deflate", text), text, false},
		{"raw deflate", "deflate", encode(t, "raw deflate", text), text, false},
		{"gzip of more than the bound: the bound, decoded", "gzip", encode(t, "gzip", huge), huge[:maxErrorBody], false},
		{"gzip cut short: what it decoded to", "gzip", cut[:len(cut)-12], text, true},
		{"plain over the bound: the bound", "", huge, huge[:maxErrorBody], false},
		{"a coding paygate does not decode", "br", text, "", false},
		{"not gzip", "gzip", text, "", false},
		{"empty deflate", "deflate", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.coding != "" {
				h.Set("Content-Encoding", tc.coding)
			}
			data, _ := readErrorBody(strings.NewReader(tc.body), h)
			got := string(data)
			if tc.wantPrefix && !strings.HasPrefix(got, tc.want) || !tc.wantPrefix && got != tc.want {
				t.Errorf("got %d bytes %.60q; want %d bytes %.60q (a prefix: %v)", len(got), got, len(tc.want), tc.want, tc.wantPrefix)
			}
		})
	}
}

// TestEncodedStream: an event stream a provider's server or CDN encodes
// unasked is decoded as it arrives. Read raw, every attempt failed as a lost
// connection (against the provider's breaker) and the client got a 502. A
// stream whose coding's frame is cut was cut like any other (recovery may
// take it on); bytes that are not what the coding says are malformed.
func TestEncodedStream(t *testing.T) {
	t.Parallel()
	events := "data: " + roleChunk() + "\n\ndata: " + contentChunk("hello") + "\n\ndata: " + finishChunk() + "\n\ndata: [DONE]\n\n"
	// A gzip stream flushed after its first event and cut a few bytes into
	// the rest.
	var cut bytes.Buffer
	zw := gzip.NewWriter(&cut)
	_, _ = io.WriteString(zw, "data: "+contentChunk("hel")+"\n\n")
	_ = zw.Flush()
	n := cut.Len()
	_, _ = io.WriteString(zw, "data: "+contentChunk("lo")+"\n\n")
	_ = zw.Close()
	tests := []struct {
		name, coding, body string
		wantFrom           string // who answered
		wantText           string
		wantCause          string // "": complete
	}{
		{"gzip", "gzip", encode(t, "gzip", events), "a", "hello", ""},
		{"deflate (zlib)", "deflate", encode(t, "deflate", events), "a", "hello", ""},
		{"identity", "identity", events, "a", "hello", ""},
		{"gzip cut after the first token", "gzip", cut.String()[:n+5], "a", "hel", CauseConnectionLost},
		{"a coding paygate does not decode: the next target", "br", events, "b", "from b", ""},
		{"not gzip at all: the next target", "gzip", events, "b", "from b", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){
				"a": always(func(c *fconn) {
					c.sse("Content-Encoding: " + tc.coding)
					c.chunk(tc.body)
					if tc.wantCause != "" {
						c.cut()
						return
					}
					c.end()
				}),
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			if got.openErr != nil || got.provider != tc.wantFrom {
				t.Fatalf("Open: %v, answered by %q; want %s", got.openErr, got.provider, tc.wantFrom)
			}
			if got.text != tc.wantText {
				t.Errorf("text %q; want %q", got.text, tc.wantText)
			}
			var se *StreamError
			switch {
			case tc.wantCause == "" && !got.complete():
				t.Errorf("stream ended with %v; want complete", got.end)
			case tc.wantCause != "" && (!errors.As(got.end, &se) || se.Cause != tc.wantCause):
				t.Errorf("stream ended with %v; want a StreamError %s", got.end, tc.wantCause)
			}
		})
	}
}
