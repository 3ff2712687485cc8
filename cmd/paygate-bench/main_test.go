package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the bench binary when a test
// re-executes itself as a child, as the command does.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "-child" {
		if err := runChild(os.Args[2], os.Args[3:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRunFailsWithoutNginx(t *testing.T) {
	o := options{nginxPath: "/nonexistent/sbin/nginx", reps: 1, cellDur: time.Second, streams: 1, slowChunks: 1}
	_, err := run(context.Background(), o, io.Discard)
	if !errors.Is(err, errNoNginx) {
		t.Fatalf("got %v; want errNoNginx", err)
	}
	if !strings.Contains(err.Error(), "nginx-light") {
		t.Errorf("got %q; want the message to name the package to install", err)
	}
}
