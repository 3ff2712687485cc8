package wechatpay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

// Sentinels, checked with errors.Is. Every error returned by a Client method
// wraps exactly one of the outcome sentinels (ErrOrderPaid … ErrUnverified) so a
// caller decides by meaning, never by HTTP status.
var (
	// ErrConfig: the Config cannot produce a working client.
	ErrConfig = errors.New("wechatpay config")
	// ErrAPIv3KeyLength: the APIv3 key is not exactly 32 bytes, so every
	// notification would fail to decrypt. Refused at construction.
	ErrAPIv3KeyLength = errors.New("apiv3 key must be exactly 32 bytes")
	// ErrInvalidNumber: an out_trade_no or out_refund_no outside WeChat's limits.
	ErrInvalidNumber = errors.New("invalid merchant number")

	// ErrOrderPaid: WeChat Pay says the order is already paid (ORDERPAID). It is
	// a success for the payer, not a failure.
	ErrOrderPaid = errors.New("order already paid")
	// ErrOrderClosed: the order is closed at WeChat Pay (ORDER_CLOSED); its number
	// can never be used again.
	ErrOrderClosed = errors.New("order closed")
	// ErrNotFound: no such order or refund at WeChat Pay: its own code in
	// the answer's JSON body (ORDER_NOT_EXIST, RESOURCE_NOT_EXISTS). An
	// HTTP 404 without one is not WeChat Pay's word (ErrTemporary).
	ErrNotFound = errors.New("not found at wechat pay")
	// ErrNumberUsed: the number was used before with different parameters
	// (OUT_TRADE_NO_USED); retrying cannot help. Prepay returns it only once
	// a query found the order under the number unpaid.
	ErrNumberUsed = errors.New("merchant number already used with other parameters")
	// ErrTemporary: SYSTEM_ERROR, FREQUENCY_LIMITED, BANK_ERROR, HTTP 429/5xx,
	// an HTTP 404 without WeChat Pay's error code (a proxy, a gateway or
	// another host answering), or a transport failure or timeout that
	// persisted through every retry. The outcome at WeChat Pay is unknown:
	// query before acting.
	ErrTemporary = errors.New("wechat pay temporarily unavailable")
	// ErrRejected: WeChat Pay refused the request for good (PARAM_ERROR,
	// SIGN_ERROR, NO_AUTH, NOT_ENOUGH, …). Retrying the same request cannot help.
	ErrRejected = errors.New("rejected by wechat pay")
	// ErrUnverified: a response arrived but failed signature verification or
	// could not be parsed; it is not trusted.
	ErrUnverified = errors.New("unverified wechat pay response")

	// Notification verification outcomes (see NotifyVerifier).
	ErrMissingHeaders = errors.New("missing wechatpay signature headers")
	ErrUnknownSerial  = errors.New("unknown wechatpay serial")
	ErrBadSignature   = errors.New("bad wechatpay signature")
	// ErrSignatureProbe: WeChat Pay's own signature probe, a notification
	// or an API answer signed "WECHATPAY/SIGNTEST/…" on purpose to check
	// that the merchant verifies signatures and refuses it. It wraps
	// ErrBadSignature: it is refused as one, and told apart only in the
	// metric and the log (and an answer's request is asked again).
	ErrSignatureProbe = fmt.Errorf("%w: wechat pay's signature probe", ErrBadSignature)
	ErrStaleTimestamp = errors.New("wechatpay timestamp outside the 5 minute window")
	ErrMalformed      = errors.New("malformed notification")
	ErrDecrypt        = errors.New("notification resource does not decrypt")
	// Why a resource did not decrypt; each comes wrapped with ErrDecrypt.
	// ErrDecryptAlgorithm: an algorithm other than AEAD_AES_256_GCM.
	// ErrDecryptFormat: a nonce of the wrong size or a ciphertext that is
	// not base64. ErrDecryptKey: the APIv3 key does not open it (the
	// signature covers nonce, associated data and ciphertext, so the key
	// is what is wrong). Only ErrDecryptKey points at the key; with a
	// previous APIv3 key set (a rotation) it comes with
	// ErrDecryptPreviousKey, as neither key opened it.
	ErrDecryptAlgorithm   = errors.New("unsupported resource algorithm")
	ErrDecryptFormat      = errors.New("resource not well formed")
	ErrDecryptKey         = errors.New("resource does not open with the apiv3 key")
	ErrDecryptPreviousKey = errors.New("nor with the previous apiv3 key")
)

// APIError is WeChat Pay's error answer, kept whole for logs and classified by
// Kind (one of the outcome sentinels above), which Unwrap exposes to errors.Is.
type APIError struct {
	Op         string // prepay, query, close, refund, refund-query
	StatusCode int
	Code       string // WeChat's error code, e.g. PARAM_ERROR
	Message    string
	Attempts   int
	Kind       error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wechatpay %s: %v: http %d %s: %s (attempts %d)", e.Op, e.Kind, e.StatusCode, e.Code, e.Message, e.Attempts)
}

// Unwrap exposes the outcome sentinel.
func (e *APIError) Unwrap() error { return e.Kind }

// kindOfCode maps WeChat's APIv3 error codes to an outcome and whether a retry
// with the same number may succeed.
func kindOfCode(status int, code string) (kind error, retry bool) {
	switch code {
	case "ORDERPAID", "ORDER_PAID":
		return ErrOrderPaid, false
	case "ORDER_CLOSED", "ORDERCLOSED":
		return ErrOrderClosed, false
	case "ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS":
		// Not NOT_FOUND: WeChat Pay's order and refund APIs never answer
		// it (its transfer APIs do), and a 404 {"code":"NOT_FOUND"} from
		// a gateway on the way, read as "no such order", expired orders
		// the payer may have paid (the status fallback below).
		return ErrNotFound, false
	case "OUT_TRADE_NO_USED":
		return ErrNumberUsed, false
	case "SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "BANKERROR":
		return ErrTemporary, true
	case "PARAM_ERROR", "SIGN_ERROR", "INVALID_REQUEST", "NO_AUTH", "NOT_ENOUGH",
		"MCH_NOT_EXISTS", "APPID_MCHID_NOT_MATCH", "RULE_LIMIT", "TRADE_ERROR",
		"USER_ACCOUNT_ABNORMAL", "INVALID_TRANSACTIONID", "OPENID_MISMATCH":
		// OPENID_MISMATCH and INVALID_TRANSACTIONID come with HTTP 500 yet
		// are final: the status fallback below would retry them and leave
		// the order pending for good.
		return ErrRejected, false
	}
	switch {
	case status == 429 || status >= 500:
		return ErrTemporary, true
	case status == 404:
		// Not WeChat Pay's "no such order": it says that with its code
		// in a JSON body (above). A bare 404 (an HTML page, an empty
		// body, another service's JSON) is an egress proxy, a gateway
		// or an api_base naming another host, which never asked WeChat
		// Pay: read as not found, an order the payer may have paid was
		// expired or closed here, and a refund sent again.
		return ErrTemporary, true
	}
	return ErrRejected, false
}

// merchantFix names what the merchant's operator must do about WeChat
// Pay's error code, or "" when the code is about the request or the order.
// These refusals repeat for every order or refund until someone acts, and
// a caller reads them as any refusal (the order closed, the refund
// restored), so the Client raises them as an ALERT.
func merchantFix(code string) string {
	switch code {
	case "SIGN_ERROR":
		return "check the merchant key and its serial, and this host's clock (a request more than 5 minutes off is refused)"
	case "MCH_NOT_EXISTS", "APPID_MCHID_NOT_MATCH":
		return "check payments.wechatpay mch_id and app_id"
	case "NO_AUTH":
		return "the merchant is not authorised for this API; check its products on the merchant platform"
	case "NOT_ENOUGH":
		return "the merchant's balance cannot cover refunds; top it up on the merchant platform"
	case "USER_ACCOUNT_ABNORMAL":
		// Not repeated for other refunds, but WeChat Pay will never make
		// this one: the user was told it failed, and only a person can
		// give their money back.
		return "the payer's WeChat account is closed or abnormal, and WeChat Pay cannot refund to it; refund the user by other means (a bank transfer) and record it"
	}
	return ""
}

// classify decides what an SDK error means. attemptTimedOut says the attempt's
// own deadline (not the caller's) expired.
func classify(err error, attemptTimedOut bool) (kind error, retry bool, apiErr *core.APIError) {
	var ae *core.APIError
	if errors.As(err, &ae) {
		k, r := kindOfCode(ae.StatusCode, ae.Code)
		return k, r, ae
	}
	if attemptTimedOut || errors.Is(err, context.DeadlineExceeded) {
		return ErrTemporary, true, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTemporary, true, nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Transport failure: connection refused, reset, EOF before a response.
		return ErrTemporary, true, nil
	}
	if errors.Is(err, ErrSignatureProbe) {
		// WeChat Pay carried the request out and probed its answer's
		// signature check: the answer is refused, and the same request
		// (the same number) asked again, as after a lost answer.
		return ErrUnverified, true, nil
	}
	if errors.Is(err, ErrUnknownSerial) || errors.Is(err, ErrBadSignature) {
		return ErrUnverified, false, nil
	}
	// Anything else came from validating or decoding a response we received.
	return ErrUnverified, false, nil
}

// RateLimited reports whether err carries WeChat Pay's word that the
// merchant calls it too often (FREQUENCY_LIMITED, or an HTTP 429), after
// the call's retries: a caller that makes many calls (the reconciler's
// sweep) should make fewer for a while.
func RateLimited(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Code == "FREQUENCY_LIMITED" || ae.StatusCode == 429)
}
