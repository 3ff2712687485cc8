package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// stalledRedis accepts connections, completes go-redis's handshake (HELLO
// is refused, so RESP2; CLIENT is acknowledged) and then never answers: a
// Redis that hangs (a paused process, a stalled host, a path that drops
// packets) rather than one that is down. seen is closed once a command
// holding watch has been sent to it.
func stalledRedis(t testing.TB, watch string) (addr string, seen <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ch := make(chan struct{})
	var once sync.Once
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				for {
					args, err := readCommand(rd)
					if err != nil {
						return
					}
					switch strings.ToUpper(args[0]) {
					case "HELLO":
						_, _ = io.WriteString(c, "-ERR unknown command 'HELLO'\r\n")
					case "CLIENT":
						_, _ = io.WriteString(c, "+OK\r\n")
					default: // parked: no answer, ever
						if slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, watch) }) {
							once.Do(func() { close(ch) })
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// readCommand reads one command (a RESP array of bulk strings).
func readCommand(rd *bufio.Reader) ([]string, error) {
	line := func() (string, error) {
		l, err := rd.ReadString('\n')
		return strings.TrimRight(l, "\r\n"), err
	}
	head, err := line()
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(head, "*"))
	if err != nil || !strings.HasPrefix(head, "*") || n < 1 {
		return nil, fmt.Errorf("not a command: %q", head)
	}
	args := make([]string, n)
	for i := range args {
		h, err := line()
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimPrefix(h, "$"))
		if err != nil || size < 0 {
			return nil, fmt.Errorf("not a bulk string: %q", h)
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

// TestHungRedis: on a Redis that accepts connections and never answers,
// a call returns at its context's deadline, not at go-redis's read timeout
// (/readyz pings under 2s, a turn's state load has a deadline of its own),
// a money write cut so is reported unavailable, never as done or refused,
// and Close ends the calls still waiting, whose cancellation alone does not
// reach the socket (go-redis honours deadlines there, not cancellation).
// The bounds are generous; before Open set ContextTimeoutEnabled every call
// here took go-redis's own read timeout (5s).
func TestHungRedis(t *testing.T) {
	addr, waiting := stalledRedis(t, "oWaiting")
	start := time.Now()
	// The options serve uses (cmd/paygate openStore), with the background
	// repair on: Close must not wait for its pass either.
	s, err := Open(Options{Addrs: []string{addr}, MaxRetries: 1, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close()
		}
	})
	// Open loads the scripts under a 2s bound of its own.
	took := time.Since(start)
	t.Logf("Open: %v", took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Errorf("Open on a hung Redis took %v; want about its 2s bound", took.Round(time.Millisecond))
	}

	within := func(t *testing.T, name string, d time.Duration, call func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		start := time.Now()
		err := call(ctx)
		took := time.Since(start)
		t.Logf("%s under a %v deadline: %v after %v", name, d, err, took.Round(time.Millisecond))
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s under a %v deadline: %v; want an error wrapping store.ErrUnavailable", name, d, err)
		}
		if took > d+time.Second {
			t.Errorf("%s under a %v deadline returned after %v", name, d, took.Round(time.Millisecond))
		}
	}
	within(t, "Ping", 300*time.Millisecond, s.Ping)
	within(t, "LoadUserState", 300*time.Millisecond, func(ctx context.Context) error {
		_, err := s.LoadUserState(ctx, "bot", "oUser")
		return err
	})
	// A money write cut at its deadline may or may not have run: it is
	// unavailable (the caller fails closed, the purchase's claim keeps a
	// retry to the same order), never a success or a definite refusal.
	within(t, "CreateOrder", 300*time.Millisecond, func(ctx context.Context) error {
		return s.CreateOrder(ctx, storetest.NewOrder("HUNG-1", "bot", "oUser", time.Now()))
	})
	within(t, "ClaimPurchase", 300*time.Millisecond, func(ctx context.Context) error {
		_, _, err := s.ClaimPurchase(ctx, "hung-claim", "HUNG-2", time.Minute)
		return err
	})

	// A call with no deadline (or only cancelled: go-redis does not watch
	// a cancellation on the socket) waits out the read timeout, unless
	// Close closes its connection; so do the background repair's and the
	// epoch check's, which Close must not wait for either.
	done := make(chan error, 1)
	go func() {
		_, err := s.LoadUserState(context.Background(), "bot", "oWaiting")
		done <- err
	}()
	select {
	case <-waiting: // the command reached the hung Redis: the call waits for its reply
	case err := <-done:
		t.Fatalf("LoadUserState returned before reaching the hung Redis: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("LoadUserState never reached the hung Redis")
	}
	start = time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	took = time.Since(start)
	t.Logf("Close with calls waiting: %v", took.Round(time.Millisecond))
	// The bounds below are 2s, not 1s (a loaded CI machine under -race
	// stalls for hundreds of ms): still short of the 3s read timeout a
	// Close that left the calls' connections open would wait for.
	if took > 2*time.Second {
		t.Errorf("Close with calls waiting on a hung Redis took %v", took.Round(time.Millisecond))
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("LoadUserState on a hung Redis returned no error")
		}
	case <-time.After(2 * time.Second):
		t.Errorf("LoadUserState still waiting 2s after Close (cancelled, on a hung Redis)")
	}
}

// TestReadTimeoutCoversWait: with wait_replicas a money write's reply comes
// only after WAIT, which may take WaitTimeout on the server; the default
// read timeout leaves it that long on top.
func TestReadTimeoutCoversWait(t *testing.T) {
	cases := []struct {
		opts Options
		want time.Duration
	}{
		{Options{}, DefaultReadTimeout},
		{Options{ReadTimeout: time.Second}, time.Second},
		{Options{WaitReplicas: 1}, DefaultReadTimeout + DefaultWaitTimeout},
		{Options{WaitReplicas: 1, WaitTimeout: 4 * time.Second}, DefaultReadTimeout + 4*time.Second},
		{Options{WaitReplicas: 1, WaitTimeout: 4 * time.Second, ReadTimeout: 10 * time.Second}, 10 * time.Second},
	}
	for _, c := range cases {
		if got := readTimeout(c.opts); got != c.want {
			t.Errorf("readTimeout(%+v) = %v; want %v", c.opts, got, c.want)
		}
	}
}
