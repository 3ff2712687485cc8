package failover

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
)

// TestReadErrorBodyTellsItsCut: readErrorBody reads at most maxErrorBody
// bytes of an error body, decoded, and tells a body that goes on past them
// (tooLargeReason) from one that ends there: one that fills them and is no
// whole JSON document is cut, with no byte past them asked for.
func TestReadErrorBodyTellsItsCut(t *testing.T) {
	t.Parallel()
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.String()
	}
	tests := []struct {
		name, body, encoding string
		wantLen              int
		wantCut              bool
	}{
		{name: "JSON of exactly the bound", body: `"` + strings.Repeat("a", maxErrorBody-2) + `"`, wantLen: maxErrorBody},
		{name: "JSON of exactly the bound, then more", body: `"` + strings.Repeat("a", maxErrorBody-2) + `"` + "\n", wantLen: maxErrorBody},
		{name: "text cut at exactly the bound", body: strings.Repeat("a", maxErrorBody), wantLen: maxErrorBody, wantCut: true},
		{name: "one byte over", body: strings.Repeat("a", maxErrorBody+1), wantLen: maxErrorBody, wantCut: true},
		{name: "3 MiB", body: strings.Repeat("a", 3<<20), wantLen: maxErrorBody, wantCut: true},
		{name: "gzip decoding to JSON of the bound", body: gz(`"` + strings.Repeat("a", maxErrorBody-2) + `"`), encoding: "gzip", wantLen: maxErrorBody},
		{name: "gzip decoding to 3 MiB", body: gz(strings.Repeat("a", 3<<20)), encoding: "gzip", wantLen: maxErrorBody, wantCut: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.encoding != "" {
				h.Set("Content-Encoding", tc.encoding)
			}
			data, cut := readErrorBody(strings.NewReader(tc.body), h)
			if len(data) != tc.wantLen || cut != tc.wantCut {
				t.Errorf("read %d bytes, cut %t; want %d, %t", len(data), cut, tc.wantLen, tc.wantCut)
			}
		})
	}
}
