package main

import (
	"testing"
	"time"

	"github.com/paygate/paygate/internal/testproc"
)

// TestFrontNginxEndsWithTheTestBinary: the nginx a test started does not
// outlive the test binary when it dies without running its cleanups (go
// test's -timeout panic, a kill): nginx's master, and the worker that
// holds its port (a worker outlives a killed master), end with it, rather
// than listen on for good on a CI host.
func TestFrontNginxEndsWithTheTestBinary(t *testing.T) {
	testproc.EndWithTheTestBinary(t, 15*time.Second, func(t *testing.T) {
		startNginx(t, freeAddr(t), `        location / { return 200 "up\n"; }`)
	})
}
