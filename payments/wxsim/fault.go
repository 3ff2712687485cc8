package wxsim

// FaultKind is a failure the simulator can inject into its next answers.
type FaultKind int

// Faults. Each applies to one request of the chosen operation.
const (
	faultNone FaultKind = iota
	// FaultTimeout processes the request, then never answers: the client's
	// deadline expires although the operation took effect (the case that makes
	// a retry reuse its number).
	FaultTimeout
	// FaultHTTP500 answers a bare 500 without processing.
	FaultHTTP500
	// FaultSystemError answers 500 SYSTEM_ERROR without processing.
	FaultSystemError
	// FaultFrequencyLimited answers 429 FREQUENCY_LIMITED without processing.
	FaultFrequencyLimited
	// FaultOrderPaid marks the order paid (as if the payer paid in between) and
	// answers 400 ORDERPAID.
	FaultOrderPaid
	// FaultBadResponseSignature processes the request and signs the answer with
	// the wrong key.
	FaultBadResponseSignature
	// FaultNotExist answers 404 ORDER_NOT_EXIST (RESOURCE_NOT_EXISTS for
	// the refund operations) without processing: a WeChat Pay replica that
	// has not yet seen an order or refund made a moment ago (its APIs are
	// eventually consistent), although the order exists.
	FaultNotExist
	// FaultNotEnough answers 403 NOT_ENOUGH without processing: the
	// merchant's balance cannot cover the refund until it is topped up.
	FaultNotEnough
	// FaultOrderPaidUnseen answers 400 ORDERPAID without processing or
	// marking the order paid: a WeChat Pay replica that has seen a payment
	// the one answering queries has not yet (its APIs are eventually
	// consistent), so a query that follows still says NOTPAY.
	FaultOrderPaidUnseen
	// FaultSignatureProbe processes the request and answers it with WeChat
	// Pay's signature probe: a Wechatpay-Signature starting
	// "WECHATPAY/SIGNTEST/", which WeChat Pay puts on answers as on
	// notifications from time to time to check that the merchant verifies
	// them.
	FaultSignatureProbe
	// FaultUserAccountAbnormal answers 403 USER_ACCOUNT_ABNORMAL to a
	// refund without processing: the payer's WeChat account is closed, and
	// the merchant must refund them by other means.
	FaultUserAccountAbnormal
	// FaultNumberUsedPaid marks the order paid (as if the payer paid in
	// between; a prepay is processed first) and answers 403
	// OUT_TRADE_NO_USED, as WeChat Pay may answer a prepay under a number
	// it holds an order under, paid or not, with other parameters.
	FaultNumberUsedPaid
	// FaultNotWeChatPay answers 200 with an HTML page and none of WeChat
	// Pay's Wechatpay-* headers, without processing: not WeChat Pay's
	// answer but that of something on the way to it (an egress proxy's or
	// a captive portal's page, a gateway, an api_base naming another
	// host), which WeChat Pay never saw.
	FaultNotWeChatPay
)

func (k FaultKind) String() string {
	switch k {
	case FaultTimeout:
		return "timeout"
	case FaultHTTP500:
		return "http-500"
	case FaultSystemError:
		return "SYSTEM_ERROR"
	case FaultFrequencyLimited:
		return "FREQUENCY_LIMITED"
	case FaultOrderPaid:
		return "ORDERPAID"
	case FaultBadResponseSignature:
		return "bad-response-signature"
	case FaultNotExist:
		return "not-exist"
	case FaultNotEnough:
		return "NOT_ENOUGH"
	case FaultOrderPaidUnseen:
		return "ORDERPAID-unseen"
	case FaultSignatureProbe:
		return "signature-probe"
	case FaultUserAccountAbnormal:
		return "USER_ACCOUNT_ABNORMAL"
	case FaultNumberUsedPaid:
		return "OUT_TRADE_NO_USED-paid"
	case FaultNotWeChatPay:
		return "not-wechat-pay-200"
	}
	return "none"
}

// Fault injects Kind into the next Times requests (default 1) of operation Op:
// "prepay" (both kinds), "prepay-jsapi", "prepay-native", "query", "close",
// "refund", "refund-query", or "" for any.
type Fault struct {
	Op    string
	Kind  FaultKind
	Times int
}

// InjectFault queues f; faults apply in the order injected.
func (s *Server) InjectFault(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

func (s *Server) takeFault(op string) (FaultKind, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if f.Op == "" || f.Op == op || (f.Op == "prepay" && (op == "prepay-jsapi" || op == "prepay-native")) {
			kind := f.Kind
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return kind, true
		}
	}
	return faultNone, false
}
