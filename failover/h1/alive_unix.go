//go:build unix

package h1

import "syscall"

// alive reports whether an idle connection is still open and quiet, with one
// non-blocking peek at its socket: a server that closed a keep-alive
// connection has left an EOF there. Bytes waiting make a connection
// unusable too. On a plain connection they are an answer nobody asked for.
// On a TLS connection they are what a server sends before it closes an idle
// connection (Go, nginx and CDNs send a close_notify alert, then the FIN,
// which may not have arrived yet) or another alert: a TLS 1.3 session ticket
// comes right after the handshake and was consumed with the connection's
// first answer, before the connection was ever idle. Taking such a
// connection would fail the next request before any byte of its answer. It
// allocates nothing: the peek's function is bound once per connection
// (peekFn).
func (c *conn) alive() bool {
	if c.raw == nil {
		return true
	}
	if c.peek == nil {
		c.peek = c.peekFn
	}
	c.peekOK = true
	err := c.raw.Read(c.peek)
	return c.peekOK && err == nil
}

// peekFn is the function alive gives the socket: a closure made per call
// would be two allocations per request.
func (c *conn) peekFn(fd uintptr) bool {
	var buf [1]byte
	_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// Only "nothing to read yet" is a live, quiet connection: an error, an
	// EOF and bytes waiting all mean dead (alive).
	c.peekOK = err == syscall.EAGAIN || err == syscall.EINTR
	return true
}
