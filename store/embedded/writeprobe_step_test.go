package embedded

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/steppedclock"
	"github.com/paygate/paygate/store"
)

// TestPingTimesAHungWriteAcrossAWallClockStep: Ping reports a hung write
// once its probe has waited writeStall of elapsed time, whatever the
// host's wall clock does meanwhile. The probe's start was kept as a
// wall-clock instant: a step ahead of an hour (an NTP correction, a VM
// resumed) while a probe waited a second behind a long write (the wipe of
// an erasure's free pages) read as a write hung for an hour, /readyz
// answered 503 and the replica left its load balancer; a step back hid a
// disk that stopped answering for an hour.
func TestPingTimesAHungWriteAcrossAWallClockStep(t *testing.T) {
	for _, step := range []time.Duration{-time.Hour, time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			clock := steppedclock.New()
			d, err := Open(filepath.Join(t.TempDir(), "p.db"), Options{SweepInterval: -1, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			ping, free, wiped := hangAWrite(t, d) // a long write
			clock.Advance(writeProbeEvery)        // a probe is due: it waits behind the write
			if err := ping(); err != nil {
				t.Fatalf("Ping as its probe starts waiting: %v; want ready", err)
			}
			if err := clock.Step(step); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
			if err := ping(); err != nil {
				t.Errorf("Ping after its probe waited 1 s, the wall clock stepped %v: %v; want ready", step, err)
			}
			clock.Advance(writeStall)
			if err := ping(); !errors.Is(err, store.ErrWritesFail) {
				t.Errorf("Ping after its probe waited %v, the wall clock stepped %v: %v; want store.ErrWritesFail", writeStall+time.Second, step, err)
			}
			free()
			if err := <-wiped; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// hangAWrite holds a write in d (the wipe of an erasure's free pages, held
// in its wipeHook) until free is called (at the latest when the test ends),
// and gives a Ping bounded by 50 ms; wiped receives the wipe's outcome once
// freed.
func hangAWrite(t *testing.T, d *DB) (ping func() error, free func(), wiped <-chan error) {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	d.wipeHook = func() { close(entered); <-release }
	done := make(chan error, 1)
	go func() { _, err := d.WipeFreePages(context.Background()); done <- err }()
	<-entered
	ping = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return d.Ping(ctx)
	}
	return ping, free, done
}
