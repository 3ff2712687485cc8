package proxy

import (
	"sync"
	"time"

	"github.com/paygate/paygate/interceptors"
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

// keptAlive returns f's results, with keep-alives sent on sw every
// interval while it runs (keepAlive), and stops them however f ends: a
// panic in f (a recovery's ask of another provider), which the HTTP server
// recovers, left the sender writing to the response after the handler had
// returned, as TestStreamKeepAliveStopsWhenAPaymentCallPanics describes.
func keptAlive[T any](sw *sse.Writer, interval time.Duration, f func() (T, error)) (T, error) {
	stop := keepAlive(sw, interval)
	defer stop()
	return f()
}

// repeatKeepAlive paces the keep-alives of a fresh answer that repeats what
// the client already has (interceptors.Resume matching its prefix): the
// relay drops those chunks, so the client hears nothing for as long as
// the model takes to write them again, which for a long answer is as long
// as the first time. The relay asks due on each dropped chunk; nothing
// runs beside the relay's own writes.
type repeatKeepAlive struct {
	interval time.Duration
	last     time.Time // the relay's start, then the last keep-alive
}

// repeatQuiet starts pacing a relay's keep-alives: none without resume or
// without server.sse_keepalive (interval 0).
func repeatQuiet(resume *interceptors.Resume, interval time.Duration) repeatKeepAlive {
	if resume == nil || interval <= 0 {
		return repeatKeepAlive{}
	}
	return repeatKeepAlive{interval: interval, last: time.Now()}
}

// due reports whether a keep-alive is to go out now, for a chunk resume
// dropped while it matches the sent prefix, and if so counts it sent.
func (k *repeatKeepAlive) due(resume *interceptors.Resume) bool {
	if k.interval <= 0 || !resume.Matching() {
		return false
	}
	if now := time.Now(); now.Sub(k.last) >= k.interval {
		k.last = now
		return true
	}
	return false
}
