package failover

import (
	"io"
	"testing"
)

// TestForwardedJSONArrayWithCutFramingIsTheAnswer: a forwarded call's 2xx
// JSON array (the rerank and tokenize answers of text-embeddings-inference)
// is the answer, and so it is when its whole arrived and then its framing
// was cut (a chunked body without its last chunk, the connection reset
// after it), as an object so cut is: failed as a lost connection, the
// call was sent again and to the next target, and each was held against
// the provider's breaker. An array cut inside still fails over, and a chat
// completion is still no array.
func TestForwardedJSONArrayWithCutFramingIsTheAnswer(t *testing.T) {
	t.Parallel()
	const ranked = `[{"index":1,"score":0.91},{"index":0,"score":0.12}]`
	chunkedThen := func(body string, then func(*fconn)) func(*fconn) {
		return func(c *fconn) {
			_, _ = io.WriteString(c.c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
			c.chunk(body)
			then(c)
		}
	}
	tests := []struct {
		name, path string
		a          func(*fconn)
		wantFrom   string
	}{
		{"whole, no last chunk", "/rerank", chunkedThen(ranked, (*fconn).cut), "a"},
		{"whole, then white space, no last chunk", "/rerank", chunkedThen(ranked+"\n", (*fconn).cut), "a"},
		{"whole, then its connection reset", "/rerank", chunkedThen(ranked, (*fconn).reset), "a"},
		{"cut inside the array", "/rerank", chunkedThen(ranked[:len(ranked)-1], (*fconn).cut), "b"},
		{"chat: an array, no last chunk", "/chat/completions", chunkedThen(ranked, (*fconn).cut), "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": always(tc.a)}, []string{"a", "b"}, nil)
			got := e.openReq(t.Context(), &Request{Model: "gpt", Method: "POST", Path: tc.path, Body: chatBody(false),
				ContentType: "application/json"})
			if got.openErr != nil || got.provider != tc.wantFrom {
				t.Fatalf("answered by %q (err %v) after %d attempts; want %s", got.provider, got.openErr, got.attempts, tc.wantFrom)
			}
			wantHits := [2]int{1, 0}
			if tc.wantFrom == "b" {
				wantHits = [2]int{2, 1} // a lost connection or a malformed answer: a once more, then b
			} else if got.body != ranked && got.body != ranked+"\n" {
				t.Errorf("body %q; want a's array", got.body)
			}
			if h := [2]int{len(e.fakes["a"].hits()), len(e.fakes["b"].hits())}; h != wantHits {
				t.Errorf("providers saw a=%d b=%d; want a=%d b=%d", h[0], h[1], wantHits[0], wantHits[1])
			}
		})
	}
}
