package failover

import (
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/paygate/paygate/config"
)

// TestHalfOpenLetsOneProbeThrough: once the primary's breaker cool-down
// has passed, the first round probes it, and the rounds that come while
// the probe is out are not probes too: they go to the fallback at once,
// without touching the primary, until the probe's answer closes the
// breaker.
func TestHalfOpenLetsOneProbeThrough(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	primary := healthy("a")
	e := newEnv(t, map[string]func(*fconn, int){"a": func(c *fconn, n int) {
		if n == 0 {
			c.status(500, errBody("server_error", "", "down"))
			return
		}
		if n == 1 {
			close(arrived)
			<-release
		}
		primary(c, n)
	}}, []string{"a", "b"}, func(c *config.Config) {
		c.Failover.Breaker = config.Breaker{Failures: 1, Cooldown: config.Duration(100 * time.Millisecond)}
		// No retry of a after its 500: the cool-down runs on the real
		// clock, the back-off on the fake one, and a retry made once
		// 100 ms had passed on a loaded machine was the probe itself.
		c.Failover.MaxAttempts = 2
		// The probe waits for the ten rounds: no timeout of its own
		// may end it meanwhile on a loaded machine, the total (5 s in
		// tests), which bounds the wait for the head too, included.
		c.Providers[0].Timeouts.FirstByte = config.Duration(30 * time.Second)
		c.Providers[0].Timeouts.FirstToken = config.Duration(30 * time.Second)
		c.Providers[0].Timeouts.Total = config.Duration(30 * time.Second)
	})
	if got := e.open(t.Context(), true); got.provider != "b" {
		t.Fatalf("primary failing: served by %q (%v); want b", got.provider, got.openErr)
	}
	// Read without asking the breaker, which moves it to half-open once
	// the cool-down has passed.
	if st := gobreaker.State(e.r.providers[0].state.Load()); st != gobreaker.StateOpen {
		t.Fatalf("primary breaker %s after a failure with failures: 1; want open", st)
	}
	// The breaker's cool-down runs on the real clock.
	time.Sleep(e.r.providers[0].breakerLeft())

	probe := make(chan answer, 1)
	go func() { probe <- e.open(t.Context(), true) }()
	select {
	case <-arrived:
	case got := <-probe:
		t.Fatalf("the first round after the cool-down did not probe the primary: served by %q (%v)", got.provider, got.openErr)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if got := e.open(t.Context(), true); got.provider != "b" || !got.complete() {
				t.Errorf("while the probe is out: served by %q (%v %v); want b", got.provider, got.openErr, got.end)
			}
		})
	}
	wg.Wait()
	close(release)
	if got := <-probe; got.provider != "a" || !got.complete() {
		t.Errorf("the probe: served by %q (%v %v); want a", got.provider, got.openErr, got.end)
	}
	if n := len(e.fakes["a"].hits()); n != 2 {
		t.Errorf("primary saw %d requests; want 2 (the failure and one probe)", n)
	}
	if st := statusOf(e.r, "a"); st.Breaker != "closed" {
		t.Errorf("primary breaker %s after the probe's answer; want closed", st.Breaker)
	}
	if got := e.open(t.Context(), true); got.provider != "a" {
		t.Errorf("after the probe: served by %q; want a", got.provider)
	}
}
