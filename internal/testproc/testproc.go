// Package testproc runs a server a test needs (nginx, squid, redis-server)
// as a child process that ends with the test, and with the test binary when
// it dies without its cleanups.
package testproc

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Start starts cmd and ends it at t's cleanup: SIGTERM, not SIGKILL, so that
// a master process ends its workers (an nginx worker outlives a killed
// master and keeps its port for good), then SIGKILL after 10 s. Where the
// system has a parent-death signal (Linux), cmd also gets SIGTERM when the
// test binary dies without its cleanups (Spawn). exited is closed once cmd
// has ended. A cleanup registered before Start runs after cmd has ended.
func Start(t testing.TB, cmd *exec.Cmd) (exited <-chan struct{}) {
	t.Helper()
	done, err := Spawn(cmd, syscall.SIGTERM)
	if err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return done
}

// Spawn starts cmd, which gets death (where the system has a parent-death
// signal: Linux) when the test binary dies without its cleanups (go test's
// -timeout panic, a kill): the signal comes when the thread that started
// the child ends, so cmd is started on a thread of its own, locked to the
// goroutine that waits for it, as chromedp starts its browser. exited is
// closed once cmd has ended; ending it before is the caller's. SIGKILL is
// the death signal for a process that may be stopped (SIGSTOP), which holds
// any other until it is continued.
func Spawn(cmd *exec.Cmd, death syscall.Signal) (exited <-chan struct{}, err error) {
	setDeathSignal(cmd, death)
	started, done := make(chan error), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
