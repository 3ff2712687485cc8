package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/paygate/paygate/proxy/h1"
)

// Hidden child modes: the bench binary re-executes itself with -child to run
// the fake upstream or the Go floor as a separate process. The listening socket
// is handed over as file descriptor 3, so the port is bound before the child
// starts and nothing has to wait for it.
const (
	childUpstream = "upstream"
	childGoFloor  = "gofloor"
	childStack    = "stackfloor"
)

// runChild serves one child mode until SIGTERM or SIGINT.
func runChild(mode string, args []string) error {
	fs := flag.NewFlagSet("child "+mode, flag.ContinueOnError)
	target := fs.String("target", "", "upstream base URL (gofloor, stackfloor)")
	slowInterval := fs.Duration("slow-interval", 50*time.Millisecond, "pause between slow chunks (upstream)")
	slowChunks := fs.Int("slow-chunks", 40, "content chunks of a slow stream (upstream)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch mode {
	case childUpstream:
		u, err := newFakeUpstream(upstreamConfig{SlowInterval: *slowInterval, SlowChunks: *slowChunks})
		if err != nil {
			return err
		}
		h = u
	case childGoFloor:
		t, err := url.Parse(*target)
		if err != nil || t.Host == "" {
			return fmt.Errorf("gofloor needs -target URL, got %q", *target)
		}
		h = newGoFloor(t)
	case childStack:
		t, err := url.Parse(*target)
		if err != nil || t.Host == "" {
			return fmt.Errorf("stackfloor needs -target URL, got %q", *target)
		}
		h = newStackFloor(t)
	default:
		return fmt.Errorf("unknown child mode %q", mode)
	}
	// Only now take fd 3: it is the listener the parent handed over.
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return fmt.Errorf("inherit listener: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var srv interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	} = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	if mode == childStack {
		if !h1.Supported() {
			return fmt.Errorf("stackfloor: proxy/h1 does not run on this platform")
		}
		srv = &h1.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}

// child is a process the bench started, in its own process group, killed with
// the bench (Pdeathsig) if the bench dies first.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid after done is closed
}

// startChild starts bin with args, output to logPath, extra files from fd 3 on;
// env nil inherits the bench's environment.
func startChild(name, logPath string, env []string, extra []*os.File, bin string, args ...string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = extra
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

// pid is the process id of the child (the nginx master for nginx).
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports an error with the tail of the child's log once it has ended.
func (c *child) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v); log tail:\n%s", c.name, c.err, tailFile(c.logPath, 2000))
	default:
		return nil
	}
}

// stop sends SIGTERM to the child's process group and SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
}

// tailFile returns the last n bytes of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// listenLoopback binds a loopback port and returns the listener's file for a
// child together with its address. The caller closes the file after starting
// the child.
func listenLoopback() (*os.File, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return nil, "", fmt.Errorf("listener file: %w", err)
	}
	return f, ln.Addr().String(), nil
}

// freePort returns a loopback address that was free a moment ago, for
// processes that bind their own port (nginx, paygate).
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// waitHTTP polls url with GET (body nil) or POST until it answers 200, the
// child exits or the deadline passes.
func waitHTTP(ctx context.Context, c *child, client *http.Client, method, url, auth string, body []byte, deadline time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var last error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.exited(); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err == nil {
			code := resp.StatusCode
			drainClose(resp.Body)
			if code == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s %s: status %d", method, url, code)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %v: %w; log tail:\n%s", c.name, deadline, last, tailFile(c.logPath, 2000))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
