package wechatpay

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"

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
}

var _ auth.Verifier = (*Verifier)(nil)

// NewVerifier builds a Verifier. publicKeyID/publicKey may be empty/nil (platform
// certificate mode) and certs may be empty (public-key mode), not both.
func NewVerifier(publicKeyID string, publicKey *rsa.PublicKey, certs []*x509.Certificate) (*Verifier, error) {
	v := &Verifier{bySerial: map[string]auth.Verifier{}}
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

// Serials lists the serials this Verifier accepts, sorted.
func (v *Verifier) Serials() []string {
	out := make([]string, 0, len(v.bySerial))
	for s := range v.bySerial {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Verify checks signature over message with the key named by serial. The error
// wraps ErrUnknownSerial or ErrBadSignature; WeChat Pay's signature probe,
// which it puts on API answers as on notifications, is ErrSignatureProbe.
func (v *Verifier) Verify(ctx context.Context, serial, message, signature string) error {
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

// GetSerial names the serial the client asks WeChat Pay to sign responses with
// (sent as the request's Wechatpay-Serial header): the public key when there is
// one, else the newest certificate.
func (v *Verifier) GetSerial(context.Context) (string, error) {
	return v.preferred, nil
}
