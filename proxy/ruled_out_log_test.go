package proxy

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/logging"
)

// lockedBuffer is a log's output that tests read while handlers write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestToolsRuledOutLoggedOncePerClientAndCause: a bot whose requests use
// the legacy functions or Predicted Outputs, which rule the payment tools
// out, does so in every turn; the line saying so was written for each of
// them, where a healthy turn writes no line at the default level (README).
// It is said once for the client and each cause.
func TestToolsRuledOutLoggedOncePerClientAndCause(t *testing.T) {
	const (
		functions  = `"functions":[{"name":"get_weather","parameters":{"type":"object"}}],`
		prediction = `"prediction":{"type":"content","content":"Dear customer, your order ships today."},`
	)
	up := newFakeProvider(t, textRound(false, "It is sunny."))
	cfg := testConfig(t, up.URL, nil)
	var out lockedBuffer
	_, url := servePaygate(t, cfg, Options{Tools: &recordingTools{}, State: &memState{}, Logger: logging.New(&out, slog.LevelInfo, cfg.Secrets())}, nil)
	said := func() int { return strings.Count(out.String(), "payment tools not offered") }
	for i, tc := range []struct {
		members string
		want    int
	}{
		{functions, 1}, {functions, 1}, {functions, 1},
		{prediction, 2}, {prediction, 2},
	} {
		resp := post(t, url, "/v1/chat/completions", chatBody(false, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
		if body := readAll(t, resp.Body); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		if n := said(); n != tc.want {
			t.Fatalf("after request %d the log says %d times that the payment tools were not offered; want %d:\n%s", i, n, tc.want, out.String())
		}
	}
}
