//go:build unix

package h1

import "syscall"

// alive reports whether an idle connection is still open, with one
// non-blocking peek at its socket: a server that closed a keep-alive
// connection has left an EOF there. A plain connection with bytes waiting is
// not reusable either (an answer nobody asked for); a TLS connection may
// hold a late session ticket, which the next read consumes.
func (c *conn) alive() bool {
	if c.raw == nil {
		return true
	}
	var buf [1]byte
	ok := true
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
		case err != nil, n == 0:
			ok = false
		default:
			ok = c.key.tls
		}
		return true
	})
	return ok && err == nil
}
