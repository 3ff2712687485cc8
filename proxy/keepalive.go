package proxy

import (
	"sync"
	"time"

	"github.com/paygate/paygate/sse"
)

// keepAlive sends SSE comment lines on sw every interval until the returned
// stop is called, so a client (or a proxy in front of it) does not time out
// while paygate executes payment calls and waits for the next round's first
// token. Comments are ignored by SSE clients; paygate only sends them when
// server.sse_keepalive is set, because some SDKs (go-openai) mistake comment
// lines for error text. stop waits for the sender to finish, so the caller
// may write to sw again as soon as stop returns; calling it again is harmless.
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
				if sw.Comment("keep-alive") != nil {
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
