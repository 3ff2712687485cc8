// Package h1test starts a proxy/h1 server on a loopback port for tests, as
// net/http/httptest does for net/http's server, so tests of the bots'
// listener run on the server paygate really serves it with.
package h1test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/paygate/paygate/proxy/h1"
)

// Server is a running test server.
type Server struct {
	// URL is http://127.0.0.1:port, without a trailing slash.
	URL string

	close func()
}

// NewServer starts serving h. Where proxy/h1 cannot run (h1.Supported is
// false), it is net/http's server, as in paygate itself.
func NewServer(h http.Handler) *Server {
	if !h1.Supported() {
		ts := httptest.NewServer(h)
		return &Server{URL: ts.URL, close: ts.Close}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("h1test: listen: " + err.Error())
	}
	s := &h1.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	return &Server{URL: "http://" + ln.Addr().String(), close: func() {
		_ = s.Shutdown(context.Background())
		<-done
	}}
}

// Close stops the server and, like httptest.Server.Close, waits until every
// request in flight has been answered.
func (s *Server) Close() { s.close() }
