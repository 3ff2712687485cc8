package proxy

import (
	"sync"
	"time"

	"github.com/paygate/paygate/sse"
)

// keepAlive sends a keep-alive on sw every interval until the returned stop
// is called, so a client (or a proxy in front of it) does not time out
// while paygate executes payment calls and waits for the next round's first
// token. It is a blank line (sse.Writer.KeepAlive), which every SSE client
// ignores, not the comment SPEC 5 names: go-openai reads comment lines as
// error text. paygate sends them only when server.sse_keepalive is set.
// stop waits for the sender to finish, so the caller may write to sw again
// as soon as stop returns; calling it again is harmless.
func keepAlive(sw *sse.Writer, interval time.Duration) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if sw.KeepAlive() != nil {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}
