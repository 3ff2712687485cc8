package proxy

import (
	"io"
	"net/http"
	"testing"

	"github.com/paygate/paygate/logging"
)

// TestForwardedStreamWithByteOrderMarkDropsItsFirstComment: a provider (a
// relay on Windows, a .NET server) that writes a UTF-8 byte order mark
// before its event stream, then a comment line (": OPENROUTER
// PROCESSING"): the standard has the client strip the mark, so the line
// is a comment, and SPEC 5 passes none to the bot (go-openai, which
// streams legacy completions, reads it as error text). The mask read the
// mark as the line's first byte, the line as no comment, and relayed it.
// The bot gets the stream as one without the mark is relayed.
func TestForwardedStreamWithByteOrderMarkDropsItsFirstComment(t *testing.T) {
	const ev1 = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"Hi\",\"finish_reason\":\"stop\"}]}\n\n"
	for _, sent := range [][]string{
		{"\ufeff: OPENROUTER PROCESSING\n\n", ev1, "data: [DONE]\n\n"},
		{"\xef", "\xbb", "\xbf: OPENROUTER ", "PROCESSING\n\n" + ev1 + "data: [DONE]\n\n"},
	} {
		want := "\n" + ev1 + "data: [DONE]\n\n"
		fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, s := range sent {
				_, _ = io.WriteString(w, s)
				w.(http.Flusher).Flush()
			}
		})
		url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
		resp := post(t, url, "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true}`, map[string]string{"Content-Type": "application/json"})
		if b := readAll(t, resp.Body); b != want {
			t.Errorf("sent %q: the bot got %q; want %q (the mark and the comment line dropped, nothing else)", sent, b, want)
		}
	}
}

// TestSSEErrorMaskByteOrderMark: the mark is dropped at the stream's start
// only, wherever the reads split it; bytes that begin like it and differ
// are relayed as sent, and so is a mark anywhere else.
func TestSSEErrorMaskByteOrderMark(t *testing.T) {
	redact := logging.NewRedactorMin([]string{"sk-provider-secret-key-123"}, logging.ClientMinSecret)
	for _, tc := range []struct {
		reads []string
		want  string
	}{
		{[]string{"\ufeff: c\n\ndata: x\n\n"}, "\ndata: x\n\n"},
		{[]string{"\xef", "\xbb", "\xbf", ":c\n", "\n"}, "\n"},
		{[]string{"\ufeffevent: error\ndata: {\"message\":\"sk-provider-secret-key-123\"}\n\n"}, "event: error\ndata: {\"message\":\"" + logging.Mask + "\"}\n\n"},
		{[]string{"\xef\xbb", ":c\n\n"}, "\xef\xbb:c\n\n"},
		{[]string{"\xef", "\xbb"}, "\xef\xbb"},
		{[]string{"data: x\n\n\ufeff: c\n\n"}, "data: x\n\n\ufeff: c\n\n"},
		{[]string{": c\n\n"}, "\n"},
	} {
		if got := maskReads(redact, tc.reads); got != tc.want {
			t.Errorf("reads %q relayed as %q; want %q", tc.reads, got, tc.want)
		}
	}
}
