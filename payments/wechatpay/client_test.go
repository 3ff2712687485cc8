package wechatpay_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

func TestClientDrivesSimulator(t *testing.T) {
	r := newRig(t, wxsim.Options{}, "", nil)
	ctx := context.Background()

	// JSAPI prepay with mini-program request-payment parameters.
	jres, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{
		Method: wechatpay.MethodJSAPI, OutTradeNo: "PG20240101jsapi01", Description: "Premium tier, 1 month",
		Total: 4999, PayerOpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", ExpireAt: time.Now().Add(15 * time.Minute),
	})
	if err != nil {
		t.Fatalf("jsapi prepay: %v", err)
	}
	if !strings.HasPrefix(jres.PrepayID, "wx") || jres.Payment == nil {
		t.Fatalf("jsapi prepay: got %+v; want a prepay_id and payment params", jres)
	}
	p := jres.Payment
	if p.Package != "prepay_id="+jres.PrepayID || p.SignType != "RSA" || p.AppID != r.sim.AppID() {
		t.Errorf("payment params: got %+v", p)
	}
	msg := p.AppID + "\n" + p.TimeStamp + "\n" + p.NonceStr + "\n" + p.Package + "\n"
	sig, _ := base64.StdEncoding.DecodeString(p.PaySign)
	sum := sha256.Sum256([]byte(msg))
	if err := rsa.VerifyPKCS1v15(&r.sim.Keys().MerchantKey.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("paySign does not verify with the merchant key: %v", err)
	}

	// Re-signed locally for the same prepay_id (a repeated create_order).
	again, err := r.client.RequestPayment(ctx, "", jres.PrepayID)
	if err != nil {
		t.Fatalf("request payment: %v", err)
	}
	msg = again.AppID + "\n" + again.TimeStamp + "\n" + again.NonceStr + "\n" + again.Package + "\n"
	sig, _ = base64.StdEncoding.DecodeString(again.PaySign)
	sum = sha256.Sum256([]byte(msg))
	if again.Package != p.Package || rsa.VerifyPKCS1v15(&r.sim.Keys().MerchantKey.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		t.Errorf("re-signed params: got %+v; want a valid signature over the same package", again)
	}

	// Native prepay.
	nres, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{
		Method: wechatpay.MethodNative, OutTradeNo: "PG20240101native1", Description: "Premium", Total: 100,
	})
	if err != nil {
		t.Fatalf("native prepay: %v", err)
	}
	if !strings.HasPrefix(nres.CodeURL, "weixin://wxpay/bizpayurl?pr=") {
		t.Errorf("code_url: got %q", nres.CodeURL)
	}

	// Query before and after payment.
	tx, err := r.client.QueryOrder(ctx, "PG20240101jsapi01")
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if tx.TradeState != wechatpay.TradeNotPay || tx.Total != 4999 || tx.MchID != r.sim.MchID() {
		t.Errorf("query before pay: got %+v; want NOTPAY 4999", tx)
	}
	if _, err := r.sim.Pay(ctx, "PG20240101jsapi01"); err != nil {
		t.Fatalf("sim pay: %v", err)
	}
	tx, err = r.client.QueryOrder(ctx, "PG20240101jsapi01")
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if tx.TradeState != wechatpay.TradeSuccess || tx.TransactionID == "" || tx.SuccessTime.IsZero() || tx.PayerOpenID != "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" {
		t.Errorf("query after pay: got %+v; want SUCCESS with a transaction id", tx)
	}

	// Refund and refund query; progress comes from status.
	rf, err := r.client.CreateRefund(ctx, wechatpay.RefundRequest{
		OutTradeNo: "PG20240101jsapi01", OutRefundNo: "RF20240101jsapi01", Reason: "changed mind", Refund: 1000, Total: 4999,
	})
	if err != nil {
		t.Fatalf("refund: %v", err)
	}
	if rf.Status != wechatpay.RefundProcessing || rf.Refund != 1000 || rf.RefundID == "" {
		t.Errorf("refund: got %+v; want PROCESSING 1000", rf)
	}
	if _, err := r.sim.CompleteRefund(ctx, "RF20240101jsapi01"); err != nil {
		t.Fatalf("complete refund: %v", err)
	}
	rq, err := r.client.QueryRefund(ctx, "RF20240101jsapi01")
	if err != nil {
		t.Fatalf("refund query: %v", err)
	}
	if rq.Status != wechatpay.RefundSuccess || rq.SuccessTime.IsZero() {
		t.Errorf("refund query: got %+v; want SUCCESS", rq)
	}

	// Close the native order, then it is CLOSED and its number is dead.
	if err := r.client.CloseOrder(ctx, "PG20240101native1"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := r.client.CloseOrder(ctx, "PG20240101native1"); err != nil {
		t.Errorf("closing a closed order: got %v; want nil", err)
	}
	tx, err = r.client.QueryOrder(ctx, "PG20240101native1")
	if err != nil || tx.TradeState != wechatpay.TradeClosed {
		t.Errorf("query closed: got %+v, %v; want CLOSED", tx, err)
	}
	_, err = r.client.Prepay(ctx, wechatpay.PrepayRequest{
		Method: wechatpay.MethodNative, OutTradeNo: "PG20240101native1", Description: "Premium", Total: 100,
	})
	if !errors.Is(err, wechatpay.ErrOrderClosed) {
		t.Errorf("prepay on a closed number: got %v; want ErrOrderClosed", err)
	}
	// Closing a paid order is ORDERPAID, which means paid.
	if err := r.client.CloseOrder(ctx, "PG20240101jsapi01"); !errors.Is(err, wechatpay.ErrOrderPaid) {
		t.Errorf("close paid: got %v; want ErrOrderPaid", err)
	}
	if _, err := r.client.QueryOrder(ctx, "PG20240101nosuch"); !errors.Is(err, wechatpay.ErrNotFound) {
		t.Errorf("query unknown: got %v; want ErrNotFound", err)
	}
	if _, err := r.client.QueryRefund(ctx, "RFnosuch"); !errors.Is(err, wechatpay.ErrNotFound) {
		t.Errorf("refund query unknown: got %v; want ErrNotFound", err)
	}
}

func TestPrepayRepeatIsOneOrder(t *testing.T) {
	r := newRig(t, wxsim.Options{}, "", nil)
	ctx := context.Background()
	req := wechatpay.PrepayRequest{Method: wechatpay.MethodJSAPI, OutTradeNo: "PGrepeat000001", Description: "d", Total: 1, PayerOpenID: "o1"}
	a, err := r.client.Prepay(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.client.Prepay(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.PrepayID != b.PrepayID {
		t.Errorf("prepay_id: got %q then %q; want the same", a.PrepayID, b.PrepayID)
	}
	req.Total = 2
	if _, err := r.client.Prepay(ctx, req); !errors.Is(err, wechatpay.ErrNumberUsed) {
		t.Errorf("same number, other amount: got %v; want ErrNumberUsed", err)
	}
	if got := r.sim.OrderCount(); got != 1 {
		t.Errorf("orders at simulator: got %d; want 1", got)
	}
}

func TestRetriesByMeaning(t *testing.T) {
	type want struct {
		err      error // nil: success
		requests int   // prepay requests seen by the simulator
		orders   int
		paid     bool
	}
	tests := []struct {
		name   string
		opts   wxsim.Options
		faults []wxsim.Fault
		edit   func(*wechatpay.PrepayRequest)
		want   want
	}{
		{name: "timeout then retry reuses the number", faults: []wxsim.Fault{{Op: "prepay", Kind: wxsim.FaultTimeout}},
			want: want{requests: 2, orders: 1}},
		{name: "SYSTEM_ERROR twice then success", faults: []wxsim.Fault{{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 2}},
			want: want{requests: 3, orders: 1}},
		{name: "FREQUENCY_LIMITED retried", faults: []wxsim.Fault{{Op: "prepay", Kind: wxsim.FaultFrequencyLimited}},
			want: want{requests: 2, orders: 1}},
		{name: "bare 500 retried", faults: []wxsim.Fault{{Op: "prepay", Kind: wxsim.FaultHTTP500}},
			want: want{requests: 2, orders: 1}},
		{name: "SYSTEM_ERROR on every attempt is temporary", faults: []wxsim.Fault{{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 3}},
			want: want{err: wechatpay.ErrTemporary, requests: 3, orders: 0}},
		{name: "ORDERPAID resolves to paid", faults: []wxsim.Fault{{Op: "prepay", Kind: wxsim.FaultOrderPaid}},
			want: want{requests: 1, orders: 1, paid: true}},
		{name: "PARAM_ERROR is a clear failure, not retried",
			edit: func(p *wechatpay.PrepayRequest) { p.Description = strings.Repeat("x", 200) },
			want: want{err: wechatpay.ErrRejected, requests: 1, orders: 0}},
		{name: "OPENID_MISMATCH (HTTP 500) is a clear failure, not retried",
			opts: wxsim.Options{OpenIDs: map[string]string{"o1": "wx0ther0app0id00"}},
			want: want{err: wechatpay.ErrRejected, requests: 1, orders: 0}},
		{name: "bad response signature is not trusted", faults: []wxsim.Fault{{Op: "prepay", Kind: wxsim.FaultBadResponseSignature}},
			want: want{err: wechatpay.ErrUnverified, requests: 1, orders: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.opts, "", func(c *wechatpay.Config) { c.AttemptTimeout = faultAttemptTimeout })
			for _, f := range tt.faults {
				r.sim.InjectFault(f)
			}
			req := wechatpay.PrepayRequest{Method: wechatpay.MethodJSAPI, OutTradeNo: "PGretry0000001", Description: "d", Total: 4999, PayerOpenID: "o1"}
			if tt.edit != nil {
				tt.edit(&req)
			}
			res, err := r.client.Prepay(context.Background(), req)
			if tt.want.err == nil && err != nil {
				t.Fatalf("prepay: got %v; want success", err)
			}
			if tt.want.err != nil && !errors.Is(err, tt.want.err) {
				t.Fatalf("prepay: got %v; want %v", err, tt.want.err)
			}
			n := 0
			for _, l := range r.sim.Requests() {
				if strings.HasPrefix(l.Op, "prepay") {
					n++
					if l.OutTradeNo != req.OutTradeNo && l.OutTradeNo != "" {
						t.Errorf("request used number %q; want %q", l.OutTradeNo, req.OutTradeNo)
					}
				}
			}
			if n != tt.want.requests {
				t.Errorf("prepay requests: got %d; want %d", n, tt.want.requests)
			}
			if got := r.sim.OrderCount(); got != tt.want.orders {
				t.Errorf("orders at simulator: got %d; want %d", got, tt.want.orders)
			}
			if tt.want.paid {
				if res == nil || res.Paid == nil || res.Paid.TradeState != wechatpay.TradeSuccess {
					t.Errorf("result: got %+v; want Paid SUCCESS", res)
				}
			}
		})
	}
}

func TestSignErrorIsAClearFailure(t *testing.T) {
	other, err := rsa.GenerateKey(randReader{}, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) { c.MchPrivateKey = other })
	_, err = r.client.QueryOrder(context.Background(), "PGsignerr0001")
	var ae *wechatpay.APIError
	if !errors.Is(err, wechatpay.ErrRejected) || !errors.As(err, &ae) || ae.Code != "SIGN_ERROR" || ae.Attempts != 1 {
		t.Errorf("got %v; want ErrRejected SIGN_ERROR after 1 attempt", err)
	}
}

func TestRefundRetryReusesNumber(t *testing.T) {
	tests := []struct {
		name  string
		fault wxsim.Fault
	}{
		{name: "timeout after the refund took effect", fault: wxsim.Fault{Op: "refund", Kind: wxsim.FaultTimeout}},
		{name: "SYSTEM_ERROR before it took effect", fault: wxsim.Fault{Op: "refund", Kind: wxsim.FaultSystemError}},
		{name: "429", fault: wxsim.Fault{Op: "refund", Kind: wxsim.FaultFrequencyLimited}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) { c.AttemptTimeout = faultAttemptTimeout })
			ctx := context.Background()
			if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGrefund00001", Description: "d", Total: 300}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.sim.Pay(ctx, "PGrefund00001"); err != nil {
				t.Fatal(err)
			}
			r.sim.InjectFault(tt.fault)
			rf, err := r.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: "PGrefund00001", OutRefundNo: "RFrefund00001", Refund: 300, Total: 300})
			if err != nil {
				t.Fatalf("refund: %v", err)
			}
			if rf.OutRefundNo != "RFrefund00001" || rf.Status != wechatpay.RefundProcessing {
				t.Errorf("refund: got %+v", rf)
			}
			if got := r.sim.RefundCount("PGrefund00001"); got != 1 {
				t.Errorf("refunds at simulator: got %d; want 1", got)
			}
			for _, l := range r.sim.Requests() {
				if l.Op == "refund" && l.OutRefundNo != "RFrefund00001" {
					t.Errorf("a retry used out_refund_no %q", l.OutRefundNo)
				}
			}
		})
	}
}

// refusingTransport answers the requests refuse picks with WeChat Pay's
// 403 NO_AUTH and passes every other to the simulator.
type refusingTransport struct {
	mu     sync.Mutex
	seen   map[string]int // "METHOD path-prefix" → requests so far
	refuse func(method, path string, nth int) bool
}

func (r *refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Method + " " + req.URL.Path
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	r.seen[key]++
	nth := r.seen[key]
	r.mu.Unlock()
	if r.refuse(req.Method, req.URL.Path, nth) {
		body := `{"code":"NO_AUTH","message":"商户无权限"}`
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestRefundOutcomeStaysUnknownAfterARefusal: once a refund create's outcome
// is unknown (it timed out, or answered 5xx), a later refusal (the query by
// the same out_refund_no, or the create sent again under it) cannot tell
// whether WeChat Pay holds the refund: the error is ErrTemporary (query
// before acting), never ErrRejected, which the caller takes as "nothing was
// refunded".
func TestRefundOutcomeStaysUnknownAfterARefusal(t *testing.T) {
	const queryPath, createPath = "/v3/refund/domestic/refunds/", "/v3/refund/domestic/refunds"
	tests := []struct {
		name   string
		fault  wxsim.Fault
		refuse func(method, path string, nth int) bool
		held   int // refunds the simulator holds after
	}{
		{
			name:  "timed out, then the query is refused",
			fault: wxsim.Fault{Op: "refund", Kind: wxsim.FaultTimeout},
			refuse: func(method, path string, nth int) bool {
				return method == http.MethodGet && strings.HasPrefix(path, queryPath)
			},
			held: 1,
		},
		{
			name:  "SYSTEM_ERROR, not found, then the create again is refused",
			fault: wxsim.Fault{Op: "refund", Kind: wxsim.FaultSystemError},
			refuse: func(method, path string, nth int) bool {
				return method == http.MethodPost && path == createPath && nth == 2
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &refusingTransport{refuse: tt.refuse}
			r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) {
				c.AttemptTimeout = faultAttemptTimeout
				c.Transport = rt
			})
			ctx := context.Background()
			if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGunknown0001", Description: "d", Total: 300}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.sim.Pay(ctx, "PGunknown0001"); err != nil {
				t.Fatal(err)
			}
			r.sim.InjectFault(tt.fault)
			rf, err := r.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: "PGunknown0001", OutRefundNo: "RFunknown0001", Refund: 300, Total: 300})
			if !errors.Is(err, wechatpay.ErrTemporary) || errors.Is(err, wechatpay.ErrRejected) {
				t.Errorf("refund: %+v, %v; want ErrTemporary (outcome unknown), not ErrRejected", rf, err)
			}
			if got := r.sim.RefundCount("PGunknown0001"); got != tt.held {
				t.Errorf("refunds at simulator: got %d; want %d", got, tt.held)
			}
		})
	}
}

// TestPrepayOutcomeStaysUnknownAfterARefusal: a prepay whose outcome is known
// to be "paid" (ORDERPAID) or unknown (an attempt timed out) is never
// answered ErrRejected, which the caller takes as "no order at WeChat Pay"
// and closes the order, because a later request was refused: the query that
// was to confirm ORDERPAID, or the prepay sent again under the same number.
func TestPrepayOutcomeStaysUnknownAfterARefusal(t *testing.T) {
	tests := []struct {
		name   string
		fault  wxsim.Fault
		refuse func(method, path string, nth int) bool
	}{
		{
			name:  "ORDERPAID, then the query is refused",
			fault: wxsim.Fault{Op: "prepay", Kind: wxsim.FaultOrderPaid},
			refuse: func(method, path string, nth int) bool {
				return method == http.MethodGet && strings.HasPrefix(path, "/v3/pay/transactions/out-trade-no/")
			},
		},
		{
			name:  "timed out, then the prepay again is refused",
			fault: wxsim.Fault{Op: "prepay", Kind: wxsim.FaultTimeout},
			refuse: func(method, path string, nth int) bool {
				return method == http.MethodPost && path == "/v3/pay/transactions/jsapi" && nth == 2
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &refusingTransport{refuse: tt.refuse}
			r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) {
				c.AttemptTimeout = faultAttemptTimeout
				c.Transport = rt
			})
			r.sim.InjectFault(tt.fault)
			res, err := r.client.Prepay(context.Background(), wechatpay.PrepayRequest{
				Method: wechatpay.MethodJSAPI, OutTradeNo: "PGunknown0002", Description: "d", Total: 4999, PayerOpenID: "o1",
			})
			if !errors.Is(err, wechatpay.ErrTemporary) || errors.Is(err, wechatpay.ErrRejected) {
				t.Errorf("prepay: %+v, %v; want ErrTemporary (WeChat Pay holds the order), not ErrRejected", res, err)
			}
			if got := r.sim.OrderCount(); got != 1 {
				t.Errorf("orders at simulator: got %d; want 1", got)
			}
		})
	}
}

// TestRefundParamsWeChatRefuses: a refund request WeChat Pay refuses with
// PARAM_ERROR (a reason above 80 bytes, a notify_url with a query or not
// http(s)) is refused by the simulator too, through the official client:
// ErrRejected after one attempt, and no refund held. The reason's
// string[1,80] is taken in bytes, the stricter of the readings its
// documents leave open and the one paygate cuts to: a simulator counting
// characters let 240 bytes of Chinese through, so a paygate that sent
// them passed every test.
func TestRefundParamsWeChatRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*wechatpay.RefundRequest)
	}{
		{name: "reason of 81 bytes", edit: func(r *wechatpay.RefundRequest) { r.Reason = strings.Repeat("退", 27) }},
		{name: "reason of 81 characters", edit: func(r *wechatpay.RefundRequest) { r.Reason = strings.Repeat("退", 81) }},
		{name: "notify_url with a query", edit: func(r *wechatpay.RefundRequest) { r.NotifyURL = "https://pay.example.com/wechatpay/notify?x=1" }},
		{name: "notify_url not http", edit: func(r *wechatpay.RefundRequest) { r.NotifyURL = "ftp://pay.example.com/wechatpay/notify" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, wxsim.Options{}, "", nil)
			ctx := context.Background()
			if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGrefpar00001", Description: "d", Total: 300}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.sim.Pay(ctx, "PGrefpar00001"); err != nil {
				t.Fatal(err)
			}
			req := wechatpay.RefundRequest{OutTradeNo: "PGrefpar00001", OutRefundNo: "RFrefpar00001", Reason: "r", Refund: 300, Total: 300}
			tt.edit(&req)
			_, err := r.client.CreateRefund(ctx, req)
			var ae *wechatpay.APIError
			if !errors.Is(err, wechatpay.ErrRejected) || !errors.As(err, &ae) || ae.Code != "PARAM_ERROR" || ae.Attempts != 1 {
				t.Errorf("refund: got %v; want ErrRejected PARAM_ERROR after 1 attempt", err)
			}
			if n := r.sim.RefundCount(""); n != 0 {
				t.Errorf("refunds at simulator: got %d; want 0", n)
			}
		})
	}
	// 80 bytes (26 characters of Chinese and two of ASCII) is within the
	// limit.
	r := newRig(t, wxsim.Options{}, "", nil)
	ctx := context.Background()
	if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGrefpar00002", Description: "d", Total: 300}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.sim.Pay(ctx, "PGrefpar00002"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: "PGrefpar00002", OutRefundNo: "RFrefpar00002", Reason: strings.Repeat("退", 26) + "ok", Refund: 300, Total: 300}); err != nil {
		t.Errorf("refund with an 80-byte reason: %v", err)
	}
}

// TestRefundNumberRepeatedWithOtherAmounts: WeChat Pay takes an
// out_refund_no sent again with the same amounts as the same refund, and
// refuses it with other amounts (400 INVALID_REQUEST, "订单金额或退款金额与之前
// 请求不一致"). The simulator answered every repeat with the refund first
// made under the number, so a paygate that sent one number for two amounts
// saw its second refund "accepted" in every test, and refused in production.
func TestRefundNumberRepeatedWithOtherAmounts(t *testing.T) {
	tests := []struct {
		name string
		edit func(*wechatpay.RefundRequest)
	}{
		{name: "other refund amount", edit: func(r *wechatpay.RefundRequest) { r.Refund = 200 }},
		{name: "other order total", edit: func(r *wechatpay.RefundRequest) { r.Total = 500 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, wxsim.Options{}, "", nil)
			ctx := context.Background()
			if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGrefrep00001", Description: "d", Total: 300}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.sim.Pay(ctx, "PGrefrep00001"); err != nil {
				t.Fatal(err)
			}
			req := wechatpay.RefundRequest{OutTradeNo: "PGrefrep00001", OutRefundNo: "RFrefrep00001", Refund: 100, Total: 300}
			if _, err := r.client.CreateRefund(ctx, req); err != nil {
				t.Fatal(err)
			}
			if got, err := r.client.CreateRefund(ctx, req); err != nil || got.Refund != 100 {
				t.Fatalf("the same refund sent again: %+v, %v; want the refund of 100 fen", got, err)
			}
			tt.edit(&req)
			got, err := r.client.CreateRefund(ctx, req)
			var ae *wechatpay.APIError
			if !errors.Is(err, wechatpay.ErrRejected) || !errors.As(err, &ae) || ae.Code != "INVALID_REQUEST" {
				t.Errorf("the number sent again with other amounts: %+v, %v; want ErrRejected INVALID_REQUEST", got, err)
			}
			if rf, ok := r.sim.Refund("RFrefrep00001"); !ok || rf.Amount.Refund != 100 || r.sim.RefundCount("") != 1 {
				t.Errorf("refunds at the simulator: %d, RFrefrep00001 %+v; want the one of 100 fen", r.sim.RefundCount(""), rf.Amount)
			}
		})
	}
}

// TestPrepayNumberUsedIsQueried: OUT_TRADE_NO_USED says WeChat Pay holds an
// order under the number with other parameters, which may be paid; it was
// read as a refusal, whatever that order's state. The order is queried:
// unpaid, the refusal stands (ErrNumberUsed); paid, the result is the
// payment; not found a moment after WeChat Pay said it holds one (a replica
// behind), or not told, the outcome is unknown (ErrTemporary), never a
// refusal.
func TestPrepayNumberUsedIsQueried(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		fault *wxsim.Fault // on the second prepay or the query
		want  error        // nil: paid
	}{
		{name: "unpaid", want: wechatpay.ErrNumberUsed},
		{name: "paid", fault: &wxsim.Fault{Op: "prepay", Kind: wxsim.FaultNumberUsedPaid}},
		{name: "not found", fault: &wxsim.Fault{Op: "query", Kind: wxsim.FaultNotExist}, want: wechatpay.ErrTemporary},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, wxsim.Options{}, "", nil)
			req := wechatpay.PrepayRequest{Method: wechatpay.MethodJSAPI, OutTradeNo: "PGnumberused01", Description: "d", Total: 1, PayerOpenID: "o1"}
			if _, err := r.client.Prepay(ctx, req); err != nil {
				t.Fatal(err)
			}
			req.Total = 2 // other parameters: the simulator answers OUT_TRADE_NO_USED
			if tt.fault != nil {
				r.sim.InjectFault(*tt.fault)
			}
			res, err := r.client.Prepay(ctx, req)
			if tt.want != nil {
				if !errors.Is(err, tt.want) || res != nil {
					t.Fatalf("prepay: %+v, %v; want %v", res, err, tt.want)
				}
				if tt.want == wechatpay.ErrTemporary && errors.Is(err, wechatpay.ErrNumberUsed) {
					t.Errorf("prepay: %v; want no refusal (ErrNumberUsed) beside ErrTemporary", err)
				}
				return
			}
			if err != nil || res == nil || res.Paid == nil || res.Paid.TradeState != wechatpay.TradeSuccess {
				t.Fatalf("prepay: %+v, %v; want the order's payment", res, err)
			}
			if tx, _ := r.sim.Order(req.OutTradeNo); res.Paid.TransactionID != tx.TransactionID || tx.TransactionID == "" {
				t.Errorf("paid transaction %q; want the simulator's %q", res.Paid.TransactionID, tx.TransactionID)
			}
		})
	}
}
