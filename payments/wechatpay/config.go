package wechatpay

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// Defaults for Config's zero values.
const (
	DefaultAttemptTimeout = 5 * time.Second
	DefaultMaxAttempts    = 3
	DefaultRetryBackoff   = 200 * time.Millisecond
)

// Config describes one merchant account. Key material may be given as parsed
// values (the simulator, tests) or as files (production); a parsed value wins
// over its file. Secrets never appear in errors or logs.
type Config struct {
	// APIBase overrides WeChat Pay's host (scheme://host[:port]); empty means
	// DefaultAPIBase. Tests and the simulator point it at a loopback server.
	APIBase string
	MchID   string
	// AppID is the default appid of prepay requests (PrepayRequest.AppID wins).
	AppID string

	// MchCertSerial is the merchant API certificate's serial number, sent in
	// every Authorization header. When empty it is read from MchCertFile.
	MchCertSerial     string
	MchCertFile       string
	MchPrivateKey     *rsa.PrivateKey
	MchPrivateKeyFile string // PEM, PKCS#8 ("PRIVATE KEY") or PKCS#1

	// APIv3Key decrypts notifications; it must be exactly 32 bytes.
	APIv3Key string
	// APIv3PreviousKey, when set, also decrypts notifications: a
	// rotation's outgoing key, for those WeChat Pay encrypted before the
	// change and still retries. Exactly 32 bytes.
	APIv3PreviousKey string

	// WeChat Pay public-key mode: the key's ID (PUB_KEY_ID_…) and the key.
	PublicKeyID   string
	PublicKey     *rsa.PublicKey
	PublicKeyFile string
	// Platform-certificate mode. Both modes may be configured at once.
	PlatformCerts     []*x509.Certificate
	PlatformCertFiles []string

	// NotifyURL receives payment and refund notifications.
	NotifyURL string

	// AttemptTimeout bounds one HTTP attempt (default 5s); MaxAttempts bounds
	// the attempts of one operation (default 3); RetryBackoff is the first pause
	// between attempts, doubled each time (default 200ms).
	AttemptTimeout time.Duration
	MaxAttempts    int
	RetryBackoff   time.Duration

	// Transport carries the requests (nil: Go's default transport, a proxy's
	// refusal named as one: NewHostRewriter), below the
	// host rewriter.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Now is the clock that paces the client's ALERT lines and judges
	// whether the platform certificate an answer is signed under is in
	// its validity period (nil: time.Now).
	Now func() time.Time
	// Registerer takes the client's metrics
	// (paygate_wechatpay_merchant_errors_total); nil: a private registry.
	Registerer prometheus.Registerer
}

// keys is Config's key material, loaded and checked.
type keys struct {
	mchKey    *rsa.PrivateKey
	mchSerial string
	verifier  *Verifier
}

func (c *Config) load() (*keys, error) {
	if c.MchID == "" {
		return nil, fmt.Errorf("%w: mch_id is empty", ErrConfig)
	}
	if len(c.APIv3Key) != 32 {
		return nil, fmt.Errorf("%w: %w (got %d)", ErrConfig, ErrAPIv3KeyLength, len(c.APIv3Key))
	}
	k := &keys{mchKey: c.MchPrivateKey, mchSerial: c.MchCertSerial}
	if k.mchKey == nil {
		if c.MchPrivateKeyFile == "" {
			return nil, fmt.Errorf("%w: mch_private_key_file is empty", ErrConfig)
		}
		key, err := LoadPrivateKeyFile(c.MchPrivateKeyFile)
		if err != nil {
			return nil, err
		}
		k.mchKey = key
	}
	if k.mchSerial == "" {
		if c.MchCertFile == "" {
			return nil, fmt.Errorf("%w: mch_cert_serial is empty", ErrConfig)
		}
		cert, err := LoadCertificateFile(c.MchCertFile)
		if err != nil {
			return nil, err
		}
		k.mchSerial = utils.GetCertificateSerialNumber(*cert)
	}
	pub := c.PublicKey
	if pub == nil && c.PublicKeyFile != "" {
		p, err := LoadPublicKeyFile(c.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		pub = p
	}
	certs := append([]*x509.Certificate(nil), c.PlatformCerts...)
	for _, f := range c.PlatformCertFiles {
		fileCerts, err := LoadCertificatesFile(f)
		if err != nil {
			return nil, err
		}
		certs = append(certs, fileCerts...)
	}
	v, err := NewVerifier(c.PublicKeyID, pub, certs)
	if err != nil {
		return nil, err
	}
	if c.Now != nil {
		v.now = c.Now
	}
	k.verifier = v
	return k, nil
}

// LoadPrivateKeyFile reads an RSA private key in PEM (PKCS#8 or PKCS#1).
func LoadPrivateKeyFile(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: merchant private key: %w", ErrConfig, err)
	}
	key, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%w: merchant private key %s: %w", ErrConfig, path, err)
	}
	return key, nil
}

// ParsePrivateKeyPEM parses an RSA private key in PEM (PKCS#8 or PKCS#1).
func ParsePrivateKeyPEM(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse pkcs8: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("not an RSA key")
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse pkcs1: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
}

// LoadPublicKeyFile reads the WeChat Pay public key (PEM "PUBLIC KEY").
func LoadPublicKeyFile(path string) (*rsa.PublicKey, error) {
	k, err := utils.LoadPublicKeyWithPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: wechatpay public key %s: %w", ErrConfig, path, err)
	}
	return k, nil
}

// LoadCertificatesFile reads every PEM certificate in a platform
// certificate file. During a rotation an operator keeps the outgoing and
// the incoming certificate in one file, as a CA bundle is kept: read as its
// first block only (LoadCertificateFile), the one WeChat Pay signs with
// after the switch was silently left out, and every notification it sent
// was refused as signed by an unknown serial.
func LoadCertificatesFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s: %w", ErrConfig, path, err)
	}
	var certs []*x509.Certificate
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: certificate %s: PEM block %d is %q, not CERTIFICATE", ErrConfig, path, len(certs)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %s: PEM block %d: %w", ErrConfig, path, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: certificate %s: no PEM certificate in it", ErrConfig, path)
	}
	if begun := pemBlocksBegun(b); begun > len(certs) {
		return nil, fmt.Errorf("%w: certificate %s: %d PEM blocks begin in it and %d decode: one is cut short or damaged", ErrConfig, path, begun, len(certs))
	}
	return certs, nil
}

// pemBlocksBegun counts the PEM blocks that begin in data (its
// "-----BEGIN " lines). pem.Decode passes over a block it cannot read (one
// pasted without its END line, or with a line damaged), and with it, at
// times, the block after it: a count of the blocks decoded below this one
// is a block left out without a word, such as the incoming certificate of
// a rotation, whose notifications were then refused as from an unknown
// serial while serve started.
func pemBlocksBegun(data []byte) int {
	n := 0
	for line := range bytes.Lines(data) {
		if bytes.HasPrefix(line, []byte("-----BEGIN ")) {
			n++
		}
	}
	return n
}

// LoadCertificateFile reads one PEM certificate.
func LoadCertificateFile(path string) (*x509.Certificate, error) {
	c, err := utils.LoadCertificateWithPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s: %w", ErrConfig, path, err)
	}
	return c, nil
}
