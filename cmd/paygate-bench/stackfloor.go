package main

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	fh1 "github.com/paygate/paygate/failover/h1"
)

// newStackFloor is paygate's own HTTP stack with none of paygate's work: the
// handler that proxy/h1's server runs (as on paygate's bots' listener) reads
// the body, sends it through failover/h1's transport (paygate's upstream
// transport) and copies the answer back, flushing after every upstream read. What paygate costs above this column is its
// own per-request work (auth, JSON, payment tools, user state, failover,
// accounting); what this costs above nginx is Go and the two HTTP layers.
func newStackFloor(target *url.URL) http.Handler {
	tr := &fh1.Transport{MaxIdleConnsPerHost: 4096}
	base := target.String()
	bufs := sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read request body", http.StatusBadRequest)
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Header = http.Header{"Content-Type": {r.Header.Get("Content-Type")}}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		h := w.Header()
		h["Content-Type"] = resp.Header["Content-Type"]
		if resp.ContentLength >= 0 {
			h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
		}
		w.WriteHeader(resp.StatusCode)
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		rc := http.NewResponseController(w)
		for {
			n, err := resp.Body.Read(*bp)
			if n > 0 {
				if _, werr := w.Write((*bp)[:n]); werr != nil || rc.Flush() != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}
