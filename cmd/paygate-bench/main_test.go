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

func TestEnvListSet(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "key and value", in: "GOGC=200"},
		{name: "empty value", in: "GODEBUG="},
		{name: "value with =", in: "GODEBUG=a=1,b=2"},
		{name: "no =", in: "GOGC", wantErr: true},
		{name: "no key", in: "=1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e envList
			err := e.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v; want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && e.String() != tt.in {
				t.Errorf("got %q; want %q", e.String(), tt.in)
			}
		})
	}
}
