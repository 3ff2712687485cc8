package redistest

import (
	"testing"

	"github.com/paygate/paygate/internal/testproc"
)

// TestServersEndWithTheTestBinary: a test binary that dies without its
// cleanups (go test's -timeout panic, a kill) takes the servers it started
// with it, a paused one too, rather than leave redis-server processes
// running on the machine for good.
func TestServersEndWithTheTestBinary(t *testing.T) {
	RequireBinaries(t)
	for _, paused := range []bool{false, true} {
		t.Run(map[bool]string{false: "running", true: "paused"}[paused], func(t *testing.T) {
			testproc.EndWithTheTestBinary(t, upWithin, func(t *testing.T) {
				if s := StartServer(t); paused {
					s.Pause()
				}
			})
		})
	}
}
