package wxsim_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestRetrySignedWhenSent: WeChat Pay retries a notification for about 24
// hours (15s, 15s, 30s, 3m, 10m, 20m, 30m, …), each attempt a new request
// signed when it is sent, and a merchant refuses a timestamp more than 5
// minutes off. The simulator sent every attempt with the first one's
// headers: its retries past 5 minutes carried a stale timestamp, which the
// notify route rightly refuses, so a paygate that missed the first attempt
// never acknowledged the payment. Each attempt keeps the notification (its
// id and body) and is signed at its own time.
func TestRetrySignedWhenSent(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sink, sent := failFirstSink(t, clock, func() {
		mu.Lock()
		now = now.Add(20 * time.Minute) // the next attempt comes 20 minutes on
		mu.Unlock()
	})
	s, api := newSim(t, wxsim.Options{Now: clock, NotifyAttempts: 2, NotifyRetry: time.Millisecond})
	c, err := wechatpay.New(context.Background(), s.ClientConfig(api.URL, sink.URL+"/wechatpay/notify"))
	if err != nil {
		t.Fatal(err)
	}
	payAckedAtSecondAttempt(t, s, c, "PGresign000001")
	attempts := sent()
	if len(attempts) != 2 {
		t.Fatalf("attempts: %d; want 2", len(attempts))
	}
	var ids []string
	for i, a := range attempts {
		n, err := c.NotifyVerifier().Verify(context.Background(), a.h, a.body, a.at)
		if err != nil {
			t.Errorf("attempt %d (timestamp %s, received at %d): %v; want it verified when it arrives", i+1,
				a.h.Get(wechatpay.HeaderTimestamp), a.at.Unix(), err)
			continue
		}
		ids = append(ids, n.ID)
	}
	if len(ids) == 2 && ids[0] != ids[1] {
		t.Errorf("notification ids %q and %q; want one notification, retried", ids[0], ids[1])
	}
	if !bytes.Equal(attempts[0].body, attempts[1].body) {
		t.Errorf("the retry's body differs from the first attempt's; want the same notification")
	}
}

// TestRetrySignedWithRotatedPlatformCertificate: once WeChat Pay signs
// with a new platform certificate (RotatePlatformCertificate), a
// notification's first attempt names the new serial, and so does each
// retry, signed anew with the same certificate. The simulator signed a
// retry with the WeChat Pay public key's private key under the new
// certificate's serial: a signature the new certificate does not verify,
// which paygate's notify route rightly refuses, so a merchant that missed
// the first attempt (or added the new certificate since) never took the
// payment from a retry, as it would from WeChat Pay's.
func TestRetrySignedWithRotatedPlatformCertificate(t *testing.T) {
	sink, sent := failFirstSink(t, time.Now, func() {})
	s, api := newSim(t, wxsim.Options{SignWith: wxsim.SignCertificate, NotifyAttempts: 2, NotifyRetry: time.Millisecond})
	next, err := wxsim.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	s.RotatePlatformCertificate(next.PlatformKey, next.PlatformCert)
	cfg := s.ClientConfig(api.URL, sink.URL+"/wechatpay/notify")
	cfg.PlatformCerts = append(cfg.PlatformCerts, next.PlatformCert)
	c, err := wechatpay.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	payAckedAtSecondAttempt(t, s, c, "PGresign000002")
	attempts := sent()
	if len(attempts) != 2 {
		t.Fatalf("attempts: %d; want 2", len(attempts))
	}
	for i, a := range attempts {
		if _, err := c.NotifyVerifier().Verify(context.Background(), a.h, a.body, time.Now()); err != nil {
			t.Errorf("attempt %d (serial %s): %v; want it verified", i+1, a.h.Get(wechatpay.HeaderSerial), err)
		}
	}
}

// payAckedAtSecondAttempt places Native order no through c and pays it at
// s, whose notification the receiver must acknowledge at its second
// attempt.
func payAckedAtSecondAttempt(t *testing.T, s *wxsim.Server, c *wechatpay.Client, no string) {
	t.Helper()
	if _, err := c.Prepay(context.Background(), wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: no, Description: "d", Total: 5}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Pay(context.Background(), no)
	if err != nil || !d.Acked || d.Attempts != 2 {
		t.Fatalf("delivery: %+v, %v; want acknowledged at the second attempt", d, err)
	}
}

// notifyAttempt is one notification attempt a failFirstSink received.
type notifyAttempt struct {
	h    http.Header
	body []byte
	at   time.Time // the receiver's clock when it arrived
}

// failFirstSink is a notify_url that answers the first attempt 500 (then
// calls afterFirst) and every later one 204; sent returns the attempts
// received, each stamped with clock.
func failFirstSink(t *testing.T, clock func() time.Time, afterFirst func()) (sink *httptest.Server, sent func() []notifyAttempt) {
	t.Helper()
	var mu sync.Mutex
	var attempts []notifyAttempt
	sink = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		mu.Lock()
		attempts = append(attempts, notifyAttempt{r.Header.Clone(), b.Bytes(), clock()})
		first := len(attempts) == 1
		mu.Unlock()
		if first {
			afterFirst()
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(sink.Close)
	return sink, func() []notifyAttempt {
		mu.Lock()
		defer mu.Unlock()
		return append([]notifyAttempt(nil), attempts...)
	}
}
