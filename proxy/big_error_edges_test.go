package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestProviderErrorOfExactlyItsReadBoundThenStalled: a provider that sends
// an error answer of exactly the 64 KiB paygate reads for its reason and
// then stalls (no end of body) was answered as soon as those bytes were
// read; asking for one more byte to tell a cut must not hold the turn
// until the idle timeout (here an hour: the watchdog releases the provider
// after 20 s and fails the test).
func TestProviderErrorOfExactlyItsReadBoundThenStalled(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream %t", stream), func(t *testing.T) {
			t.Parallel()
			prefix := `{"object":"error","input":"`
			body := prefix + strings.Repeat("ECHOED-PROMPT ", 65536/14+1)
			body = body[:65536]
			release := make(chan struct{})
			var once sync.Once
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, body)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			t.Cleanup(func() { once.Do(func() { close(release) }) })
			var held atomic.Bool
			watchdog := time.AfterFunc(20*time.Second, func() {
				held.Store(true)
				once.Do(func() { close(release) })
			})
			defer watchdog.Stop()
			url, logs := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
				c.Providers[0].Timeouts.Idle = config.Duration(time.Hour)
			}))
			resp := post(t, url, "/v1/chat/completions", fmt.Sprintf(`{"model":"gpt-test","stream":%t,"messages":[{"role":"user","content":"hi"}]}`, stream), nil)
			answer := readAll(t, resp.Body)
			if held.Load() {
				t.Fatalf("the turn waited on the stalled provider until the watchdog released it (answer %d %.200s)", resp.StatusCode, answer)
			}
			if strings.Contains(answer, "ECHOED") || strings.Contains(logs.String(), "ECHOED") {
				t.Errorf("the echoed request reached the bot or the log: %.300s", answer)
			}
		})
	}
}
