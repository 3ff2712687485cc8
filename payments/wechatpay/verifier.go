package wechatpay

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// Verifier checks WeChat Pay signatures (responses and notifications) against
// the WeChat Pay public key, the platform certificates, or both. During a
// migration from certificates to the public key WeChat signs with either, so it
// dispatches on the Wechatpay-Serial header; the SDK's combined verifier would
// misreport an unknown serial as a certificate problem. Each key is checked by the
// SDK's own verifiers. It implements the SDK's auth.Verifier.
type Verifier struct {
	bySerial  map[string]auth.Verifier
	preferred string
	// certs are the platform certificates by serial, whose validity
	// periods bound when their keys verify a notification or an answer
	// (ValidAt).
	certs map[string]*x509.Certificate
	// now judges an answer's certificate (Verify): Config.Now, else
	// time.Now. A notification is judged by its receiver's clock.
	now func() time.Time
}

var _ auth.Verifier = (*Verifier)(nil)

// NewVerifier builds a Verifier. publicKeyID/publicKey may be empty/nil (platform
// certificate mode) and certs may be empty (public-key mode), not both.
func NewVerifier(publicKeyID string, publicKey *rsa.PublicKey, certs []*x509.Certificate) (*Verifier, error) {
	v := &Verifier{bySerial: map[string]auth.Verifier{}, certs: map[string]*x509.Certificate{}, now: time.Now}
	if (publicKeyID == "") != (publicKey == nil) {
		return nil, fmt.Errorf("%w: public key mode needs both public_key_id and the public key", ErrConfig)
	}
	if publicKey != nil {
		v.bySerial[publicKeyID] = verifiers.NewSHA256WithRSAPubkeyVerifier(publicKeyID, *publicKey)
		v.preferred = publicKeyID
	}
	var newest *x509.Certificate
	for _, c := range certs {
		if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("%w: platform certificate %X has no RSA key", ErrConfig, c.SerialNumber)
		}
		serial := utils.GetCertificateSerialNumber(*c)
		v.bySerial[serial] = verifiers.NewSHA256WithRSAVerifier(core.NewCertificateMapWithList([]*x509.Certificate{c}))
		v.certs[serial] = c
		if newest == nil || c.NotAfter.After(newest.NotAfter) {
			newest = c
		}
	}
	if len(v.bySerial) == 0 {
		return nil, fmt.Errorf("%w: no WeChat Pay public key and no platform certificate", ErrConfig)
	}
	if v.preferred == "" {
		v.preferred = utils.GetCertificateSerialNumber(*newest)
	}
	return v, nil
}

// Known reports whether serial names a key this Verifier holds.
func (v *Verifier) Known(serial string) bool {
	_, ok := v.bySerial[serial]
	return ok
}

// ValidAt is nil when the key serial names may sign at now: the WeChat Pay
// public key always, a platform certificate only within its validity
// period. WeChat Pay signs with a certificate only while it is valid; an
// expired one stays configured beside its successor during a rotation, and
// its key verified notifications and API answers all the same, so whoever
// held the retired key could mark any order paid. The error wraps
// ErrUnknownSerial.
func (v *Verifier) ValidAt(serial string, now time.Time) error {
	c, ok := v.certs[serial]
	switch {
	case !ok:
		return nil
	case now.After(c.NotAfter):
		return fmt.Errorf("%w: %q: its platform certificate expired on %s", ErrUnknownSerial, serial, c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("%w: %q: its platform certificate is valid only from %s", ErrUnknownSerial, serial, c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// Verify checks signature over message with the key named by serial, a
// platform certificate's only within its validity period by v's clock
// (ValidAt): the official client verifies every API answer with it. The
// error wraps ErrUnknownSerial or ErrBadSignature; WeChat Pay's signature
// probe, which it puts on API answers as on notifications, is
// ErrSignatureProbe.
func (v *Verifier) Verify(ctx context.Context, serial, message, signature string) error {
	if !v.Known(serial) {
		return fmt.Errorf("%w: %q", ErrUnknownSerial, serial)
	}
	if err := v.ValidAt(serial, v.now()); err != nil {
		return err
	}
	return v.verifySignature(ctx, serial, message, signature)
}

// verifySignature is Verify without the validity period, for a caller that
// judged it by its own clock (NotifyVerifier.Verify).
func (v *Verifier) verifySignature(ctx context.Context, serial, message, signature string) error {
	inner, ok := v.bySerial[serial]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSerial, serial)
	}
	if strings.HasPrefix(signature, SignatureProbePrefix) {
		return ErrSignatureProbe
	}
	if err := inner.Verify(ctx, serial, message, signature); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// GetSerial names the serial sent as each request's Wechatpay-Serial header:
// the public key when there is one, which makes WeChat Pay sign its answer
// with that key; else the newest certificate, which with certificates only
// names the one a request's encrypted fields would use (paygate's requests
// have none) and does not choose the answer's signer: WeChat Pay does, by its
// own rollout of a new certificate.
func (v *Verifier) GetSerial(context.Context) (string, error) {
	return v.preferred, nil
}
