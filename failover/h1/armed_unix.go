//go:build unix

package h1

import (
	"os"
	"syscall"
)

// armedWriter is where a plain connection's request goes out (writeRequest
// resets its buffer onto it). Until final is set it passes writes to the
// connection. The final flush, the whole of a small request, is written
// with the socket's own write call inside a RawConn.Read, whose function
// then reports "not yet" so that the read waits for the answer at once
// (writeArmed).
//
// Why: after a request is written, reading its answer through net.Conn
// first makes a read that returns EAGAIN (the server has not answered yet),
// then waits for the poller, then reads again. Waiting first saves that
// read, one system call of the about seven a proxied request costs, which
// on a host where a system call is dear is worth having: nginx makes no
// such read either. RawConn.Read clears the poller's readiness before it
// calls the function (poll_runtime_pollReset), which is why this is safe
// only here, and only for a request written whole in the armed write
// (sent): nothing can arrive before the request that asks for it has
// gone out, and what arrives after the write wakes the wait. Reading
// elsewhere this way would lose an answer that came just before the reset.
type armedWriter struct {
	c     *conn
	final bool   // the next write is the request's last: write it armed
	sent  bool   // part of the request went out before its last write
	p     []byte // what writeArmed's function is writing
	n     int    // how much of p it has written
	err   error  // the write's error, EAGAIN included
	woken bool   // the function has written p and waited once
	dead  bool   // the function's peek found the connection closed, or bytes waiting: nothing written
}

func (w *armedWriter) Write(p []byte) (int, error) {
	c := w.c
	if !w.final {
		if err := c.deferredPeek(); err != nil {
			return 0, err
		}
		w.sent = true
		return c.nc.Write(p)
	}
	w.final = false
	return c.writeArmed(p)
}

// writeArmed writes p, then waits until the connection has something to
// read, without reading it: the answer's first read finds it there.
func (c *conn) writeArmed(p []byte) (int, error) {
	w := &c.aw
	// A request that went out in more than one write may have its answer
	// already (a server may answer once it has the head: a 401, a 413),
	// and the readiness it raised is cleared before the armed write: the
	// wait would last until the server sent more, which one that answered
	// and then read the rest, keeping the connection, never does.
	//
	// A pooled connection peeked at its checkout (its body cannot be had
	// again, so getConn could not defer the peek) is not written armed
	// either: a close that came after that peek, before the armed write's
	// reset, would raise no readiness the wait could see, and a server
	// that closed its half of the connection and read on (a lingering
	// close) would have the exchange wait until its deadline. The armed
	// write peeks itself, after the reset (armFn).
	if c.raw == nil || !c.armable || w.sent || c.reused && !c.unchecked {
		if err := c.deferredPeek(); err != nil {
			return 0, err
		}
		return c.nc.Write(p)
	}
	if c.arm == nil {
		c.arm = c.armFn
	}
	w.p, w.n, w.err, w.woken, w.dead = p, 0, nil, false, false
	c.unchecked = false
	err := c.raw.Read(c.arm)
	n := w.n
	w.p = nil
	switch {
	case w.dead && c.reused:
		return 0, errIdleDead
	case w.dead:
		// A new connection closed (or spoke) before its first request:
		// not one to send it on again.
		return 0, errNewConnClosed
	case n == len(p):
		// Written whole. A wait that failed (the exchange was cancelled:
		// its deadline is in the past) fails the answer's read too.
		return n, nil
	case w.err == syscall.EAGAIN:
		// The socket's buffer was full: the rest goes out the usual way,
		// which waits until it can.
		if armedShortHook != nil {
			armedShortHook()
		}
		m, err := c.nc.Write(p[n:])
		return n + m, err
	case w.err != nil:
		return n, os.NewSyscallError("write", w.err)
	default:
		// RawConn.Read failed before its function wrote anything: a
		// deadline in the past, or a closed connection.
		return n, err
	}
}

// armedShortHook, when set (by tests only), is called when an armed write
// found the socket's buffer full and writes the rest the usual way.
var armedShortHook func()

// armFn is the function writeArmed gives the socket, bound once per
// connection (a method value made per call would allocate).
func (c *conn) armFn(fd uintptr) bool {
	w := &c.aw
	if w.woken {
		return true
	}
	if w.n == 0 && w.err == nil {
		// The connection's liveness peek, made after the reset: a close
		// or bytes that came before it are seen here, and anything
		// later wakes the wait. For a pooled connection it is getConn's
		// (deferPeek); for a new one it costs a system call once.
		c.peekFn(fd)
		if !c.peekOK {
			w.dead = true
			return true
		}
	}
	for w.n < len(w.p) {
		n, err := syscall.Write(int(fd), w.p[w.n:])
		if n > 0 {
			w.n += n
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			w.err = err
			return true
		}
	}
	w.woken = true
	return false
}
