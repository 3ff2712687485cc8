package proxy

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsGzipOnlyWhereTaken: /metrics is gzipped for a client whose
// Accept-Encoding takes gzip, by name or by "*", and sent as is to one
// that refuses it: "gzip;q=0" refuses gzip whatever "*" says of the other
// codings (RFC 9110 12.5.3), as promhttp's negotiation read it.
func TestMetricsGzipOnlyWhereTaken(t *testing.T) {
	_, url := servePaygate(t, testConfig(t, "http://127.0.0.1:1", nil), Options{}, nil)
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip", true},
		{"deflate, gzip;q=0.5", true},
		{"*", true},
		{"identity", false},
		{"gzip;q=0", false},
		{"gzip;q=0, *", false},
		{"*, gzip;q=0", false},
		{"*;q=0.5, GZIP;Q=0", false},
		{"*;q=0, gzip", true},
		{"*;q=0", false},
	} {
		req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", tc.accept) // set: the transport leaves the body as sent
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = resp.Body
		gz := resp.Header.Get("Content-Encoding") == "gzip"
		if gz {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatalf("Accept-Encoding %q: gzip announced, body not gzip: %v", tc.accept, err)
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "# HELP ") {
			t.Errorf("Accept-Encoding %q: %d %v, %.80q; want 200 and the exposition", tc.accept, resp.StatusCode, err, b)
		}
		if gz != tc.gzip {
			t.Errorf("Accept-Encoding %q: gzip %v; want %v", tc.accept, gz, tc.gzip)
		}
	}
}
