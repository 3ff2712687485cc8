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
	if err := w.c.deferredPeek(); err != nil {
		return 0, err
	}
	return w.c.nc.Write(p)
}
