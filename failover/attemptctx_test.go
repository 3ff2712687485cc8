package failover

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitDone fails the test unless ctx is done within a generous bound.
func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not done", what)
	}
}

func TestAttemptCtxEnds(t *testing.T) {
	type ctxKey struct{}
	deadline := time.Now().Add(time.Hour)
	tests := []struct {
		name      string
		end       func(a *attemptCtx, cancelParent context.CancelCauseFunc)
		wantErr   error
		wantCause error
	}{
		{
			name:      "aborted by the attempt",
			end:       func(a *attemptCtx, _ context.CancelCauseFunc) { a.cancel(ErrIdleTimeout) },
			wantErr:   context.Canceled,
			wantCause: ErrIdleTimeout,
		},
		{
			name:      "the caller's context ends",
			end:       func(_ *attemptCtx, cancel context.CancelCauseFunc) { cancel(errClientLeft) },
			wantErr:   context.Canceled,
			wantCause: errClientLeft,
		},
		{
			name: "the first end wins",
			end: func(a *attemptCtx, cancel context.CancelCauseFunc) {
				a.cancel(ErrFirstByteTimeout)
				a.cancel(ErrIdleTimeout)
				cancel(errClientLeft)
			},
			wantErr:   context.Canceled,
			wantCause: ErrFirstByteTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, stopDeadline := context.WithDeadline(context.WithValue(context.Background(), ctxKey{}, "v"), deadline)
			defer stopDeadline()
			parent, cancelParent := context.WithCancelCause(base)
			defer cancelParent(nil)
			a := &attemptCtx{}
			a.init(parent)

			if got := a.Value(ctxKey{}); got != "v" {
				t.Errorf("Value = %v, want the caller's", got)
			}
			if d, ok := a.Deadline(); !ok || !d.Equal(deadline) {
				t.Errorf("Deadline = %v, %v, want the caller's", d, ok)
			}
			if a.Err() != nil || a.cause() != nil {
				t.Fatalf("running attempt: Err %v, cause %v", a.Err(), a.cause())
			}
			earlyDone := a.Done()
			ran := make(chan struct{}, 3)
			for range 3 { // more hooks than the inline slots
				a.AfterFunc(func() { ran <- struct{}{} })
			}
			stopped := a.AfterFunc(func() { t.Error("a stopped hook ran") })
			if !stopped() {
				t.Fatal("stop before the end reported false")
			}
			derived, cancelDerived := context.WithCancel(a)
			defer cancelDerived()

			tt.end(a, cancelParent)

			waitDone(t, a, "attempt")
			select {
			case <-earlyDone:
			default:
				t.Error("the Done channel handed out before the end is open")
			}
			if !errors.Is(a.Err(), tt.wantErr) {
				t.Errorf("Err = %v, want %v", a.Err(), tt.wantErr)
			}
			if !errors.Is(a.cause(), tt.wantCause) {
				t.Errorf("cause = %v, want %v", a.cause(), tt.wantCause)
			}
			for i := range 3 { // they may run after Done closed, on the ending goroutine
				select {
				case <-ran:
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of 3 hooks ran", i)
				}
			}
			waitDone(t, derived, "context derived from the attempt")
			if stopped() {
				t.Error("stop after the end reported true")
			}
			late := make(chan struct{})
			if stop := a.AfterFunc(func() { close(late) }); stop() {
				t.Error("stop of a hook registered after the end reported true")
			}
			select {
			case <-late:
			case <-time.After(10 * time.Second):
				t.Fatal("a hook registered after the end never ran")
			}
		})
	}
}

var errClientLeft = errors.New("client left")

// TestAttemptCtxOfADoneCaller: an attempt whose caller has already gone
// ends at once, with the caller's cause.
func TestAttemptCtxOfADoneCaller(t *testing.T) {
	parent, cancel := context.WithCancelCause(context.Background())
	cancel(errClientLeft)
	a := &attemptCtx{}
	a.init(parent)
	waitDone(t, a, "attempt")
	if !errors.Is(a.cause(), errClientLeft) {
		t.Fatalf("cause = %v, want %v", a.cause(), errClientLeft)
	}
}

// TestAttemptCtxLeavesTheCaller: an attempt that ended is no longer
// registered with the caller's context, so a long request does not collect
// its attempts.
func TestAttemptCtxLeavesTheCaller(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &attemptCtx{}
	a.init(parent)
	a.cancel(errClosed)
	if a.stopParent() {
		t.Fatal("the registration with the caller outlived the attempt")
	}
}

// TestAttemptCtxConcurrentEnds ends attempts from several goroutines while
// hooks come and go: every hook that was not stopped runs, exactly once
// (run with -race).
func TestAttemptCtxConcurrentEnds(t *testing.T) {
	for range 200 {
		parent, cancelParent := context.WithCancel(context.Background())
		a := &attemptCtx{}
		a.init(parent)
		ran := make(chan int, 4)
		var kept atomic.Int32
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				stop := a.AfterFunc(func() { ran <- i })
				if i%2 == 0 && stop() {
					return
				}
				kept.Add(1)
			})
		}
		wg.Go(func() { a.cancel(ErrIdleTimeout) })
		wg.Go(cancelParent)
		wg.Go(func() { <-a.Done() })
		wg.Wait()
		seen := map[int]bool{}
		for range kept.Load() {
			select {
			case i := <-ran: // a hook registered after the end runs on a goroutine of its own
				if seen[i] {
					t.Fatalf("hook %d ran twice", i)
				}
				seen[i] = true
			case <-time.After(10 * time.Second):
				t.Fatalf("%d hooks ran, %d were kept", len(seen), kept.Load())
			}
		}
		select {
		case i := <-ran:
			t.Fatalf("hook %d ran although it was stopped, or twice", i)
		default:
		}
	}
}

// TestAttemptCtxWithNetHTTP: net/http's own transport (the fallback for
// providers behind an HTTP proxy) derives its contexts from an attempt's
// and selects on its Done; aborting the attempt ends a request the
// provider never answers.
func TestAttemptCtxWithNetHTTP(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release // a provider that never answers, until the test ends
	}))
	defer srv.Close()
	defer close(release)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()

	a := &attemptCtx{}
	a.init(context.Background())
	req, err := http.NewRequestWithContext(a, http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select { // the request is in flight once the server holds it
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the server")
	}
	a.cancel(ErrFirstByteTimeout)
	select {
	case err := <-errc:
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("RoundTrip = %v, want a cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("net/http's transport did not notice the aborted attempt")
	}
	if !errors.Is(a.cause(), ErrFirstByteTimeout) {
		t.Fatalf("cause = %v", a.cause())
	}
}
