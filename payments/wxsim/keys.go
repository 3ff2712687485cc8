package wxsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Keys is the key material of one simulated merchant and of the simulated
// WeChat Pay. Generating it takes a few hundred milliseconds, so tests share one.
type Keys struct {
	// The merchant's API key and certificate serial: the merchant signs
	// requests with it, the simulator verifies them with its public half.
	MerchantKey    *rsa.PrivateKey
	MerchantSerial string
	// WeChat Pay public-key mode: the simulator signs with PayKey and names it
	// PublicKeyID (PUB_KEY_ID_…).
	PayKey      *rsa.PrivateKey
	PublicKeyID string
	// Platform-certificate mode: a self-signed certificate over PlatformKey.
	PlatformKey    *rsa.PrivateKey
	PlatformCert   *x509.Certificate
	PlatformSerial string
}

// GenerateKeys makes fresh 2048-bit keys and a platform certificate.
func GenerateKeys() (*Keys, error) {
	k := &Keys{}
	var err error
	if k.MerchantKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, fmt.Errorf("merchant key: %w", err)
	}
	if k.PayKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, fmt.Errorf("pay key: %w", err)
	}
	if k.PlatformKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, fmt.Errorf("platform key: %w", err)
	}
	k.MerchantSerial = strings.ToUpper(randomHex(20))
	k.PublicKeyID = "PUB_KEY_ID_" + randomDigits(28)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	serial.SetBit(serial, 120, 1) // fixed length
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Tenpay.com Root CA (simulated)", Organization: []string{"paygate wxsim"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PlatformKey.PublicKey, k.PlatformKey)
	if err != nil {
		return nil, fmt.Errorf("platform certificate: %w", err)
	}
	if k.PlatformCert, err = x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("platform certificate: %w", err)
	}
	k.PlatformSerial = fmt.Sprintf("%X", k.PlatformCert.SerialNumber.Bytes())
	return k, nil
}
