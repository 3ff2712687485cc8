package webhook_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRefusalWithEndlessBodyAndRetryAfter: a merchant that refuses with a
// 429 or 503, a Retry-After far past SPEC 2.6's schedule and a body that
// never ends (a misbehaving gateway's streamed error page) costs one
// prompt, failed attempt: the answer is read only as far as the error
// quotes it, not until the POST's timeout, its quote is cut to 256 bytes,
// and the retry comes when the Retry-After asked, capped at the
// schedule's longest delay (MaxDelay; TestRetryAfterHonoured has the rest).
func TestRefusalWithEndlessBodyAndRetryAfter(t *testing.T) {
	const timeout = 20 * time.Second
	for _, tc := range []struct {
		status     int
		retryAfter string
	}{
		{http.StatusTooManyRequests, "3600"},
		{http.StatusServiceUnavailable, "120"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.retryAfter)
				w.WriteHeader(tc.status)
				chunk := bytes.Repeat([]byte("slow down "), 4<<10)
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			clk := newClock()
			st := testdrivers.Open(t, "embedded", nil)
			ob := orders{t, st}
			o := ob.create("PREFUSE"+strings.ReplaceAll(http.StatusText(tc.status), " ", ""), store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			r := newRelay(t, st, srv.URL, clk.Now, func(o *webhook.Options) { o.Timeout = timeout })
			start := time.Now()
			drain(t, r)
			if took := time.Since(start); took > timeout/2 {
				t.Errorf("the attempt took %s; want it over once the error's quote was read, not at the %s timeout", took, timeout)
			}
			h, ok := head(t, st, webhook.QueuePrefix+o.OrderNo)
			if !ok || h.Attempts != 1 {
				t.Fatalf("head %+v (found %v); want the order.paid pending after one attempt", h, ok)
			}
			want := clk.Now().Add(8 * time.Second) // newRelay's MaxDelay
			secs, _ := strconv.Atoi(tc.retryAfter)
			asked := clk.Now().Add(time.Duration(secs) * time.Second)
			prefix := "status " + strconv.Itoa(tc.status) + ", Retry-After " + asked.UTC().Format(time.RFC3339) + ": "
			if !strings.HasPrefix(h.LastError, prefix) || !strings.Contains(h.LastError, "slow down") {
				t.Errorf("last_error %q; want the status, the time asked and the start of the answer", h.LastError)
			}
			if len(h.LastError) > len(prefix)+256 {
				t.Errorf("last_error is %d bytes; want the answer cut to 256", len(h.LastError))
			}
			if !h.NextAt.Equal(want) {
				t.Errorf("next attempt at %s; want %s, the Retry-After (%s s) capped at MaxDelay", h.NextAt, want, tc.retryAfter)
			}
		})
	}
}
