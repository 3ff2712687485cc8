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

// Server is a test server.
type Server struct {
	// URL is http://127.0.0.1:port, without a trailing slash; known before
	// Start.
	URL string
	// Listener may be replaced before Start, by a wrapper whose connections
	// still implement syscall.Conn (the disconnect watcher needs the socket).
	Listener net.Listener

	ts    *httptest.Server // where proxy/h1 cannot run
	close func()
}

// NewServer starts serving h.
func NewServer(h http.Handler) *Server {
	s := NewUnstartedServer()
	s.Start(h)
	return s
}

// NewUnstartedServer listens but does not serve until Start. Where proxy/h1
// cannot run (h1.Supported is false) it is net/http's server, as in paygate
// itself.
func NewUnstartedServer() *Server {
	if !h1.Supported() {
		ts := httptest.NewUnstartedServer(nil)
		return &Server{URL: "http://" + ts.Listener.Addr().String(), Listener: ts.Listener, ts: ts}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("h1test: listen: " + err.Error())
	}
	return &Server{URL: "http://" + ln.Addr().String(), Listener: ln}
}

// Start serves h on the Listener.
func (s *Server) Start(h http.Handler) {
	if s.ts != nil {
		s.ts.Listener = s.Listener
		s.ts.Config.Handler = h
		s.ts.Start()
		s.close = s.ts.Close
		return
	}
	srv := &h1.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(s.Listener)
	}()
	s.close = func() {
		_ = srv.Shutdown(context.Background())
		<-done
	}
}

// Close stops the server and, like httptest.Server.Close, waits until every
// request in flight has been answered.
func (s *Server) Close() {
	if s.close != nil {
		s.close()
	} else {
		s.Listener.Close()
	}
}
