package wechatpay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/jsapi"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/native"
	"github.com/wechatpay-apiv3/wechatpay-go/services/refunddomestic"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"github.com/paygate/paygate/logging"
)

// PayMethod selects the prepay API.
type PayMethod string

// Pay methods: JSAPI (mini-program / official account, needs the payer's
// OpenID) and Native (a QR code URL).
const (
	MethodJSAPI  PayMethod = "jsapi"
	MethodNative PayMethod = "native"
)

// Trade states of a WeChat Pay order (Transaction.TradeState).
const (
	TradeSuccess    = "SUCCESS"
	TradeRefund     = "REFUND"
	TradeNotPay     = "NOTPAY"
	TradeClosed     = "CLOSED"
	TradeRevoked    = "REVOKED"
	TradeUserPaying = "USERPAYING"
	TradePayError   = "PAYERROR"
)

// Refund statuses (Refund.Status). Progress is read from here, never from the
// HTTP code.
const (
	RefundProcessing = "PROCESSING"
	RefundSuccess    = "SUCCESS"
	RefundClosed     = "CLOSED"
	RefundAbnormal   = "ABNORMAL"
)

// beijing is the zone of the times paygate sends WeChat Pay (time_expire).
var beijing = time.FixedZone("CST", 8*3600)

// PrepayRequest is one order to open at WeChat Pay. Amounts are integer fen.
type PrepayRequest struct {
	Method      PayMethod
	OutTradeNo  string
	Description string
	Total       int64
	PayerOpenID string // required for JSAPI
	AppID       string // empty: Config.AppID
	ExpireAt    time.Time
	Attach      string
}

// RequestPayment is what a mini-program passes to wx.requestPayment.
type RequestPayment struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// PrepayResult is the outcome of Prepay. Exactly one of these holds: Paid is
// set (WeChat answered ORDERPAID and a query confirmed SUCCESS); or PrepayID
// and Payment are set (JSAPI); or CodeURL is set (Native).
type PrepayResult struct {
	PrepayID string
	Payment  *RequestPayment
	CodeURL  string
	Paid     *Transaction
}

// Transaction is WeChat Pay's view of an order.
type Transaction struct {
	AppID          string
	MchID          string
	OutTradeNo     string
	TransactionID  string
	TradeType      string
	TradeState     string
	TradeStateDesc string
	PayerOpenID    string
	Total          int64
	PayerTotal     int64
	Currency       string
	SuccessTime    time.Time
}

// RefundRequest asks for money back on a paid order. Refund and Total are fen.
type RefundRequest struct {
	OutTradeNo  string
	OutRefundNo string
	Reason      string
	Refund      int64
	Total       int64
	NotifyURL   string // empty: Config.NotifyURL
}

// Refund is WeChat Pay's view of a refund.
type Refund struct {
	RefundID      string
	OutRefundNo   string
	OutTradeNo    string
	TransactionID string
	Status        string
	Refund        int64
	Total         int64
	CreateTime    time.Time
	SuccessTime   time.Time
}

// Client calls WeChat Pay APIv3 for one merchant through the official SDK.
// It is safe for concurrent use.
type Client struct {
	mchID, appID, notifyURL string
	core                    *core.Client
	jsapi                   jsapi.JsapiApiService
	native                  native.NativeApiService
	refunds                 refunddomestic.RefundsApiService
	verifier                *Verifier
	notify                  *NotifyVerifier
	attemptTimeout          time.Duration
	maxAttempts             int
	backoff                 time.Duration
	log                     *slog.Logger
	merchantErrs            *prometheus.CounterVec
	calls                   *prometheus.CounterVec
	now                     func() time.Time
	alerts                  logging.Paced // the ALERT lines, by code (alert)
}

// alertEvery is how often the client writes an ALERT of one code: the
// first at once, the repeats within it left out (each still counted in
// paygate_wechatpay_merchant_errors_total) and told as "suppressed" on the
// next. A merchant fault (a wrong key, a proxy answering) fails every call
// until someone acts, and the sweep calls once per pending order per pass:
// 1,000 pending orders wrote 1,000 identical ALERTs a pass, and as many
// of the sweep's warnings beside them.
const alertEvery = time.Minute

// New builds a Client from cfg, loading and checking every key. The SDK is
// given a signer, a response validator over Verifier and an HTTP client whose
// transport rewrites the host to cfg.APIBase; never the auto-download cipher.
func New(ctx context.Context, cfg Config) (*Client, error) {
	k, err := cfg.load()
	if err != nil {
		return nil, err
	}
	base := cfg.APIBase
	if base == "" {
		base = DefaultAPIBase
	}
	rt, err := NewHostRewriter(base, cfg.Transport)
	if err != nil {
		return nil, err
	}
	nv, err := NewNotifyVerifier(cfg.APIv3Key, k.verifier, cfg.APIv3PreviousKey)
	if err != nil {
		return nil, err
	}
	cc, err := core.NewClient(ctx,
		option.WithMerchantCredential(cfg.MchID, k.mchSerial, k.mchKey),
		option.WithVerifier(k.verifier),
		option.WithHTTPClient(&http.Client{Transport: rt}),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: sdk client: %w", ErrConfig, err)
	}
	c := &Client{
		mchID: cfg.MchID, appID: cfg.AppID, notifyURL: cfg.NotifyURL,
		core:           cc,
		jsapi:          jsapi.JsapiApiService{Client: cc},
		native:         native.NativeApiService{Client: cc},
		refunds:        refunddomestic.RefundsApiService{Client: cc},
		verifier:       k.verifier,
		notify:         nv,
		attemptTimeout: cfg.AttemptTimeout,
		maxAttempts:    cfg.MaxAttempts,
		backoff:        cfg.RetryBackoff,
		log:            cfg.Logger,
		now:            cfg.Now,
		alerts:         logging.Paced{Every: alertEvery},
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.attemptTimeout <= 0 {
		c.attemptTimeout = DefaultAttemptTimeout
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.backoff <= 0 {
		c.backoff = DefaultRetryBackoff
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.merchantErrs, err = registerCounter(cfg.Registerer, prometheus.CounterOpts{
		Name: "paygate_wechatpay_merchant_errors_total",
		Help: "WeChat Pay calls failed for a reason only the merchant's operator can fix, each also logged as an ALERT, by code (SIGN_ERROR: merchant key, serial or this host's clock; MCH_NOT_EXISTS, APPID_MCHID_NOT_MATCH: mch_id, app_id; NO_AUTH: the API not enabled; NOT_ENOUGH: balance too low for refunds; USER_ACCOUNT_ABNORMAL: a refund's payer account closed, to be refunded by other means; bad_signature: an answer that does not verify against the WeChat Pay public key or platform certificates; not_wechat_pay_404: an HTTP 404 without WeChat Pay's error code, from a proxy, a gateway or a host other than WeChat Pay: check api_base and the route to it; not_wechat_pay_answer: a 2xx answer without WeChat Pay's signature headers, or a 4xx but 404 and 429 without its error code, from the same).",
	}, "code"); err != nil {
		return nil, err
	}
	for _, code := range merchantErrorCodes {
		c.merchantErrs.WithLabelValues(code)
	}
	if c.calls, err = registerCounter(cfg.Registerer, prometheus.CounterOpts{
		Name: "paygate_wechatpay_requests_total",
		Help: "WeChat Pay API calls, each after its retries, by op (prepay, query, close, refund, refund-query) and outcome (ok; unavailable: no answer, a timeout, a 5xx, SYSTEM_ERROR or a 404 without WeChat Pay's code to the last attempt; not_found: WeChat Pay's ORDER_NOT_EXIST or RESOURCE_NOT_EXISTS; unverified: an answer that does not verify or decode; refused: any other refusal, an order paid or closed included; canceled: the caller gave up, as at a shutdown; a caller whose own deadline ran out first is unavailable).",
	}, "op", "outcome"); err != nil {
		return nil, err
	}
	return c, nil
}

// merchantErrorCodes are paygate_wechatpay_merchant_errors_total's label
// values, every one's series at 0 from the start so an alert on its
// increase sees the first: the codes merchantFix knows, bad_signature
// for an answer whose signature does not verify, not_wechat_pay_404
// for a 404 that did not come from WeChat Pay, and not_wechat_pay_answer
// for another answer that did not (codeNotWeChatAnswer). Bounded: a code WeChat Pay
// sends otherwise raises no alert.
var merchantErrorCodes = [...]string{"SIGN_ERROR", "MCH_NOT_EXISTS", "APPID_MCHID_NOT_MATCH", "NO_AUTH", "NOT_ENOUGH", "USER_ACCOUNT_ABNORMAL", codeBadSignature, codeNotWeChat404, codeNotWeChatAnswer}

// refundOfKey carries a refund's out_trade_no to doN, whose alert names
// the order as well as the refund (its no).
type refundOfKey struct{}

const codeBadSignature = "bad_signature"

// codeNotWeChat404 labels an HTTP 404 that carries no WeChat Pay code for
// a missing order or refund: an egress proxy, a gateway or another host
// answered, never WeChat Pay.
const codeNotWeChat404 = "not_wechat_pay_404"

// codeNotWeChatAnswer labels a 2xx answer without WeChat Pay's
// Wechatpay-Signature header, or a 4xx (but 404 and 429) without its
// error code or that header: something on the way answered it (an
// egress proxy's or captive portal's page, another host), never WeChat
// Pay, which signs every answer.
const codeNotWeChatAnswer = "not_wechat_pay_answer"

// bodyExcerpt is the start of an answer's body for a log line: enough to
// tell an HTML page or a gateway's JSON apart, never a whole page.
func bodyExcerpt(b string) string {
	const limit = 200
	if len(b) <= limit {
		return b
	}
	return strings.ToValidUTF8(b[:limit], "") + "…"
}

// registerCounter registers a counter of the client's with reg (nil: none);
// a registry that has it (a second Client) shares it.
func registerCounter(reg prometheus.Registerer, opts prometheus.CounterOpts, labels ...string) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(opts, labels)
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("wechatpay metrics: %w", err)
		}
		if c, _ = are.ExistingCollector.(*prometheus.CounterVec); c == nil {
			return nil, fmt.Errorf("wechatpay metrics: %w", err)
		}
	}
	return c, nil
}

// callOutcome is paygate_wechatpay_requests_total's outcome of a call that
// failed as kind.
func callOutcome(kind error) string {
	switch {
	case errors.Is(kind, ErrTemporary):
		return "unavailable"
	case errors.Is(kind, ErrNotFound):
		return "not_found"
	case errors.Is(kind, ErrUnverified):
		return "unverified"
	}
	return "refused"
}

// MchID is the merchant this client acts for.
func (c *Client) MchID() string { return c.mchID }

// AppID is the default appid of prepay requests.
func (c *Client) AppID() string { return c.appID }

// Verifier is the signature verifier shared by responses and notifications.
func (c *Client) Verifier() *Verifier { return c.verifier }

// NotifyVerifier verifies and decrypts notifications for this merchant.
func (c *Client) NotifyVerifier() *NotifyVerifier { return c.notify }

// do runs one operation with bounded retries. Every attempt sends the same
// request (so the same merchant number); only transport failures, timeouts,
// 429/5xx, a 404 without WeChat Pay's code, WeChat's retryable codes and
// an answer carrying its signature probe are retried (classify).
func (c *Client) do(ctx context.Context, op, no string, fn func(ctx context.Context) (*core.APIResult, error)) error {
	return c.doN(ctx, op, no, c.maxAttempts, fn)
}

func (c *Client) doN(ctx context.Context, op, no string, maxAttempts int, fn func(ctx context.Context) (*core.APIResult, error)) error {
	pause := c.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		res, err := fn(actx)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if err == nil {
			c.calls.WithLabelValues(op, "ok").Inc()
			return nil
		}
		if ctx.Err() != nil {
			c.calls.WithLabelValues(op, endedOutcome(ctx)).Inc()
			return fmt.Errorf("wechatpay %s %s: %w: %w", op, no, ErrTemporary, ctx.Err())
		}
		kind, retry, ae := classify(err, timedOut)
		if ae == nil && !retry && (res == nil || res.Response == nil) && !errors.Is(err, ErrUnknownSerial) {
			// Never sent: the SDK refused to build the request.
			kind = ErrRejected
		}
		if !retry || attempt >= maxAttempts {
			c.calls.WithLabelValues(op, callOutcome(kind)).Inc()
			if ae != nil {
				if hint := merchantFix(ae.Code); hint != "" {
					c.merchantErrs.WithLabelValues(ae.Code).Inc()
					attrs := []any{"alert", true, "op", op, "no", no, "code", ae.Code, "http_status", ae.StatusCode, "message", ae.Message}
					if order, ok := ctx.Value(refundOfKey{}).(string); ok {
						attrs = append(attrs, "out_trade_no", order) // a refund's order, for the person who acts
					}
					c.alert(ctx, ae.Code, "ALERT: wechat pay refused the request for a reason only the merchant can fix: "+hint, attrs...)
				}
				if ae.StatusCode == http.StatusNotFound && !errors.Is(kind, ErrNotFound) {
					// Every call meets the same 404 until someone fixes
					// the route: nothing is settled on it (ErrTemporary),
					// and only a person can put it right.
					c.merchantErrs.WithLabelValues(codeNotWeChat404).Inc()
					c.alert(ctx, codeNotWeChat404, "ALERT: an HTTP 404 without a WeChat Pay error code answered the request: not WeChat Pay's answer (it says a missing order with ORDER_NOT_EXIST or RESOURCE_NOT_EXISTS), so the outcome is unknown; check payments.wechatpay.api_base and any egress proxy or gateway on the way to it",
						"alert", true, "op", op, "no", no, "code", ae.Code, "http_status", ae.StatusCode, "body", bodyExcerpt(ae.Body), "attempts", attempt)
				}
				if ae.Code == "" && ae.StatusCode >= 400 && ae.StatusCode < 500 && ae.StatusCode != http.StatusNotFound &&
					ae.StatusCode != http.StatusTooManyRequests && ae.Header.Get(HeaderSignature) == "" {
					// WeChat Pay names every refusal with its code: a 4xx
					// without one or its signature (a gateway wanting
					// credentials, a WAF, another host) is from something
					// on the way, which every call meets until someone
					// fixes the route, as a 2xx page or a bare 404.
					c.merchantErrs.WithLabelValues(codeNotWeChatAnswer).Inc()
					c.alert(ctx, codeNotWeChatAnswer, "ALERT: an answer without WeChat Pay's signature headers or error code refused the request: not WeChat Pay's answer (it names every refusal with its code); check payments.wechatpay.api_base and any egress proxy or gateway on the way to it",
						"alert", true, "op", op, "no", no, "code", "", "http_status", ae.StatusCode, "body", bodyExcerpt(ae.Body), "attempts", attempt)
				}
				return &APIError{Op: op, StatusCode: ae.StatusCode, Code: ae.Code, Message: ae.Message, Attempts: attempt, Kind: kind}
			}
			if errors.Is(err, ErrSignatureProbe) {
				c.log.WarnContext(ctx, "wechat pay's answer carried its signature probe, refused as it expects; the outcome is unknown",
					"op", op, "no", no, "attempts", attempt)
			} else if errors.Is(err, ErrUnknownSerial) || errors.Is(err, ErrBadSignature) {
				c.merchantErrs.WithLabelValues(codeBadSignature).Inc()
				c.alert(ctx, codeBadSignature, "ALERT: wechat pay's answer failed signature verification and is not trusted; check the wechat pay public key or platform certificates",
					"alert", true, "op", op, "no", no, "code", "", "err", err)
			} else if res != nil && res.Response != nil && res.Response.Header.Get(HeaderSignature) == "" {
				// WeChat Pay signs every answer: one without its
				// signature is from something on the way (a proxy's or
				// a captive portal's page, another host), which every
				// call meets until someone fixes the route, as a 404
				// without WeChat Pay's code.
				c.merchantErrs.WithLabelValues(codeNotWeChatAnswer).Inc()
				c.alert(ctx, codeNotWeChatAnswer, "ALERT: an answer without WeChat Pay's signature headers answered the request: not WeChat Pay's answer (it signs every one), so the outcome is unknown; check payments.wechatpay.api_base and any egress proxy or gateway on the way to it",
					"alert", true, "op", op, "no", no, "code", "", "http_status", res.Response.StatusCode,
					"content_type", LogValue(res.Response.Header.Get("Content-Type")), "attempts", attempt)
			}
			return fmt.Errorf("wechatpay %s %s: %w (attempts %d): %w", op, no, kind, attempt, err)
		}
		c.log.WarnContext(ctx, "wechatpay retrying with the same number", "op", op, "no", no, "attempt", attempt, "err", err)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			c.calls.WithLabelValues(op, endedOutcome(ctx)).Inc()
			return fmt.Errorf("wechatpay %s %s: %w: %w", op, no, ErrTemporary, ctx.Err())
		case <-t.C:
		}
		pause *= 2
	}
}

// alert logs an ALERT of code, paced by alertEvery (alerts), but for
// USER_ACCOUNT_ABNORMAL: each of those names the one refund a person must
// make by other means, and is never repeated for another.
func (c *Client) alert(ctx context.Context, code, msg string, attrs ...any) {
	if code == "USER_ACCOUNT_ABNORMAL" {
		c.log.ErrorContext(ctx, msg, attrs...)
		return
	}
	c.alerts.Log(ctx, c.log, slog.LevelError, code, c.now(), msg, attrs...)
}

// endedOutcome is paygate_wechatpay_requests_total's outcome of a call
// whose caller's context ended before WeChat Pay answered: canceled when
// the caller gave up (a shutdown, a request gone), unavailable when its
// deadline ran out. The payments service bounds its calls below what the
// attempts and pauses take (the prepay's 15 s, a query's 10 s, against
// three 5 s attempts), so a WeChat Pay that answers nothing ends each such
// call at the caller's deadline: counted canceled, a WeChat Pay that hung
// on every call never moved the unavailable series an operator alerts on.
func endedOutcome(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "unavailable"
	}
	return "canceled"
}

// Prepay opens the order at WeChat Pay. A retry after a timeout reuses
// req.OutTradeNo, which WeChat treats as the same order. ORDERPAID and
// OUT_TRADE_NO_USED (numberUsed) are resolved by a query: the result's Paid
// is set when the order is paid. An order WeChat Pay may hold is never
// ErrRejected: a refusal of the retry after an attempt whose outcome is
// unknown, or of the query after ORDERPAID, is ErrTemporary; so is a 200
// without the prepay_id (JSAPI) or code_url (Native), and a failure to sign
// the JSAPI payment parameters after it.
func (c *Client) Prepay(ctx context.Context, req PrepayRequest) (*PrepayResult, error) {
	if err := ValidOutTradeNo(req.OutTradeNo); err != nil {
		return nil, err
	}
	if req.Total <= 0 {
		return nil, fmt.Errorf("wechatpay prepay %s: %w: amount %d fen", req.OutTradeNo, ErrRejected, req.Total)
	}
	appID := req.AppID
	if appID == "" {
		appID = c.appID
	}
	var expire *time.Time
	if !req.ExpireAt.IsZero() {
		// In Beijing time, the form WeChat Pay documents
		// (2006-01-02T15:04:05+08:00): the SDK formats the time in its
		// own zone, and an order's deadline read back from the store in
		// UTC went as "...Z", and the same order's prepay sent again from
		// a record in another zone as another text under its number.
		t := req.ExpireAt.In(beijing)
		expire = &t
	}
	var attach *string
	if req.Attach != "" {
		attach = core.String(req.Attach)
	}
	out := &PrepayResult{}
	var err error
	tries := 0 // attempts sent
	switch req.Method {
	case MethodJSAPI, "":
		if req.PayerOpenID == "" {
			return nil, fmt.Errorf("wechatpay prepay %s: %w: jsapi needs the payer openid", req.OutTradeNo, ErrRejected)
		}
		r := jsapi.PrepayRequest{
			Appid: core.String(appID), Mchid: core.String(c.mchID),
			Description: core.String(req.Description), OutTradeNo: core.String(req.OutTradeNo),
			TimeExpire: expire, Attach: attach, NotifyUrl: core.String(c.notifyURL),
			Amount: &jsapi.Amount{Total: core.Int64(req.Total), Currency: core.String("CNY")},
			Payer:  &jsapi.Payer{Openid: core.String(req.PayerOpenID)},
		}
		// Prepay, not the SDK's PrepayWithRequestPayment: that one
		// dereferences a missing prepay_id (a panic on the caller's
		// goroutine) and answers a signing failure after WeChat Pay opened
		// the order with no APIResult, which do reads as never sent.
		err = c.do(ctx, "prepay", req.OutTradeNo, func(ctx context.Context) (*core.APIResult, error) {
			tries++
			resp, res, err := c.jsapi.Prepay(ctx, r)
			if err != nil {
				return res, err
			}
			if resp != nil {
				out.PrepayID = deref(resp.PrepayId)
			}
			return res, nil
		})
		if err == nil && out.PrepayID == "" {
			return nil, stillUnknown("prepay", req.OutTradeNo, "answered 200", errors.New("without a prepay_id"))
		}
		if err == nil {
			p, perr := c.RequestPayment(ctx, appID, out.PrepayID)
			if perr != nil {
				return nil, stillUnknown("prepay", req.OutTradeNo, "opened the order; signing its payment parameters", perr)
			}
			out.Payment = p
		}
	case MethodNative:
		r := native.PrepayRequest{
			Appid: core.String(appID), Mchid: core.String(c.mchID),
			Description: core.String(req.Description), OutTradeNo: core.String(req.OutTradeNo),
			TimeExpire: expire, Attach: attach, NotifyUrl: core.String(c.notifyURL),
			Amount: &native.Amount{Total: core.Int64(req.Total), Currency: core.String("CNY")},
		}
		err = c.do(ctx, "prepay", req.OutTradeNo, func(ctx context.Context) (*core.APIResult, error) {
			tries++
			resp, res, err := c.native.Prepay(ctx, r)
			if err != nil {
				return res, err
			}
			if resp != nil {
				out.CodeURL = deref(resp.CodeUrl)
			}
			return res, nil
		})
		if err == nil && out.CodeURL == "" {
			// The order may be open and the payer has no QR code to pay
			// it: not a payable order, and not a refusal either.
			return nil, stillUnknown("prepay", req.OutTradeNo, "answered 200", errors.New("without a code_url"))
		}
	default:
		return nil, fmt.Errorf("wechatpay prepay %s: %w: pay method %q", req.OutTradeNo, ErrRejected, req.Method)
	}
	if errors.Is(err, ErrOrderPaid) {
		tx, qerr := c.QueryOrder(ctx, req.OutTradeNo)
		if qerr != nil {
			// The order exists and may be paid: never "refused".
			return nil, stillUnknown("prepay", req.OutTradeNo, "answered ORDERPAID; the query", qerr)
		}
		if tx.TradeState != TradeSuccess && tx.TradeState != TradeRefund {
			return nil, fmt.Errorf("wechatpay prepay %s answered ORDERPAID but the order is %s: %w", req.OutTradeNo, tx.TradeState, err)
		}
		c.log.InfoContext(ctx, "wechatpay prepay found the order already paid", "out_trade_no", req.OutTradeNo)
		return &PrepayResult{Paid: tx}, nil
	}
	if errors.Is(err, ErrNumberUsed) {
		return c.numberUsed(ctx, req.OutTradeNo, err)
	}
	if tries > 1 && errors.Is(err, ErrRejected) {
		// do retries only an attempt whose outcome is unknown: that one
		// may have opened the order, whatever the last one was told.
		return nil, stillUnknown("prepay", req.OutTradeNo, fmt.Sprintf("an earlier attempt's outcome is unknown; attempt %d", tries), err)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// numberUsed resolves a prepay WeChat Pay answered OUT_TRADE_NO_USED (err):
// it holds an order under the number with other parameters, which may be
// paid, so the order is queried by its number. Paid (or refunded since), it
// is the result's Paid; being paid (USERPAYING), or not told (the query
// failed, or found no order a moment after WeChat Pay said it holds one:
// its APIs are eventually consistent), the outcome is unknown,
// ErrTemporary; unpaid (NOTPAY, CLOSED, ...), err stands: no order with
// these parameters can be opened under the number.
func (c *Client) numberUsed(ctx context.Context, no string, err error) (*PrepayResult, error) {
	tx, qerr := c.QueryOrder(ctx, no)
	switch {
	case qerr != nil:
		return nil, stillUnknown("prepay", no, "answered OUT_TRADE_NO_USED; the query", qerr)
	case tx.TradeState == TradeSuccess || tx.TradeState == TradeRefund:
		c.log.InfoContext(ctx, "wechatpay prepay answered OUT_TRADE_NO_USED and the order under the number is paid", "out_trade_no", no)
		return &PrepayResult{Paid: tx}, nil
	case tx.TradeState == TradeUserPaying:
		return nil, stillUnknown("prepay", no, "answered OUT_TRADE_NO_USED; the query", fmt.Errorf("the order is %s", tx.TradeState))
	}
	return nil, fmt.Errorf("wechatpay prepay %s answered OUT_TRADE_NO_USED and the order under the number is %s: %w", no, tx.TradeState, err)
}

// RequestPayment signs fresh wx.requestPayment parameters for an existing
// prepay_id with the merchant key, locally: a repeated create_order hands the
// payer the same order without another round trip.
func (c *Client) RequestPayment(ctx context.Context, appID, prepayID string) (*RequestPayment, error) {
	if appID == "" {
		appID = c.appID
	}
	if prepayID == "" {
		return nil, fmt.Errorf("wechatpay request payment: %w: no prepay_id", ErrRejected)
	}
	nonce, err := utils.GenerateNonce()
	if err != nil {
		return nil, fmt.Errorf("wechatpay request payment: nonce: %w", err)
	}
	p := &RequestPayment{
		AppID: appID, TimeStamp: strconv.FormatInt(time.Now().Unix(), 10), NonceStr: nonce,
		Package: "prepay_id=" + prepayID, SignType: "RSA",
	}
	sig, err := c.core.Sign(ctx, p.AppID+"\n"+p.TimeStamp+"\n"+p.NonceStr+"\n"+p.Package+"\n")
	if err != nil {
		return nil, fmt.Errorf("wechatpay request payment: sign: %w", err)
	}
	p.PaySign = sig.Signature
	return p, nil
}

// QueryOrder asks WeChat Pay for the order's state by out_trade_no. An
// answer that names another order (or none) is ErrUnverified: WeChat Pay's
// signature covers the answer, not the request it answers, so one of
// another order (a route that replays or caches answers) verifies, and
// taken for this order's, an unpaid order was recorded paid with another
// order's transaction.
func (c *Client) QueryOrder(ctx context.Context, outTradeNo string) (*Transaction, error) {
	if err := ValidOutTradeNo(outTradeNo); err != nil {
		return nil, err
	}
	var tx *payments.Transaction
	err := c.do(ctx, "query", outTradeNo, func(ctx context.Context) (*core.APIResult, error) {
		t, res, err := c.jsapi.QueryOrderByOutTradeNo(ctx, jsapi.QueryOrderByOutTradeNoRequest{
			OutTradeNo: core.String(outTradeNo), Mchid: core.String(c.mchID),
		})
		tx = t
		return res, err
	})
	if err != nil {
		return nil, err
	}
	out := transactionFrom(tx)
	if out.OutTradeNo != outTradeNo {
		return nil, fmt.Errorf("wechatpay query %s: %w: the answer is of order %.40q", outTradeNo, ErrUnverified, out.OutTradeNo)
	}
	return out, nil
}

// CloseOrder closes an unpaid order at WeChat Pay. Closing a closed order
// succeeds; a paid one yields ErrOrderPaid (the caller marks it paid).
func (c *Client) CloseOrder(ctx context.Context, outTradeNo string) error {
	if err := ValidOutTradeNo(outTradeNo); err != nil {
		return err
	}
	err := c.do(ctx, "close", outTradeNo, func(ctx context.Context) (*core.APIResult, error) {
		return c.jsapi.CloseOrder(ctx, jsapi.CloseOrderRequest{
			OutTradeNo: core.String(outTradeNo), Mchid: core.String(c.mchID),
		})
	})
	if errors.Is(err, ErrOrderClosed) {
		return nil
	}
	return err
}

// CreateRefund asks WeChat Pay to refund. A create that times out or answers
// 429/5xx is followed by a query of the same out_refund_no and, if WeChat
// has no such refund or the query could not tell (it timed out, 5xx), sent
// again with the same number, which WeChat Pay refunds at most once: never
// a new one. Up to MaxAttempts rounds, each one attempt; after the last the
// error is the last create's: ErrTemporary, or ErrUnverified when WeChat
// Pay answered it with its signature probe, an unknown outcome too. The
// result's Status tells the progress. Once a create's outcome is unknown,
// the error stays one of unknown outcome whatever fails after (the query
// refused, the create sent again refused: ErrTemporary): only a refusal of
// the first create, which WeChat Pay surely did not carry out, is
// ErrRejected. An answer that names another refund is ErrUnverified, its
// outcome unknown, as QueryRefund's of another refund is: applied as this one's, a replayed SUCCESS of another order's refund
// sent the order to review, and of an earlier refund of the same order
// told the user a refund never sent had succeeded.
func (c *Client) CreateRefund(ctx context.Context, req RefundRequest) (*Refund, error) {
	if err := ValidOutRefundNo(req.OutRefundNo); err != nil {
		return nil, err
	}
	if err := ValidOutTradeNo(req.OutTradeNo); err != nil {
		return nil, err
	}
	if req.Refund <= 0 || req.Refund > req.Total {
		return nil, fmt.Errorf("wechatpay refund %s: %w: refund %d of total %d fen", req.OutRefundNo, ErrRejected, req.Refund, req.Total)
	}
	notify := req.NotifyURL
	if notify == "" {
		notify = c.notifyURL
	}
	r := refunddomestic.CreateRequest{
		OutTradeNo: core.String(req.OutTradeNo), OutRefundNo: core.String(req.OutRefundNo),
		NotifyUrl: core.String(notify),
		Amount: &refunddomestic.AmountReq{
			Refund: core.Int64(req.Refund), Total: core.Int64(req.Total), Currency: core.String("CNY"),
		},
	}
	if req.Reason != "" {
		r.Reason = core.String(req.Reason)
	}
	pause := c.backoff
	var lastErr error
	for round := 1; round <= c.maxAttempts; round++ {
		var out *refunddomestic.Refund
		// One attempt per round: the retry decision needs a query in between.
		err := c.doN(context.WithValue(ctx, refundOfKey{}, req.OutTradeNo), "refund", req.OutRefundNo, 1, func(ctx context.Context) (*core.APIResult, error) {
			resp, res, err := c.refunds.Create(ctx, r)
			out = resp
			return res, err
		})
		if err == nil {
			got := refundFrom(out)
			if got.OutRefundNo != req.OutRefundNo {
				// Not WeChat Pay's word about this refund (QueryRefund):
				// its outcome is unknown.
				return nil, fmt.Errorf("wechatpay refund %s: %w: the answer is of refund %.40q", req.OutRefundNo, ErrUnverified, got.OutRefundNo)
			}
			return got, nil
		}
		if lastErr != nil && !errors.Is(err, ErrTemporary) && !errors.Is(err, ErrSignatureProbe) {
			// An earlier round's refund may be with WeChat Pay: this
			// round's refusal says nothing of it.
			return nil, stillUnknown("refund", req.OutRefundNo, fmt.Sprintf("an earlier create's outcome is unknown (%v); sent again", lastErr), err)
		}
		if !errors.Is(err, ErrTemporary) && !errors.Is(err, ErrSignatureProbe) || ctx.Err() != nil {
			return nil, err
		}
		lastErr = err
		c.log.WarnContext(ctx, "wechatpay refund outcome unknown; querying the same number", "out_refund_no", req.OutRefundNo, "round", round, "err", err)
		got, qerr := c.QueryRefund(ctx, req.OutRefundNo)
		if qerr == nil {
			return got, nil
		}
		if !errors.Is(qerr, ErrNotFound) && !errors.Is(qerr, ErrTemporary) {
			// A query refused (NO_AUTH, an unverifiable answer) cannot
			// tell whether the create took effect.
			return nil, stillUnknown("refund", req.OutRefundNo, fmt.Sprintf("the create's outcome is unknown (%v); the query", err), qerr)
		}
		if round == c.maxAttempts {
			break // no round left to send it again: no pause before the answer
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wechatpay refund %s: %w: %w", req.OutRefundNo, ErrTemporary, ctx.Err())
		case <-t.C:
		}
		pause *= 2
	}
	return nil, lastErr
}

// stillUnknown is the error of a create (op, under merchant number no) that
// WeChat Pay may have carried out (an attempt's outcome was unknown, or it
// answered ORDERPAID) when what came after, the request why names, failed
// with err and could not tell. It wraps ErrTemporary alone: the caller asks
// again by the same number before acting. err's ErrRejected would tell it
// WeChat Pay did nothing, and it would undo the order or the refund while
// WeChat Pay holds it.
func stillUnknown(op, no, why string, err error) error {
	return fmt.Errorf("wechatpay %s %s: %w: %s: %v", op, no, ErrTemporary, why, err)
}

// QueryRefund asks WeChat Pay for a refund's progress by out_refund_no. An
// answer that names another refund (or none) is ErrUnverified, as
// QueryOrder's of another order is.
func (c *Client) QueryRefund(ctx context.Context, outRefundNo string) (*Refund, error) {
	if err := ValidOutRefundNo(outRefundNo); err != nil {
		return nil, err
	}
	var out *refunddomestic.Refund
	err := c.do(ctx, "refund-query", outRefundNo, func(ctx context.Context) (*core.APIResult, error) {
		r, res, err := c.refunds.QueryByOutRefundNo(ctx, refunddomestic.QueryByOutRefundNoRequest{OutRefundNo: core.String(outRefundNo)})
		out = r
		return res, err
	})
	if err != nil {
		return nil, err
	}
	r := refundFrom(out)
	if r.OutRefundNo != outRefundNo {
		return nil, fmt.Errorf("wechatpay refund-query %s: %w: the answer is of refund %.40q", outRefundNo, ErrUnverified, r.OutRefundNo)
	}
	return r, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func transactionFrom(t *payments.Transaction) *Transaction {
	if t == nil {
		return &Transaction{}
	}
	out := &Transaction{
		AppID: deref(t.Appid), MchID: deref(t.Mchid), OutTradeNo: deref(t.OutTradeNo),
		TransactionID: deref(t.TransactionId), TradeType: deref(t.TradeType),
		TradeState: deref(t.TradeState), TradeStateDesc: deref(t.TradeStateDesc),
	}
	if t.Payer != nil {
		out.PayerOpenID = deref(t.Payer.Openid)
	}
	if t.Amount != nil {
		out.Total = deref(t.Amount.Total)
		out.PayerTotal = deref(t.Amount.PayerTotal)
		out.Currency = deref(t.Amount.Currency)
	}
	if s := deref(t.SuccessTime); s != "" {
		if ts, err := time.Parse(time.RFC3339, s); err == nil {
			out.SuccessTime = ts
		}
	}
	return out
}

func refundFrom(r *refunddomestic.Refund) *Refund {
	if r == nil {
		return &Refund{}
	}
	out := &Refund{
		RefundID: deref(r.RefundId), OutRefundNo: deref(r.OutRefundNo), OutTradeNo: deref(r.OutTradeNo),
		TransactionID: deref(r.TransactionId), CreateTime: deref(r.CreateTime), SuccessTime: deref(r.SuccessTime),
	}
	if r.Status != nil {
		out.Status = string(*r.Status)
	}
	if r.Amount != nil {
		out.Refund = deref(r.Amount.Refund)
		out.Total = deref(r.Amount.Total)
	}
	return out
}
