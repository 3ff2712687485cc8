//go:build unix

package h1

import "syscall"

// alive reports whether an idle connection is still open, with one
// non-blocking peek at its socket: a server that closed a keep-alive
// connection has left an EOF there. A plain connection with bytes waiting is
// not reusable either (an answer nobody asked for); a TLS connection may
// hold a late session ticket, which the next read consumes. It allocates
// nothing: the peek's function is bound once per connection (peekFn).
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
	n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
	case err != nil, n == 0:
		c.peekOK = false
	default:
		c.peekOK = c.key.tls
	}
	return true
}
