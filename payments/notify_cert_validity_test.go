package payments_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestNotifySignedUnderALapsedCertificateIsRefused: a notification signed
// with the key of a platform certificate outside its validity period is
// refused (401, unknown_serial) and pays nothing. An expired certificate is
// kept in the config beside its successor during a rotation, and WeChat Pay
// no longer signs with it (config warns so); its key verified a
// notification all the same, so whoever held the retired key could mark any
// order paid, for as long as the certificate stayed configured. The
// certificate in its period verifies as before, at its first second and at
// its last too (a period includes both ends), judged by the service's clock.
func TestNotifySignedUnderALapsedCertificateIsRefused(t *testing.T) {
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// A period in whole seconds (a certificate's times have no finer
	// grain), ahead of the real clock: the boundary cases judge it at
	// their instant by the service's clock, from its first second to its
	// last, both included (RFC 5280, as crypto/x509 judges a chain).
	first := now.Add(time.Hour).Truncate(time.Second)
	last := first.Add(48 * time.Hour)
	tests := []struct {
		name              string
		notBefore, expiry time.Time
		at                time.Time // the service's clock, fixed; zero: the env's
		status            int
		want              store.OrderStatus
	}{
		{name: "in its period", notBefore: now.Add(-time.Hour), expiry: now.Add(time.Hour), status: http.StatusNoContent, want: store.StatusPaid},
		{name: "expired", notBefore: now.Add(-48 * time.Hour), expiry: now.Add(-time.Hour), status: http.StatusUnauthorized, want: store.StatusAwaitingPayment},
		{name: "not yet valid", notBefore: now.Add(time.Hour), expiry: now.Add(48 * time.Hour), status: http.StatusUnauthorized, want: store.StatusAwaitingPayment},
		{name: "at its first second", notBefore: first, expiry: last, at: first, status: http.StatusNoContent, want: store.StatusPaid},
		{name: "at its last second", notBefore: first, expiry: last, at: last, status: http.StatusNoContent, want: store.StatusPaid},
		{name: "a second before it", notBefore: first, expiry: last, at: first.Add(-time.Second), status: http.StatusUnauthorized, want: store.StatusAwaitingPayment},
		{name: "a second after it", notBefore: first, expiry: last, at: last.Add(time.Second), status: http.StatusUnauthorized, want: store.StatusAwaitingPayment},
	}
	for _, driver := range drivers(t) {
		for i, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				// The simulator's platform key and serial, under a
				// certificate of the period the case names.
				cert := platformCertificate(t, keys.PlatformKey, keys.PlatformCert.SerialNumber, tt.notBefore, tt.expiry)
				opts := envOptions{driver: driver, client: func(c *wechatpay.Config) { c.PlatformCerts = []*x509.Certificate{cert} }}
				if !tt.at.IsZero() {
					opts.service = func(o *payments.Options) { o.Now = func() time.Time { return tt.at } }
				}
				e := newEnv(t, opts)
				o := e.create(fmt.Sprintf("oUser-cert-%d", i), 1)
				n := e.buildPayment(e.paidTx(o), func(s *wxsim.NotificationSpec) { s.Serial, s.Timestamp = keys.PlatformSerial, tt.at })
				if status, body := e.post(n.Header, n.Body); status != tt.status {
					t.Errorf("got %d %q; want %d", status, body, tt.status)
				}
				if got := e.order(o.OrderNo); got.Status != tt.want {
					t.Errorf("order %s; want %s", got.Status, tt.want)
				}
				if tt.status == http.StatusUnauthorized {
					if n := e.counter("paygate_notifications_total", map[string]string{"outcome": "rejected", "reason": "unknown_serial"}); n != 1 {
						t.Errorf("rejected unknown_serial counted %v; want 1", n)
					}
				}
			})
		}
	}
}

// platformCertificate is a self-signed platform certificate over key under
// serial, valid from notBefore to notAfter.
func platformCertificate(t *testing.T, key *rsa.PrivateKey, serial *big.Int, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "platform certificate"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
