package main

import (
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDrainOutlivesItsLogReader: the log's reader goes away (`paygate serve
// 2>&1 | jq`, both ended by the one Ctrl-C; a log shipper restarted) and
// then SIGTERM comes: paygate still drains. A write to a broken pipe on
// standard error ended a Go program by SIGPIPE at once, so the drain's own
// first log line killed it: the stream in flight was cut without its end
// and the exit was SIGPIPE's, not 0.
func TestDrainOutlivesItsLogReader(t *testing.T) {
	upURL, letGo := heldStream(t)
	cmd, _, base, log := startPaygateLog(t, signalConfig(t, upURL, ", shutdown_timeout: 20s"))
	body := openStream(t, base)

	log.Close() // the log's reader is gone
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The drain has begun (or the process is gone) once the listener
	// refuses new connections; poll until then.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still takes connections 10s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond) // polling an external state change, not synchronising
	}
	letGo()
	rest, err := io.ReadAll(body)
	if err != nil || !strings.Contains(string(rest), "two") || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the stream in flight, drained with no log reader: %q, %v; want the rest of the answer and its [DONE]", rest, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM with no log reader: %v; want 0, the drain done", err)
	}
}
