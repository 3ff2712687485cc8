package payments_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// TestQueryAnswerSignedUnderALapsedCertificateIsNotTrusted: paygate
// verifies WeChat Pay by its platform certificates, the retired one kept
// beside its successor during a rotation, and the payer pays. The order's
// query answers SUCCESS signed with the retired certificate's key: once that
// certificate has expired (or before it is valid) WeChat Pay signs nothing
// with it, so whoever holds the key made the answer. Notifications under
// such a certificate were refused (TestNotifySignedUnderALapsedCertificate
// IsRefused), yet the same key verified the official client's API answers,
// and the sweep and query_order marked the order paid on it. The answer is
// not trusted now: the order stays awaiting payment and the ALERT names the
// serial and the date its certificate's period ends or starts. Within its
// period the same answer pays the order, as before, at its first second and
// at its last too, judged by Config.Now.
func TestQueryAnswerSignedUnderALapsedCertificateIsNotTrusted(t *testing.T) {
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	retiredKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	// A period in whole seconds, ahead of the real clock, judged at each
	// boundary case's instant by Config.Now: both ends included.
	first := now.Add(time.Hour).Truncate(time.Second)
	last := first.Add(48 * time.Hour)
	notBefore := func(c *x509.Certificate) time.Time { return c.NotBefore }
	notAfter := func(c *x509.Certificate) time.Time { return c.NotAfter }
	certs := []struct {
		name                string
		notBefore, notAfter time.Time
		at                  time.Time // Config.Now, fixed; zero: time.Now
		want                store.OrderStatus
		// named is the date the ALERT names; nil: no ALERT.
		named func(*x509.Certificate) time.Time
	}{
		{name: "in its period", notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour), want: store.StatusPaid},
		{name: "expired", notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour), want: store.StatusAwaitingPayment, named: notAfter},
		{name: "not yet valid", notBefore: now.Add(time.Hour), notAfter: now.Add(48 * time.Hour), want: store.StatusAwaitingPayment, named: notBefore},
		{name: "at its first second", notBefore: first, notAfter: last, at: first, want: store.StatusPaid},
		{name: "at its last second", notBefore: first, notAfter: last, at: last, want: store.StatusPaid},
		{name: "a second before it", notBefore: first, notAfter: last, at: first.Add(-time.Second), want: store.StatusAwaitingPayment, named: notBefore},
		{name: "a second after it", notBefore: first, notAfter: last, at: last.Add(time.Second), want: store.StatusAwaitingPayment, named: notAfter},
	}
	reads := []struct {
		name string
		read func(e *env, o *store.Order) error
	}{
		{"sweep", func(e *env, o *store.Order) error { _, err := e.svc.Sweep(ctx); return err }},
		{"query_order", func(e *env, o *store.Order) error {
			_, err := e.svc.Order(ctx, o.Client, o.User, o.OrderNo)
			return err
		}},
	}
	for _, driver := range drivers(t) {
		for i, c := range certs {
			for _, r := range reads {
				t.Run(driver+"/"+c.name+"/"+r.name, func(t *testing.T) {
					retired := platformCertificate(t, retiredKey, big.NewInt(int64(0x5EED0001+i)), c.notBefore, c.notAfter)
					serial := fmt.Sprintf("%X", retired.SerialNumber.Bytes())
					logs := &logtest.Buffer{}
					e := newEnv(t, envOptions{driver: driver, notifyTo: "sink", client: func(cfg *wechatpay.Config) {
						// Platform certificates only: the successor, which
						// paygate asks WeChat Pay to sign with, and the
						// retired one beside it.
						cfg.PublicKeyID, cfg.PublicKey = "", nil
						cfg.PlatformCerts = []*x509.Certificate{keys.PlatformCert, retired}
						cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
						if !c.at.IsZero() {
							cfg.Now = func() time.Time { return c.at }
						}
					}})
					o := e.create(fmt.Sprintf("oUser-query-cert-%d", i), 1)
					if _, err := e.sim.Pay(ctx, o.OrderNo); err != nil {
						t.Fatal(err)
					}
					// From here every answer is signed with the retired
					// key, under its serial.
					e.sim.RotatePlatformCertificate(retiredKey, retired)
					e.clock.Advance(time.Minute) // due for a query
					if err := r.read(e, o); err != nil {
						t.Fatal(err)
					}
					if got := e.order(o.OrderNo); got.Status != c.want {
						t.Errorf("order %s after the %s; want %s", got.Status, r.name, c.want)
					}
					if c.named == nil {
						return
					}
					date := c.named(retired).UTC().Format(time.RFC3339)
					for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
						var rec map[string]any
						if json.Unmarshal([]byte(line), &rec) == nil && rec["alert"] == true &&
							strings.Contains(line, serial) && strings.Contains(line, date) {
							return
						}
					}
					t.Errorf("no ALERT naming serial %s and %s; log:\n%s", serial, date, logs.String())
				})
			}
		}
	}
}
