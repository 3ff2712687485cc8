package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
)

func TestVerify(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"id":"evt_1","type":"order.paid","created_at":"2026-01-02T03:04:05Z","data":{"order":{"order_no":"P1"}}}`)
	now := time.Unix(1_800_000_000, 0)
	good := webhook.Sign(secret, now, body)
	// An independent computation of the documented formula.
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", now.Unix(), body)
	manual := fmt.Sprintf("t=%d,v1=%s", now.Unix(), hex.EncodeToString(m.Sum(nil)))
	other := webhook.Sign("whsec_old", now, body)
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		tol    time.Duration
		want   error
	}{
		{name: "valid", secret: secret, header: good, body: body, now: now},
		{name: "formula as documented", secret: secret, header: manual, body: body, now: now},
		{name: "spaces after commas", secret: secret, header: "t=" + strconv.FormatInt(now.Unix(), 10) + ", v1=" + good[len("t=1800000000,v1="):], body: body, now: now},
		{name: "rotation: one of two v1 matches", secret: secret, header: other + ",v1=" + good[len("t=1800000000,v1="):], body: body, now: now},
		{name: "within tolerance late", secret: secret, header: good, body: body, now: now.Add(4 * time.Minute)},
		{name: "within tolerance early", secret: secret, header: good, body: body, now: now.Add(-4 * time.Minute)},
		{name: "too old", secret: secret, header: good, body: body, now: now.Add(6 * time.Minute), want: webhook.ErrTimestamp},
		{name: "from the future", secret: secret, header: good, body: body, now: now.Add(-6 * time.Minute), want: webhook.ErrTimestamp},
		{name: "custom tolerance", secret: secret, header: good, body: body, now: now.Add(20 * time.Second), tol: 10 * time.Second, want: webhook.ErrTimestamp},
		{name: "wrong secret", secret: "whsec_other", header: good, body: body, now: now, want: webhook.ErrSignature},
		{name: "body changed", secret: secret, header: good, body: append([]byte(nil), append(body[:len(body)-1:len(body)-1], ' ', '}')...), now: now, want: webhook.ErrSignature},
		{name: "timestamp changed", secret: secret, header: "t=" + strconv.FormatInt(now.Unix()+1, 10) + good[len("t=1800000000"):], body: body, now: now, want: webhook.ErrSignature},
		{name: "empty header", secret: secret, header: "", body: body, now: now, want: webhook.ErrNoSignature},
		{name: "no v1", secret: secret, header: "t=1800000000", body: body, now: now, want: webhook.ErrNoSignature},
		{name: "no t", secret: secret, header: good[len("t=1800000000,"):], body: body, now: now, want: webhook.ErrNoSignature},
		{name: "v1 not hex", secret: secret, header: "t=1800000000,v1=zz", body: body, now: now, want: webhook.ErrNoSignature},
		{name: "bad timestamp", secret: secret, header: "t=soon" + good[len("t=1800000000"):], body: body, now: now, want: webhook.ErrNoSignature},
		{name: "v0 scheme ignored", secret: secret, header: "t=1800000000,v0=" + good[len("t=1800000000,v1="):], body: body, now: now, want: webhook.ErrNoSignature},
		// A receiver whose secret did not load (an unset environment
		// variable) verifies against "": anyone can sign under it, and a
		// forged order.paid would have the goods delivered unpaid.
		// paygate never signs with an empty secret (config refuses one).
		{name: "empty secret", secret: "", header: webhook.Sign("", now, body), body: body, now: now, want: webhook.ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.header, tc.body, tc.now, tc.tol)
			if tc.want == nil && err != nil {
				t.Errorf("got %v; want nil", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v; want %v", err, tc.want)
			}
		})
	}
}

func TestSignFormat(t *testing.T) {
	h := webhook.Sign("s", time.Unix(1700000000, 0), []byte("{}"))
	if got, want := h[:len("t=1700000000,v1=")], "t=1700000000,v1="; got != want {
		t.Errorf("got prefix %q; want %q", got, want)
	}
	if got := len(h) - len("t=1700000000,v1="); got != 64 {
		t.Errorf("got %d hex digits; want 64", got)
	}
}

// A receiver checks the signature over the raw body before decoding it.
func ExampleVerify() {
	secret := "whsec_example"
	body := []byte(`{"id":"evt_1","type":"order.paid"}`)
	sent := time.Unix(1_800_000_000, 0)
	header := webhook.Sign(secret, sent, body) // what paygate sends as X-Paygate-Signature

	fmt.Println(webhook.Verify(secret, header, body, sent.Add(30*time.Second), 5*time.Minute))
	fmt.Println(webhook.Verify(secret, header, []byte(`{"id":"evt_1","type":"order.closed"}`), sent, 0))
	fmt.Println(errors.Is(webhook.Verify(secret, header, body, sent.Add(time.Hour), 0), webhook.ErrTimestamp))
	// Output:
	// <nil>
	// webhook signature does not match
	// true
}
