package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// newGoFloor is the Go floor: a bare httputil.ReverseProxy with the transport
// tuned the way a proxy in front of one upstream should be (many idle
// keep-alive connections, no compression, HTTP/1.1) and every write flushed.
// What paygate costs above this is paygate's own work; what this costs above
// nginx is net/http's.
//
// The request body is read fully before forwarding, as nginx does by default
// and as paygate must: when ReverseProxy streams the inbound body through on
// keep-alive connections, the transport closes the upstream connection during
// the response copy ("use of closed network connection") for about 2% of
// streams at one client on this machine, and a floor that cuts streams is no
// floor.
func newGoFloor(target *url.URL) http.Handler {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:     tr,
		FlushInterval: -1,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "read request body", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
		}
		rp.ServeHTTP(w, r)
	})
}
