package squidtest

import (
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testproc"
)

// TestSquidEndsWithTheTestBinary: a test binary that dies without its
// cleanups (go test's -timeout panic, a kill) takes its squid with it,
// rather than leave it running on the machine, its port held, for good.
func TestSquidEndsWithTheTestBinary(t *testing.T) {
	testproc.EndWithTheTestBinary(t, 15*time.Second, func(t *testing.T) {
		Start(t, []string{"llm.example.com"}, "")
	})
}
