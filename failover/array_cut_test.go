package failover

import "testing"

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
			if body := askAThenB(t, tc.path, tc.a, tc.wantFrom); tc.wantFrom == "a" && body != ranked && body != ranked+"\n" {
				t.Errorf("body %q; want a's array", body)
			}
		})
	}
}
