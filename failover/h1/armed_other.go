//go:build !unix

package h1

// armedWriter passes every write to the connection here: the armed write
// (armed_unix.go) needs the socket's own write call.
type armedWriter struct {
	c     *conn
	final bool
	sent  bool // unused here: every write goes to the connection
}

func (w *armedWriter) Write(p []byte) (int, error) {
	w.final = false
	if c := w.c; c.unchecked {
		// getConn's deferred peek (alive cannot peek here: it says yes).
		c.unchecked = false
		if !c.alive() {
			return 0, errIdleDead
		}
	}
	return w.c.nc.Write(p)
}
