package audit

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store"
)

// downOutbox is a store whose outbox read fails, each read held until the
// test lets it go.
type downOutbox struct {
	Store
	calls   chan struct{}
	proceed chan struct{}
}

func (d downOutbox) DueEvents(ctx context.Context, now time.Time, limit int, kinds ...string) ([]store.Event, error) {
	d.calls <- struct{}{}
	<-d.proceed
	return nil, errors.New("connection refused")
}

// TestRunWarnsAfterTheClockStepsBack: Run logs a store that stays down
// once a minute; with the clock stepped back (an NTP correction, a VM
// restored) it said nothing until the clock had passed the last warning's
// time again, an hour's step an hour of silence while no audit record
// was appended, as retainTexts's warning, which starts again, does not.
func TestRunWarnsAfterTheClockStepsBack(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			st := downOutbox{Store: e.store(), calls: make(chan struct{}), proceed: make(chan struct{})}
			logs := &logtest.Buffer{}
			w := newTestWorker(t, st, func(o *WorkerOptions) {
				o.PollInterval = time.Hour
				o.Now = clock
				o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); w.Run(ctx) }()

			<-st.calls // the first pass, at now
			st.proceed <- struct{}{}
			w.Wake()
			<-st.calls // the second: the first has logged
			mu.Lock()
			now = now.Add(-time.Hour) // the clock stepped back
			mu.Unlock()
			st.proceed <- struct{}{}
			w.Wake()
			<-st.calls // the third: the second has logged
			cancel()
			st.proceed <- struct{}{}
			<-done

			if n := strings.Count(logs.String(), "audit outbox pass failed"); n != 2 {
				t.Errorf("warned %d times; want 2: once at the first failure, once after the clock stepped back an hour:\n%s", n, logs.String())
			}
		})
	}
}
