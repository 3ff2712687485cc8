package wechatpay

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Notification headers and constants of the APIv3 wire format.
const (
	HeaderSerial        = "Wechatpay-Serial"
	HeaderSignature     = "Wechatpay-Signature"
	HeaderTimestamp     = "Wechatpay-Timestamp"
	HeaderNonce         = "Wechatpay-Nonce"
	HeaderSignatureType = "Wechatpay-Signature-Type"
	SignatureType       = "WECHATPAY2-SHA256-RSA2048"
	// SignatureProbePrefix starts the Wechatpay-Signature of WeChat Pay's
	// signature probes (签名探测), which a merchant must refuse.
	SignatureProbePrefix = "WECHATPAY/SIGNTEST/"
	AlgorithmAESGCM      = "AEAD_AES_256_GCM"

	// Event types paygate acts on.
	EventTransactionSuccess = "TRANSACTION.SUCCESS"
	EventRefundSuccess      = "REFUND.SUCCESS"
	EventRefundAbnormal     = "REFUND.ABNORMAL"
	EventRefundClosed       = "REFUND.CLOSED"

	// TimestampWindow is how far a signed timestamp may be from now.
	TimestampWindow = 5 * time.Minute
)

// EncryptedResource is the notification's "resource" object.
type EncryptedResource struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// Notification is a verified, decrypted APIv3 notification.
type Notification struct {
	ID           string            `json:"id"`
	CreateTime   string            `json:"create_time"`
	EventType    string            `json:"event_type"`
	ResourceType string            `json:"resource_type"`
	Summary      string            `json:"summary"`
	Resource     EncryptedResource `json:"resource"`

	// Serial is the key that signed it; Plaintext the decrypted resource.
	Serial    string `json:"-"`
	Plaintext []byte `json:"-"`
}

// TransactionResource is the decrypted resource of TRANSACTION.* events.
type TransactionResource struct {
	AppID          string `json:"appid"`
	MchID          string `json:"mchid"`
	OutTradeNo     string `json:"out_trade_no"`
	TransactionID  string `json:"transaction_id"`
	TradeType      string `json:"trade_type"`
	TradeState     string `json:"trade_state"`
	TradeStateDesc string `json:"trade_state_desc"`
	BankType       string `json:"bank_type"`
	Attach         string `json:"attach"`
	SuccessTime    string `json:"success_time"`
	Payer          struct {
		OpenID string `json:"openid"`
	} `json:"payer"`
	Amount struct {
		Total         int64  `json:"total"`
		PayerTotal    int64  `json:"payer_total"`
		Currency      string `json:"currency"`
		PayerCurrency string `json:"payer_currency"`
	} `json:"amount"`
}

// RefundResource is the decrypted resource of REFUND.* events. It carries no
// appid.
type RefundResource struct {
	MchID               string `json:"mchid"`
	OutTradeNo          string `json:"out_trade_no"`
	TransactionID       string `json:"transaction_id"`
	OutRefundNo         string `json:"out_refund_no"`
	RefundID            string `json:"refund_id"`
	RefundStatus        string `json:"refund_status"`
	SuccessTime         string `json:"success_time"`
	UserReceivedAccount string `json:"user_received_account"`
	Amount              struct {
		Total       int64 `json:"total"`
		Refund      int64 `json:"refund"`
		PayerTotal  int64 `json:"payer_total"`
		PayerRefund int64 `json:"payer_refund"`
	} `json:"amount"`
}

// NotifyVerifier authenticates and decrypts notifications. Unlike the SDK's
// notify handler it verifies the raw body bytes it is given, reports each
// failure with its own sentinel, and never panics on a malformed nonce.
type NotifyVerifier struct {
	verifier *Verifier
	aead     cipher.AEAD
	// previous opens what aead does not: a rotation's outgoing APIv3 key,
	// which the notifications WeChat Pay encrypted before the change (and
	// retries for up to a day) were encrypted with; nil when none.
	previous cipher.AEAD
}

// NewNotifyVerifier builds a NotifyVerifier. apiv3Key must be exactly 32
// bytes; so must previous, a rotation's outgoing APIv3 key, when not "".
func NewNotifyVerifier(apiv3Key string, v *Verifier, previous ...string) (*NotifyVerifier, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: notify verifier needs a signature verifier", ErrConfig)
	}
	gcm, err := apiv3AEAD(apiv3Key)
	if err != nil {
		return nil, err
	}
	n := &NotifyVerifier{verifier: v, aead: gcm}
	for _, p := range previous {
		if p == "" {
			continue
		}
		if n.previous != nil {
			return nil, fmt.Errorf("%w: one previous apiv3 key at most", ErrConfig)
		}
		if n.previous, err = apiv3AEAD(p); err != nil {
			return nil, fmt.Errorf("previous: %w", err)
		}
	}
	return n, nil
}

// apiv3AEAD is the AEAD_AES_256_GCM of an APIv3 key.
func apiv3AEAD(key string) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: %w (got %d)", ErrConfig, ErrAPIv3KeyLength, len(key))
	}
	block, err := aes.NewCipher([]byte(key))
	if err != nil {
		return nil, fmt.Errorf("%w: apiv3 key: %w", ErrConfig, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: apiv3 key: %w", ErrConfig, err)
	}
	return gcm, nil
}

// maxLogValue is how many bytes of a notification's header LogValue keeps:
// a serial is 40 hex digits, or PUB_KEY_ID_ and about 30 digits.
const maxLogValue = 64

// LogValue is a notification header's value as errors and log lines quote
// it: whole up to maxLogValue bytes, else its beginning and its length. The
// notify route is open to the internet and its refusals are logged, each
// header value twice (the attribute and the error), JSON-escaped: a 500 KB
// Wechatpay-Serial made 5.6 MB of log per refused request, so a flood of
// them filled the disk at ten times the attacker's bandwidth.
func LogValue(v string) string {
	if len(v) <= maxLogValue {
		return v
	}
	return v[:maxLogValue] + "…(" + strconv.Itoa(len(v)) + " bytes)"
}

// Verify authenticates body (exactly the bytes received) with header, checks the
// timestamp against now, and decrypts the resource. Errors wrap, in the order
// checked: ErrMissingHeaders, ErrUnknownSerial (a serial not configured, or
// a platform certificate outside its validity period: Verifier.ValidAt),
// ErrStaleTimestamp,
// ErrBadSignature (all: not from WeChat Pay; ErrSignatureProbe, an
// ErrBadSignature, is WeChat Pay's probe that paygate checks signatures),
// ErrMalformed (signed but not a notification), ErrDecrypt (signed, but
// the APIv3 key does not open it).
func (n *NotifyVerifier) Verify(ctx context.Context, header http.Header, body []byte, now time.Time) (*Notification, error) {
	serial := header.Get(HeaderSerial)
	sig := header.Get(HeaderSignature)
	tsText := header.Get(HeaderTimestamp)
	nonce := header.Get(HeaderNonce)
	if serial == "" || sig == "" || tsText == "" || nonce == "" {
		return nil, fmt.Errorf("%w", ErrMissingHeaders)
	}
	if st := header.Get(HeaderSignatureType); st != "" && st != SignatureType {
		return nil, fmt.Errorf("%w: signature type %q", ErrBadSignature, LogValue(st))
	}
	if !n.verifier.Known(serial) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSerial, LogValue(serial))
	}
	if err := n.verifier.ValidAt(serial, now); err != nil {
		return nil, err
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: timestamp %q", ErrStaleTimestamp, LogValue(tsText))
	}
	skew := now.Sub(time.Unix(ts, 0))
	if skew >= TimestampWindow || skew <= -TimestampWindow {
		return nil, fmt.Errorf("%w: timestamp %d is %s from now", ErrStaleTimestamp, ts, skew.Round(time.Second))
	}
	if strings.HasPrefix(sig, SignatureProbePrefix) {
		// Never a valid signature: refused as a bad one, and named, so
		// WeChat Pay's routine probes do not read as forgeries.
		return nil, ErrSignatureProbe
	}
	msg := make([]byte, 0, len(tsText)+len(nonce)+len(body)+3)
	msg = append(msg, tsText...)
	msg = append(msg, '\n')
	msg = append(msg, nonce...)
	msg = append(msg, '\n')
	msg = append(msg, body...)
	msg = append(msg, '\n')
	if err := n.verifier.verifySignature(ctx, serial, string(msg), sig); err != nil {
		return nil, err
	}
	note := &Notification{Serial: serial}
	if err := json.Unmarshal(body, note); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if note.ID == "" || note.EventType == "" {
		return nil, fmt.Errorf("%w: no id or event_type", ErrMalformed)
	}
	pt, err := n.Decrypt(note.Resource)
	if err != nil {
		return note, err
	}
	note.Plaintext = pt
	return note, nil
}

// Decrypt opens an AEAD_AES_256_GCM resource with the APIv3 key. Its errors
// wrap ErrDecrypt and the cause: ErrDecryptAlgorithm, ErrDecryptFormat or
// ErrDecryptKey.
func (n *NotifyVerifier) Decrypt(r EncryptedResource) ([]byte, error) {
	if r.Algorithm != AlgorithmAESGCM {
		return nil, fmt.Errorf("%w: %w: algorithm %q", ErrDecrypt, ErrDecryptAlgorithm, r.Algorithm)
	}
	if len(r.Nonce) != n.aead.NonceSize() {
		return nil, fmt.Errorf("%w: %w: nonce of %d bytes", ErrDecrypt, ErrDecryptFormat, len(r.Nonce))
	}
	ct, err := base64.StdEncoding.DecodeString(r.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: ciphertext: %v", ErrDecrypt, ErrDecryptFormat, err)
	}
	pt, err := n.aead.Open(nil, []byte(r.Nonce), ct, []byte(r.AssociatedData))
	if err != nil && n.previous != nil {
		// Encrypted before the key's change, retried since.
		if pt, err = n.previous.Open(nil, []byte(r.Nonce), ct, []byte(r.AssociatedData)); err != nil {
			return nil, fmt.Errorf("%w: %w %w: %v", ErrDecrypt, ErrDecryptKey, ErrDecryptPreviousKey, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrDecrypt, ErrDecryptKey, err)
	}
	return pt, nil
}
