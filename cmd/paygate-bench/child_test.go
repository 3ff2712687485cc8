package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestChildren starts the fake upstream and the Go floor as processes of
// their own, the way the command does, and drives requests through both.
func TestChildren(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := func(name string, args ...string) (*child, string) {
		f, addr, err := listenLoopback()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c, err := startChild(name, filepath.Join(dir, name+".log"), nil, []*os.File{f}, self, append([]string{"-child"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.stop(5 * time.Second) })
		return c, addr
	}
	up, upAddr := start("upstream", childUpstream, "-slow-interval", "1ms", "-slow-chunks", "3")
	floor, floorAddr := start("go-floor", childGoFloor, "-target", "http://"+upAddr)
	stack, stackAddr := start("stack-floor", childStack, "-target", "http://"+upAddr)
	l := newLoader("sk-test")
	for _, tt := range []struct {
		name string
		c    *child
		addr string
	}{{"upstream", up, upAddr}, {"go-floor", floor, floorAddr}, {"stack-floor", stack, stackAddr}} {
		t.Run(tt.name, func(t *testing.T) {
			url := "http://" + tt.addr + "/v1/chat/completions"
			if err := waitHTTP(context.Background(), tt.c, l.client, "POST", url, "sk-test", l.nonStream, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			for _, spec := range []cellSpec{{Clients: 2}, {Stream: true, Clients: 2}} {
				r := l.runCell(context.Background(), url, spec, 100*time.Millisecond, func() []int { return []int{tt.c.pid()} })
				if r.OK == 0 || r.Errors != 0 {
					t.Errorf("%s: got %d ok, %d errors (%v); want answers only", spec, r.OK, r.Errors, r.FirstErr)
				}
			}
		})
	}
	for _, c := range []*child{floor, stack} {
		c.stop(5 * time.Second)
		if c.exited() == nil {
			t.Errorf("%s still running after stop", c.name)
		}
	}
}

func TestChildUnknownMode(t *testing.T) {
	if err := runChild("nope", nil); err == nil {
		t.Errorf("got nil; want an error for an unknown mode")
	}
}
