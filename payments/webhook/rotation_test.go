package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestSecretRotationAsTheREADMESays follows the README's "Rotating the
// secret" on each store driver: the endpoint accepts either secret (Verify
// with each in turn), paygate restarts with the new one while an event
// refused under the old one waits for its retry, then the endpoint drops the
// old secret. No delivery is refused for its signature: the retry is signed
// anew, with the secret in force when it is sent, not with the one of the
// attempt it repeats.
func TestSecretRotationAsTheREADMESays(t *testing.T) {
	const oldSecret, newSecret = "whsec_rotation_old_0123456789", "whsec_rotation_new_9876543210"
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			clk := newClock()
			var mu sync.Mutex
			secrets := []string{oldSecret, newSecret} // the endpoint's copies
			type hit struct {
				typ      string
				verified string // the secret that verified it; "" none
				status   int
			}
			var hits []hit
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				h := hit{typ: gjson.GetBytes(body, "type").Str, status: http.StatusNoContent}
				for _, s := range secrets {
					if webhook.Verify(s, r.Header.Get(webhook.SignatureHeader), body, clk.Now(), 5*time.Minute) == nil {
						h.verified = s
						break
					}
				}
				switch {
				case h.verified == "":
					h.status = http.StatusUnauthorized
				case len(hits) == 0:
					h.status = http.StatusServiceUnavailable // the first attempt fails for another reason
				}
				hits = append(hits, h)
				w.WriteHeader(h.status)
			}))
			defer srv.Close()
			relay := func(st store.Store, secret string) *webhook.Relay {
				r, err := webhook.New(webhook.Options{Store: st, URL: srv.URL, Secret: secret, Now: clk.Now, RetryBase: time.Second, MaxDelay: time.Second, RetryFor: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}

			place := testdrivers.NewPlace(t, driver, nil)
			st := place.Open()
			ob := orders{t, st}
			o := ob.create("PROTATE"+driver, store.StatusAwaitingPayment)
			ob.move(o, store.StatusPaid, "notification")
			drain(t, relay(st, oldSecret)) // refused, to be retried
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = place.Open() // restarted with the new secret
			defer st.Close()
			ob = orders{t, st}
			r := relay(st, newSecret)
			clk.Advance(2 * time.Second)
			drain(t, r)
			mu.Lock()
			secrets = []string{newSecret} // the old one dropped
			mu.Unlock()
			ob.move(o, store.StatusNeedsReview, "notification")
			drain(t, r)

			mu.Lock()
			defer mu.Unlock()
			want := []hit{
				{webhook.TypeOrderPaid, oldSecret, http.StatusServiceUnavailable},
				{webhook.TypeOrderPaid, newSecret, http.StatusNoContent},
				{webhook.TypeOrderNeedsReview, newSecret, http.StatusNoContent},
			}
			if len(hits) != len(want) {
				t.Fatalf("the endpoint got %+v; want %+v", hits, want)
			}
			for i := range want {
				if hits[i] != want[i] {
					t.Errorf("delivery %d: %+v; want %+v", i, hits[i], want[i])
				}
			}
		})
	}
}
