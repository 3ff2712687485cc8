package wxsim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
)

// cst is China Standard Time, in which WeChat Pay writes its timestamps.
var cst = time.FixedZone("CST", 8*3600)

// order is one simulated transaction.
type order struct {
	tx          Transaction
	method      string // jsapi | native
	description string
	notifyURL   string
	prepayID    string
	codeURL     string
	expire      time.Time // when the payer can no longer pay
	timeExpire  time.Time // the time_expire first sent (zero: none)
	refunded    int64
	// lastRefund is when the order's last refund was accepted
	// (Options.RefundInterval).
	lastRefund time.Time
}

// refund is one simulated refund.
type refund struct {
	r         Refund
	notifyURL string
}

// Amount is a transaction's amount object.
type Amount struct {
	Total         int64  `json:"total"`
	PayerTotal    int64  `json:"payer_total,omitempty"`
	Currency      string `json:"currency,omitempty"`
	PayerCurrency string `json:"payer_currency,omitempty"`
}

// Payer is a transaction's payer object.
type Payer struct {
	OpenID string `json:"openid,omitempty"`
}

// Transaction is WeChat Pay's order object, as the query API returns it and
// as TRANSACTION.* notifications carry it (encrypted).
type Transaction struct {
	AppID          string `json:"appid"`
	MchID          string `json:"mchid"`
	OutTradeNo     string `json:"out_trade_no"`
	TransactionID  string `json:"transaction_id,omitempty"`
	TradeType      string `json:"trade_type,omitempty"`
	TradeState     string `json:"trade_state"`
	TradeStateDesc string `json:"trade_state_desc"`
	BankType       string `json:"bank_type,omitempty"`
	Attach         string `json:"attach"`
	SuccessTime    string `json:"success_time,omitempty"`
	Payer          *Payer `json:"payer,omitempty"`
	Amount         Amount `json:"amount"`
}

// RefundAmount is a refund's amount object.
type RefundAmount struct {
	Total            int64  `json:"total"`
	Refund           int64  `json:"refund"`
	From             []any  `json:"from"`
	PayerTotal       int64  `json:"payer_total"`
	PayerRefund      int64  `json:"payer_refund"`
	SettlementRefund int64  `json:"settlement_refund"`
	SettlementTotal  int64  `json:"settlement_total"`
	DiscountRefund   int64  `json:"discount_refund"`
	Currency         string `json:"currency"`
}

// Refund is WeChat Pay's refund object as the refund APIs return it.
type Refund struct {
	RefundID            string       `json:"refund_id"`
	OutRefundNo         string       `json:"out_refund_no"`
	TransactionID       string       `json:"transaction_id"`
	OutTradeNo          string       `json:"out_trade_no"`
	Channel             string       `json:"channel"`
	UserReceivedAccount string       `json:"user_received_account"`
	SuccessTime         string       `json:"success_time,omitempty"`
	CreateTime          string       `json:"create_time"`
	Status              string       `json:"status"`
	FundsAccount        string       `json:"funds_account"`
	Amount              RefundAmount `json:"amount"`
	PromotionDetail     []any        `json:"promotion_detail"`
}

// RequestLog records one API request as the simulator saw it.
type RequestLog struct {
	Op          string // prepay-jsapi, prepay-native, query, close, refund, refund-query, unknown
	Method      string
	Path        string
	OutTradeNo  string
	OutRefundNo string
	Status      int
	Code        string
	Fault       FaultKind
}

type apiError struct {
	status int
	code   string
	msg    string
}

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// response is what an operation produced, before signing.
type response struct {
	status int
	body   []byte
}

// ServeHTTP implements the APIv3 endpoints paygate uses.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	op, key := route(r)
	entry := RequestLog{Op: op, Method: r.Method, Path: r.URL.Path, OutTradeNo: key}
	if op == "refund-query" {
		entry.OutTradeNo, entry.OutRefundNo = "", key
	}
	if op == "refund" || strings.HasPrefix(op, "prepay") {
		var nums struct {
			OutTradeNo  string `json:"out_trade_no"`
			OutRefundNo string `json:"out_refund_no"`
		}
		_ = json.Unmarshal(body, &nums)
		entry.OutTradeNo, entry.OutRefundNo = nums.OutTradeNo, nums.OutRefundNo
	}
	var resp response
	if aerr := s.verifyRequest(r, body); aerr != nil {
		resp = errResponse(aerr)
	} else if f, ok := s.takeFault(op); ok {
		entry.Fault = f
		switch f {
		case FaultTimeout:
			// Processed, then the answer is lost: the client times out.
			res := s.dispatch(op, key, r, body, &entry)
			entry.Status, entry.Code = res.status, codeOf(res.body)
			s.logRequest(entry)
			select {
			case <-r.Context().Done():
			case <-s.closed:
			}
			return
		case FaultHTTP500:
			resp = response{status: http.StatusInternalServerError, body: []byte("<html><body>500 Internal Server Error</body></html>")}
		case FaultSystemError:
			resp = errResponse(errf(http.StatusInternalServerError, "SYSTEM_ERROR", "系统错误"))
		case FaultFrequencyLimited:
			resp = errResponse(errf(http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率超限"))
		case FaultOrderPaid, FaultNumberUsedPaid:
			// The payer paid in between: the order exists and is paid.
			if strings.HasPrefix(op, "prepay") {
				_ = s.dispatch(op, key, r, body, &entry)
				key = entry.OutTradeNo
			}
			entry.OutTradeNo = key
			if _, err := s.markPaid(key); err != nil {
				s.log.Info("wxsim: "+f.String()+" fault on an order that cannot be paid", "out_trade_no", key, "err", err)
			}
			if f == FaultNumberUsedPaid {
				resp = errResponse(errf(http.StatusForbidden, "OUT_TRADE_NO_USED", "商户订单号重复"))
			} else {
				resp = errResponse(errf(http.StatusBadRequest, "ORDERPAID", "该订单已支付"))
			}
		case FaultNotExist:
			code := "ORDER_NOT_EXIST"
			if strings.HasPrefix(op, "refund") {
				code = "RESOURCE_NOT_EXISTS"
			}
			resp = errResponse(errf(http.StatusNotFound, code, "not found"))
		case FaultOrderPaidUnseen:
			resp = errResponse(errf(http.StatusBadRequest, "ORDERPAID", "该订单已支付"))
		case FaultNotEnough:
			resp = errResponse(errf(http.StatusForbidden, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起"))
		case FaultUserAccountAbnormal:
			resp = errResponse(errf(http.StatusForbidden, "USER_ACCOUNT_ABNORMAL", "退款请求失败"))
		case FaultBadResponseSignature:
			resp = s.dispatch(op, key, r, body, &entry)
			entry.Status, entry.Code = resp.status, codeOf(resp.body)
			s.logRequest(entry)
			h := signWith(s.keys.MerchantKey, s.keys.PublicKeyID, resp.body, s.now())
			writeSigned(w, h, resp)
			return
		case FaultNotWeChatPay:
			entry.Status = http.StatusOK
			s.logRequest(entry)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "<html><head><title>Access notice</title></head><body>This network requires sign-in.</body></html>")
			return
		case FaultSignatureProbe:
			resp = s.dispatch(op, key, r, body, &entry)
			entry.Status, entry.Code = resp.status, codeOf(resp.body)
			s.logRequest(entry)
			key2, serial := s.signer(r.Header.Get("Wechatpay-Serial"))
			h := signWith(key2, serial, resp.body, s.now())
			h.Set("Wechatpay-Signature", wechatpay.SignatureProbePrefix+randomHex(16))
			writeSigned(w, h, resp)
			return
		}
	} else {
		resp = s.dispatch(op, key, r, body, &entry)
	}
	entry.Status, entry.Code = resp.status, codeOf(resp.body)
	s.logRequest(entry)
	key2, serial := s.signer(r.Header.Get("Wechatpay-Serial"))
	writeSigned(w, signWith(key2, serial, resp.body, s.now()), resp)
}

func writeSigned(w http.ResponseWriter, h http.Header, resp response) {
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Request-Id", "sim-"+randomHex(8))
	if len(resp.body) > 0 {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func codeOf(body []byte) string {
	var e struct {
		Code string `json:"code"`
	}
	if len(body) > 0 && body[0] == '{' {
		_ = json.Unmarshal(body, &e)
	}
	return e.Code
}

func errResponse(e *apiError) response {
	b, _ := json.Marshal(map[string]string{"code": e.code, "message": e.msg})
	return response{status: e.status, body: b}
}

func okJSON(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return errResponse(errf(500, "SYSTEM_ERROR", "encode: %v", err))
	}
	return response{status: status, body: b}
}

func (s *Server) logRequest(e RequestLog) {
	s.mu.Lock()
	s.requests = append(s.requests, e)
	s.mu.Unlock()
}

// route names the operation and its merchant number from the path.
func route(r *http.Request) (op, key string) {
	p := r.URL.Path
	const tx = "/v3/pay/transactions/"
	const rf = "/v3/refund/domestic/refunds"
	switch {
	case r.Method == http.MethodPost && p == tx+"jsapi":
		return "prepay-jsapi", ""
	case r.Method == http.MethodPost && p == tx+"native":
		return "prepay-native", ""
	case strings.HasPrefix(p, tx+"out-trade-no/"):
		rest := strings.TrimPrefix(p, tx+"out-trade-no/")
		if r.Method == http.MethodPost && strings.HasSuffix(rest, "/close") {
			return "close", strings.TrimSuffix(rest, "/close")
		}
		if r.Method == http.MethodGet && !strings.Contains(rest, "/") {
			return "query", rest
		}
	case r.Method == http.MethodPost && p == rf:
		return "refund", ""
	case r.Method == http.MethodGet && strings.HasPrefix(p, rf+"/"):
		return "refund-query", strings.TrimPrefix(p, rf+"/")
	}
	return "unknown", ""
}

// verifyRequest checks the merchant's Authorization header the way WeChat Pay
// does: scheme, mchid, certificate serial, timestamp window, and the signature
// over method, request URI, timestamp, nonce and the raw body.
func (s *Server) verifyRequest(r *http.Request, body []byte) *apiError {
	const scheme = "WECHATPAY2-SHA256-RSA2048 "
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, scheme) {
		return errf(401, "SIGN_ERROR", "Authorization 头缺失或认证类型不正确")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, scheme), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errf(401, "SIGN_ERROR", "Authorization 格式错误")
		}
		fields[k] = strings.Trim(v, `"`)
	}
	if fields["mchid"] != s.opts.MchID {
		return errf(401, "SIGN_ERROR", "商户号 %q 与签名不符", fields["mchid"])
	}
	pub, ok := s.merchantKey(fields["serial_no"])
	if !ok {
		return errf(401, "SIGN_ERROR", "商户证书序列号 %q 有误", fields["serial_no"])
	}
	ts, err := strconv.ParseInt(fields["timestamp"], 10, 64)
	if err != nil {
		return errf(401, "SIGN_ERROR", "时间戳格式错误")
	}
	if d := s.now().Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errf(401, "SIGN_ERROR", "时间戳超出允许范围")
	}
	if fields["nonce_str"] == "" || fields["signature"] == "" {
		return errf(401, "SIGN_ERROR", "签名字段缺失")
	}
	msg := r.Method + "\n" + r.URL.RequestURI() + "\n" + fields["timestamp"] + "\n" + fields["nonce_str"] + "\n" + string(body) + "\n"
	sig, err := base64.StdEncoding.DecodeString(fields["signature"])
	if err != nil {
		return errf(401, "SIGN_ERROR", "签名不是 base64")
	}
	sum := sha256.Sum256([]byte(msg))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return errf(401, "SIGN_ERROR", "签名错误")
	}
	return nil
}

func (s *Server) dispatch(op, key string, r *http.Request, body []byte, entry *RequestLog) response {
	switch op {
	case "prepay-jsapi":
		return s.prepay("jsapi", body, entry)
	case "prepay-native":
		return s.prepay("native", body, entry)
	case "query":
		entry.OutTradeNo = key
		return s.query(key, r.URL.Query())
	case "close":
		entry.OutTradeNo = key
		return s.closeOrder(key, body)
	case "refund":
		return s.createRefund(body, entry)
	case "refund-query":
		entry.OutRefundNo = key
		return s.queryRefund(key)
	}
	// As WeChat Pay answers a path it does not serve: 404, an empty body,
	// no error code (a code here would be one its APIs never send).
	return response{status: http.StatusNotFound}
}

// minPayWindow is the shortest time WeChat Pay leaves a payer: a
// time_expire earlier than this after the order is placed is raised to it
// (its JSAPI and Native prepay documents).
const minPayWindow = time.Minute

type prepayBody struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire"`
	Attach      string `json:"attach"`
	NotifyURL   string `json:"notify_url"`
	Amount      struct {
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Payer *struct {
		OpenID string `json:"openid"`
	} `json:"payer"`
}

func (s *Server) prepay(method string, body []byte, entry *RequestLog) response {
	var b prepayBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		return errResponse(errf(400, "PARAM_ERROR", "请求体不是合法的 JSON: %v", err))
	}
	entry.OutTradeNo = b.OutTradeNo
	if aerr := s.checkPrepay(method, &b); aerr != nil {
		return errResponse(aerr)
	}
	payer := ""
	if b.Payer != nil {
		payer = b.Payer.OpenID
	}
	var expire time.Time
	if b.TimeExpire != "" {
		t, err := time.Parse(time.RFC3339, b.TimeExpire)
		if err != nil {
			return errResponse(errf(400, "PARAM_ERROR", "time_expire 格式错误"))
		}
		expire = t
	}
	s.mu.Lock()
	o, exists := s.orders[b.OutTradeNo]
	if exists {
		switch o.tx.TradeState {
		case "SUCCESS", "REFUND":
			s.mu.Unlock()
			return errResponse(errf(400, "ORDERPAID", "该订单已支付"))
		case "CLOSED":
			s.mu.Unlock()
			return errResponse(errf(400, "ORDER_CLOSED", "订单已关闭"))
		}
		same := o.method == method && o.tx.AppID == b.AppID && o.description == b.Description &&
			o.tx.Amount.Total == b.Amount.Total && o.notifyURL == b.NotifyURL && o.timeExpire.Equal(expire) &&
			(method != "jsapi" || o.tx.Payer.OpenID == payer)
		if !same {
			s.mu.Unlock()
			return errResponse(errf(403, "OUT_TRADE_NO_USED", "商户订单号重复"))
		}
		s.prepays[b.OutTradeNo]++
		resp := prepayAnswer(o)
		s.mu.Unlock()
		return resp
	}
	requested := expire
	if first := s.now().Add(minPayWindow); !expire.IsZero() && expire.Before(first) {
		// As WeChat Pay documents: a time_expire earlier than a minute
		// after the order is placed is raised to that minute.
		expire = first
	}
	o = &order{
		method: method, description: b.Description, notifyURL: b.NotifyURL, expire: expire, timeExpire: requested,
		tx: Transaction{
			AppID: b.AppID, MchID: b.MchID, OutTradeNo: b.OutTradeNo, Attach: b.Attach,
			TradeType: strings.ToUpper(method), TradeState: "NOTPAY", TradeStateDesc: "订单未支付",
			Amount: Amount{Total: b.Amount.Total, Currency: "CNY"},
		},
	}
	if method == "jsapi" {
		o.tx.Payer = &Payer{OpenID: payer}
		o.prepayID = "wx" + s.now().In(cst).Format("02150405") + randomHex(13)
	} else {
		o.codeURL = "weixin://wxpay/bizpayurl?pr=" + randomHex(4)
	}
	s.orders[b.OutTradeNo] = o
	s.prepays[b.OutTradeNo]++
	resp := prepayAnswer(o)
	s.mu.Unlock()
	if d := s.opts.AutoPayAfter; d > 0 {
		no := b.OutTradeNo
		s.after(d, func(ctx context.Context) {
			if _, err := s.Pay(ctx, no); err != nil {
				s.log.Info("wxsim: automatic payment skipped", "out_trade_no", no, "err", err)
			}
		})
	}
	return resp
}

func prepayAnswer(o *order) response {
	if o.method == "jsapi" {
		return okJSON(200, map[string]string{"prepay_id": o.prepayID})
	}
	return okJSON(200, map[string]string{"code_url": o.codeURL})
}

func (s *Server) checkPrepay(method string, b *prepayBody) *apiError {
	switch {
	case b.MchID != s.opts.MchID:
		return errf(400, "MCH_NOT_EXISTS", "商户号不存在")
	case b.AppID == "":
		return errf(400, "PARAM_ERROR", "缺少参数 appid")
	case len(s.opts.AppIDs) > 0 && !contains(s.opts.AppIDs, b.AppID):
		return errf(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
	case b.Description == "" || len(b.Description) > 127:
		return errf(400, "PARAM_ERROR", "description 长度应为 1-127 字节")
	case wechatpay.ValidOutTradeNo(b.OutTradeNo) != nil:
		return errf(400, "PARAM_ERROR", "out_trade_no 格式错误")
	case b.NotifyURL == "":
		return errf(400, "PARAM_ERROR", "缺少参数 notify_url")
	case b.Amount.Total < 1:
		return errf(400, "PARAM_ERROR", "amount.total 应大于 0")
	case b.Amount.Currency != "" && b.Amount.Currency != "CNY":
		return errf(400, "PARAM_ERROR", "境内商户号仅支持人民币")
	case contains(s.opts.NoAuth, method):
		return errf(403, "NO_AUTH", "商户无此接口权限")
	case method == "jsapi" && (b.Payer == nil || b.Payer.OpenID == ""):
		return errf(400, "PARAM_ERROR", "JSAPI 下单缺少 payer.openid")
	case method == "jsapi" && s.opts.OpenIDs[b.Payer.OpenID] != "" && s.opts.OpenIDs[b.Payer.OpenID] != b.AppID:
		return errf(500, "OPENID_MISMATCH", "openid和appid不匹配")
	}
	return checkNotifyURL(b.NotifyURL)
}

// checkNotifyURL refuses a notify_url WeChat Pay refuses: not an absolute
// URL, or one with a query. http is let through for tests (WeChat Pay
// calls only https; config warns).
func checkNotifyURL(s string) *apiError {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return errf(400, "PARAM_ERROR", "notify_url 格式错误")
	}
	return nil
}

// maxRefundReason is WeChat Pay's limit on a refund's reason (string[1,80]),
// in bytes: its documents do not say whether characters or bytes, and the
// simulator refuses what the stricter reading refuses, so that a paygate
// sending more than 80 bytes fails a test rather than a user's refund.
const maxRefundReason = 80

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *Server) query(no string, q url.Values) response {
	if q.Get("mchid") != s.opts.MchID {
		return errResponse(errf(400, "PARAM_ERROR", "mchid 有误"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[no]
	if !ok {
		return errResponse(errf(404, "ORDER_NOT_EXIST", "订单不存在"))
	}
	return okJSON(200, o.tx)
}

func (s *Server) closeOrder(no string, body []byte) response {
	var b struct {
		MchID string `json:"mchid"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.MchID != s.opts.MchID {
		return errResponse(errf(400, "PARAM_ERROR", "mchid 有误"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[no]
	if !ok {
		// As WeChat Pay answers it: its close checks the request's form,
		// not the order, and a number it holds no order under is closed
		// as one closed before (204).
		return response{status: http.StatusNoContent}
	}
	switch o.tx.TradeState {
	case "SUCCESS", "REFUND":
		return errResponse(errf(400, "ORDERPAID", "该订单已支付"))
	}
	o.tx.TradeState, o.tx.TradeStateDesc = "CLOSED", "订单已关闭"
	return response{status: http.StatusNoContent}
}

type refundBody struct {
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	OutRefundNo   string `json:"out_refund_no"`
	Reason        string `json:"reason"`
	NotifyURL     string `json:"notify_url"`
	Amount        struct {
		Refund   int64  `json:"refund"`
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

func (s *Server) createRefund(body []byte, entry *RequestLog) response {
	var b refundBody
	if err := json.Unmarshal(body, &b); err != nil {
		return errResponse(errf(400, "PARAM_ERROR", "请求体不是合法的 JSON"))
	}
	entry.OutTradeNo, entry.OutRefundNo = b.OutTradeNo, b.OutRefundNo
	if wechatpay.ValidOutRefundNo(b.OutRefundNo) != nil {
		return errResponse(errf(400, "PARAM_ERROR", "out_refund_no 格式错误"))
	}
	if len(b.Reason) > maxRefundReason {
		return errResponse(errf(400, "PARAM_ERROR", "reason 长度应不超过 %d 字节", maxRefundReason))
	}
	if b.NotifyURL != "" {
		if aerr := checkNotifyURL(b.NotifyURL); aerr != nil {
			return errResponse(aerr)
		}
	}
	if b.Amount.Currency != "CNY" {
		return errResponse(errf(400, "PARAM_ERROR", "amount.currency 应为 CNY"))
	}
	s.mu.Lock()
	if rf, ok := s.refunds[b.OutRefundNo]; ok {
		// Same out_refund_no: the same refund, never a second one; sent
		// again with other amounts, refused, as WeChat Pay refuses it.
		resp := okJSON(200, rf.r)
		switch {
		case b.OutTradeNo != "" && b.OutTradeNo != rf.r.OutTradeNo,
			b.TransactionID != "" && b.TransactionID != rf.r.TransactionID:
			// Another order's refund holds the number: never that
			// refund's answer, which named another order.
			resp = errResponse(errf(400, "INVALID_REQUEST", "请求内容和上次请求不一致，请核实后再试。原因主要是商户号不一致，或者商户订单号/商户退款单号已经被其他请求使用。"))
		case b.Amount.Refund != rf.r.Amount.Refund || b.Amount.Total != rf.r.Amount.Total:
			resp = errResponse(errf(400, "INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试"))
		}
		s.mu.Unlock()
		return resp
	}
	o := s.orders[b.OutTradeNo]
	if o == nil && b.TransactionID != "" {
		o = s.byTxID[b.TransactionID]
	}
	if o == nil {
		s.mu.Unlock()
		return errResponse(errf(404, "RESOURCE_NOT_EXISTS", "订单不存在"))
	}
	if o.tx.TradeState != "SUCCESS" && o.tx.TradeState != "REFUND" {
		// WeChat Pay's refunds know only paid orders: an unpaid one, open
		// or closed, is not found (its refund document: 未支付的订单不能发起退款).
		s.mu.Unlock()
		return errResponse(errf(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "订单不存在"))
	}
	if b.Amount.Total != o.tx.Amount.Total {
		s.mu.Unlock()
		return errResponse(errf(400, "INVALID_REQUEST", "您的请求参数与订单信息不一致"))
	}
	if b.Amount.Refund < 1 || b.Amount.Refund > o.tx.Amount.Total-o.refunded {
		s.mu.Unlock()
		return errResponse(errf(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额"))
	}
	if iv := s.opts.RefundInterval; iv > 0 && !o.lastRefund.IsZero() && s.now().Sub(o.lastRefund) < iv {
		// WeChat Pay: the refund requests of one order a minute apart;
		// a refund sooner is not taken ("该笔退款未受理").
		s.mu.Unlock()
		return errResponse(errf(http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率限制，该笔退款未受理，请降低频率后重试"))
	}
	o.lastRefund = s.now()
	notify := b.NotifyURL
	if notify == "" {
		notify = o.notifyURL
	}
	rf := &refund{notifyURL: notify, r: Refund{
		RefundID: "50" + randomDigits(27), OutRefundNo: b.OutRefundNo,
		TransactionID: o.tx.TransactionID, OutTradeNo: o.tx.OutTradeNo,
		Channel: "ORIGINAL", UserReceivedAccount: "支付用户零钱",
		CreateTime: s.now().In(cst).Format(time.RFC3339), Status: "PROCESSING", FundsAccount: "AVAILABLE",
		Amount: RefundAmount{
			Total: o.tx.Amount.Total, Refund: b.Amount.Refund, From: []any{},
			PayerTotal: o.tx.Amount.Total, PayerRefund: b.Amount.Refund,
			SettlementRefund: b.Amount.Refund, SettlementTotal: o.tx.Amount.Total, Currency: "CNY",
		},
		PromotionDetail: []any{},
	}}
	o.refunded += b.Amount.Refund
	o.tx.TradeState, o.tx.TradeStateDesc = "REFUND", "转入退款"
	s.refunds[b.OutRefundNo] = rf
	resp := okJSON(200, rf.r)
	s.mu.Unlock()
	if d := s.opts.AutoRefundAfter; d > 0 {
		no := b.OutRefundNo
		s.after(d, func(ctx context.Context) {
			if _, err := s.CompleteRefund(ctx, no); err != nil {
				s.log.Info("wxsim: automatic refund completion skipped", "out_refund_no", no, "err", err)
			}
		})
	}
	return resp
}

func (s *Server) queryRefund(no string) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	rf, ok := s.refunds[no]
	if !ok {
		return errResponse(errf(404, "RESOURCE_NOT_EXISTS", "退款单不存在"))
	}
	return okJSON(200, rf.r)
}
