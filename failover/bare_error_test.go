package failover

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestBareErrorInAnEventStream: some servers set an event stream's head
// before they know the request fails, and then write their error as a
// plain JSON body, without "data:" (go-openai reads such a line as the
// error for this reason). paygate's event reader ignores a line that is
// no field, so the stream ended with no event, as a lost connection: the
// target was asked again and the next one, a content filter's refusal
// (retried nowhere, SPEC 5) went to every target, and the bot got a 502
// instead of the provider's reason. The body is that error, classified as
// the same error as the first event.
func TestBareErrorInAnEventStream(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantFrom   string // "" for no answer
		wantStatus int
		wantCode   string
		wantHits   [2]int
	}{
		{"content filter: the reason, no retry", errBody("invalid_request_error", "content_filter", "The response was filtered"),
			"", 400, "content_filter", [2]int{1, 0}},
		{"context length: never the same target", errBody("invalid_request_error", "context_length_exceeded", "too long") + "\n",
			"b", 0, "", [2]int{1, 1}},
		{"pretty-printed over lines", "{\n  \"error\": {\n    \"code\": \"content_filter\",\n    \"message\": \"filtered\"\n  }\n}\n",
			"", 400, "content_filter", [2]int{1, 0}},
		// The event reader strips a byte order mark at the stream's start,
		// as the standard says and some servers write one: such a server
		// writes it before its bare error too.
		{"after a byte order mark", "\ufeff" + errBody("invalid_request_error", "content_filter", "The response was filtered"),
			"", 400, "content_filter", [2]int{1, 0}},
		// A server that sends its head at once keeps the stream alive while
		// the model works, with comments or empty-data events, and may
		// fail after them.
		{"after keep-alive comments", ": ping\n\n: ping\n\n" + errBody("invalid_request_error", "content_filter", "The response was filtered") + "\n",
			"", 400, "content_filter", [2]int{1, 0}},
		{"after empty-data keep-alives", "data:\n\ndata: \r\n\r\n" + errBody("invalid_request_error", "content_filter", "The response was filtered"),
			"", 400, "content_filter", [2]int{1, 0}},
		{"indented, after a keep-alive", ": ping\n\n  " + errBody("invalid_request_error", "content_filter", "The response was filtered"),
			"", 400, "content_filter", [2]int{1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": always(func(c *fconn) {
					c.sse()
					c.chunk(tc.body)
					c.end()
				}),
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			hits := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}
			if hits != tc.wantHits {
				t.Errorf("hits a, b = %v; want %v", hits, tc.wantHits)
			}
			if tc.wantFrom != "" {
				if got.openErr != nil || got.provider != tc.wantFrom {
					t.Fatalf("answer from %q (err %v); want from %q", got.provider, got.openErr, tc.wantFrom)
				}
				return
			}
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v; want an *UpstreamError", got.openErr)
			}
			if ue.Status != tc.wantStatus || ue.Code != tc.wantCode {
				t.Errorf("status %d code %q; want %d %q (%v)", ue.Status, ue.Code, tc.wantStatus, tc.wantCode, ue)
			}
		})
	}
}

// TestPrefixReaderKeepsFromTheObjectLine: prefixReader keeps a stream's
// bytes from its first line that opens with "{" on, however the reads cut
// the stream, and nothing of a stream whose lines are all an event's.
func TestPrefixReaderKeepsFromTheObjectLine(t *testing.T) {
	obj := `{"error":{"message":"m"}}` + "\n"
	tests := []struct {
		name, body, want string
		wholeReads       bool // a byte order mark is stripped only whole in one read
	}{
		{name: "the body", body: obj, want: obj},
		{name: "after blanks", body: "\n \n\t" + obj, want: obj},
		{name: "after keep-alives", body: ": ping\n\ndata:\r\n\r\n  " + obj, want: obj},
		{name: "after a byte order mark", body: "\ufeff" + obj, want: obj, wholeReads: true},
		{name: "events", body: "data: {\"a\":{\"b\":1}}\n\nevent: x\ndata: {}\n\n", want: ""},
		{name: "a brace inside a comment", body: ": {not a line of its own}\n\n", want: ""},
		{name: "after an event", body: "data: {}\n\n" + obj, want: obj},
	}
	for _, tc := range tests {
		for _, one := range []bool{false, true} {
			if one && tc.wholeReads {
				continue
			}
			name := tc.name
			if one {
				name += "/a byte a read"
			}
			t.Run(name, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.body)
				if one {
					r = iotest.OneByteReader(r)
				}
				p := &prefixReader{r: r}
				if _, err := io.Copy(io.Discard, struct{ io.Reader }{p}); err != nil {
					t.Fatal(err)
				}
				if string(p.buf) != tc.want {
					t.Errorf("kept %q; want %q", p.buf, tc.want)
				}
			})
		}
	}
}
