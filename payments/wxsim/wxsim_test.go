package wxsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/credentials"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/signers"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

var testKeys = sync.OnceValues(wxsim.GenerateKeys)

func newSim(t *testing.T, opts wxsim.Options) (*wxsim.Server, *httptest.Server) {
	t.Helper()
	k, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	opts.Keys = k
	s, err := wxsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(s)
	t.Cleanup(func() {
		api.Close()
		_ = s.Close()
	})
	return s, api
}

// signed builds a request signed the way the SDK signs, for signBody, then
// sends body (which a test may make differ).
func signed(t *testing.T, s *wxsim.Server, mchid, method, url, uri, signBody, body string) *http.Response {
	t.Helper()
	cred := credentials.WechatPayCredentials{Signer: &signers.SHA256WithRSASigner{
		MchID: mchid, CertificateSerialNo: s.Keys().MerchantSerial, PrivateKey: s.Keys().MerchantKey}}
	auth, err := cred.GenerateAuthorizationHeader(context.Background(), method, uri, signBody)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, url+uri, strings.NewReader(body))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestRequestSignatureChecked(t *testing.T) {
	s, api := newSim(t, wxsim.Options{})
	body := `{"appid":"` + s.AppID() + `","mchid":"` + s.MchID() + `","description":"d","out_trade_no":"PGsig00000001","notify_url":"https://x.example/n","amount":{"total":1}}`
	tests := []struct {
		name     string
		mchid    string
		signBody string
		status   int
	}{
		{name: "valid", mchid: s.MchID(), signBody: body, status: 200},
		{name: "body changed after signing", mchid: s.MchID(), signBody: strings.Replace(body, `"total":1`, `"total":2`, 1), status: 401},
		{name: "other merchant", mchid: "1900000999", signBody: body, status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := signed(t, s, tt.mchid, http.MethodPost, api.URL, "/v3/pay/transactions/native", tt.signBody, body)
			if resp.StatusCode != tt.status {
				t.Fatalf("got %d; want %d", resp.StatusCode, tt.status)
			}
			if resp.Header.Get("Wechatpay-Signature") == "" || resp.Header.Get("Wechatpay-Serial") != s.Keys().PublicKeyID {
				t.Errorf("response not signed in public-key mode: %v", resp.Header)
			}
			if tt.status == 401 {
				var e struct{ Code string }
				_ = json.NewDecoder(resp.Body).Decode(&e)
				if e.Code != "SIGN_ERROR" {
					t.Errorf("code: got %q; want SIGN_ERROR", e.Code)
				}
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, api.URL+"/v3/pay/transactions/out-trade-no/PGsig00000001?mchid="+s.MchID(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("unsigned request: got %d; want 401", resp.StatusCode)
	}
	if n := s.OrderCount(); n != 1 {
		t.Errorf("orders: got %d; want 1 (only the valid request)", n)
	}
}

func TestAutoPayDeliversWithRetry(t *testing.T) {
	var calls atomic.Int32
	type delivery struct {
		h    http.Header
		body []byte
	}
	got := make(chan delivery, 4)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(500) // the first delivery fails: WeChat retries
			return
		}
		got <- delivery{r.Header.Clone(), b.Bytes()}
		w.WriteHeader(204)
	}))
	defer sink.Close()
	delivered := make(chan wxsim.Delivery, 1)
	s, api := newSim(t, wxsim.Options{AutoPayAfter: 10 * time.Millisecond, NotifyRetry: 10 * time.Millisecond,
		Delivered: func(d wxsim.Delivery) { delivered <- d }})
	c, err := wechatpay.New(context.Background(), s.ClientConfig(api.URL, sink.URL+"/wechatpay/notify"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepay(context.Background(), wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGauto0000001", Description: "d", Total: 5}); err != nil {
		t.Fatal(err)
	}
	var d delivery
	select {
	case d = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification delivered")
	}
	n, err := c.NotifyVerifier().Verify(context.Background(), d.h, d.body, time.Now())
	if err != nil || n.EventType != wechatpay.EventTransactionSuccess {
		t.Fatalf("delivered notification: got %v, %v; want a verified TRANSACTION.SUCCESS", n, err)
	}
	var tx wechatpay.TransactionResource
	if err := json.Unmarshal(n.Plaintext, &tx); err != nil || tx.OutTradeNo != "PGauto0000001" || tx.Amount.Total != 5 || tx.TransactionID == "" {
		t.Errorf("resource: got %+v, %v", tx, err)
	}
	var rec wxsim.Delivery
	select {
	case rec = <-delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("delivery never ended")
	}
	if !rec.Acked || rec.Attempts != 2 || rec.OutTradeNo != "PGauto0000001" {
		t.Errorf("delivery: got %+v; want acknowledged at the second attempt", rec)
	}
	if ds := s.Deliveries(); len(ds) != 1 {
		t.Errorf("deliveries: got %d; want 1", len(ds))
	}
	if tx, _ := s.Order("PGauto0000001"); tx.TradeState != "SUCCESS" {
		t.Errorf("order: got %s; want SUCCESS", tx.TradeState)
	}
}

func TestCloseStopsPendingTimers(t *testing.T) {
	s, api := newSim(t, wxsim.Options{AutoPayAfter: time.Hour})
	c, err := wechatpay.New(context.Background(), s.ClientConfig(api.URL, "https://x.example/n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepay(context.Background(), wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGtimer000001", Description: "d", Total: 5}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for an hour-long timer")
	}
	if tx, _ := s.Order("PGtimer000001"); tx.TradeState != "NOTPAY" {
		t.Errorf("order: got %s; want NOTPAY (never paid)", tx.TradeState)
	}
}

// TestClientConfigVerifiesEitherSigningMode: ClientConfig says a client
// built from it verifies what the simulator signs in either mode; with the
// platform certificate left out, every response and notification signed
// after SetSigningMode(SignCertificate) failed as an unknown serial.
func TestClientConfigVerifiesEitherSigningMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode wxsim.SigningMode
	}{
		{"public key", wxsim.SignPublicKey},
		{"platform certificate", wxsim.SignCertificate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, api := newSim(t, wxsim.Options{})
			s.SetSigningMode(tc.mode)
			c, err := wechatpay.New(context.Background(), s.ClientConfig(api.URL, "https://x.example/n"))
			if err != nil {
				t.Fatal(err)
			}
			// A response the SDK verifies.
			if _, err := c.Prepay(context.Background(), wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGmode0000001", Description: "d", Total: 5}); err != nil {
				t.Fatalf("Prepay, a response signed in this mode: %v", err)
			}
			// A notification the notify route verifies.
			n, err := s.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventTransactionSuccess, OriginalType: "transaction",
				Summary: "支付成功", Resource: wxsim.Transaction{AppID: s.AppID(), MchID: s.MchID(), OutTradeNo: "PGmode0000001", TradeState: "SUCCESS", Amount: wxsim.Amount{Total: 5}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.NotifyVerifier().Verify(context.Background(), n.Header, n.Body, time.Now()); err != nil {
				t.Errorf("a notification signed in this mode (serial %s): %v; want verified", n.Header.Get("Wechatpay-Serial"), err)
			}
		})
	}
}

// sim is a simulator whose clock runs setOff ahead of time.Now, and the
// official client of it (its notifications acknowledged and dropped).
func sim(t *testing.T) (*wxsim.Server, *wechatpay.Client, func(time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	var off time.Duration
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(off)
	}
	s, api := newSim(t, wxsim.Options{Now: now})
	ack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(ack.Close)
	c, err := wechatpay.New(context.Background(), s.ClientConfig(api.URL, ack.URL+"/wechatpay/notify"))
	if err != nil {
		t.Fatal(err)
	}
	return s, c, func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		off = d
	}
}

// openNative opens a Native order of 100 fen under each of nos through
// the official client, its time_expire at expire.
func openNative(t *testing.T, c *wechatpay.Client, expire time.Time, nos ...string) {
	t.Helper()
	for _, no := range nos {
		if _, err := c.Prepay(context.Background(), wechatpay.PrepayRequest{
			Method: wechatpay.MethodNative, OutTradeNo: no, Description: "Premium", Total: 100, ExpireAt: expire,
		}); err != nil {
			t.Fatalf("prepay %s: %v", no, err)
		}
	}
}

// TestExpiredOrderCannotBePaid: past its time_expire an order cannot be
// paid at WeChat Pay; the simulator took the payment all the same, so tests
// of paygate's expiry could not meet a payer refused.
func TestExpiredOrderCannotBePaid(t *testing.T) {
	s, c, setOff := sim(t)
	ctx := context.Background()
	openNative(t, c, time.Now().Add(time.Minute), "PGexpire00000001", "PGexpire00000002")
	if _, err := s.Pay(ctx, "PGexpire00000001"); err != nil {
		t.Fatalf("pay before time_expire: %v", err)
	}
	setOff(2 * time.Minute)
	if d, err := s.Pay(ctx, "PGexpire00000002"); !errors.Is(err, wxsim.ErrNotPayable) {
		t.Errorf("pay after time_expire: got %+v, %v; want ErrNotPayable", d, err)
	}
	if tx, _ := s.Order("PGexpire00000002"); tx.TradeState != "NOTPAY" || tx.TransactionID != "" {
		t.Errorf("expired order at the simulator: got %s %q; want NOTPAY without a transaction", tx.TradeState, tx.TransactionID)
	}
	if tx, _ := s.Order("PGexpire00000001"); tx.TradeState != "SUCCESS" {
		t.Errorf("order paid in time: got %s; want SUCCESS", tx.TradeState)
	}
}

// TestTimeExpireAtLeastAMinuteAfterPlacement: WeChat Pay raises a
// time_expire earlier than a minute after the order is placed to that
// minute (its JSAPI/Native prepay documents: "支付结束时间不能早于下单时间后1
// 分钟 ... 系统将自动调整为下单时间后1分钟"). The simulator kept the deadline
// as sent, so a test of an order opened with less than a minute to go saw
// the payer refused where WeChat Pay takes the money.
func TestTimeExpireAtLeastAMinuteAfterPlacement(t *testing.T) {
	s, c, setOff := sim(t)
	ctx := context.Background()
	openNative(t, c, time.Now().Add(20*time.Second), "PGshort00000001", "PGshort00000002")
	setOff(40 * time.Second) // past the time_expire sent, within the minute
	if _, err := s.Pay(ctx, "PGshort00000001"); err != nil {
		t.Errorf("pay 40s after placing an order sent with a 20s time_expire: %v; want paid (WeChat Pay raises it to a minute)", err)
	}
	setOff(61 * time.Second)
	if _, err := s.Pay(ctx, "PGshort00000002"); !errors.Is(err, wxsim.ErrNotPayable) {
		t.Errorf("pay past the minute: %v; want ErrNotPayable", err)
	}
}

// TestRefundEndsAsWeChatPayEndsThem: a PROCESSING refund ends SUCCESS,
// CLOSED or ABNORMAL, as the refund query through the official client then
// reads it, once (a refund that ended is not ended again). A closed refund's
// amount is the order's to refund again, as WeChat Pay's refundable amount
// counts only refunds not closed; an abnormal one's stays taken (the money
// left the merchant). The simulator could only make a refund succeed, so
// tests of paygate's closed refunds had to forge the notification, and
// WeChat Pay (the simulator) then refused a refund of what the order had
// left.
func TestRefundEndsAsWeChatPayEndsThem(t *testing.T) {
	s, c, _ := sim(t)
	ctx := context.Background()
	const no = "PGrefundends0001"
	if _, err := c.Prepay(ctx, wechatpay.PrepayRequest{
		Method: wechatpay.MethodNative, OutTradeNo: no, Description: "Premium", Total: 1000, ExpireAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pay(ctx, no); err != nil {
		t.Fatal(err)
	}
	refund := func(rf string, fen int64) error {
		_, err := c.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: no, OutRefundNo: rf, Reason: "r", Refund: fen, Total: 1000})
		return err
	}
	steps := []struct {
		rf     string
		fen    int64
		end    func(context.Context, string) (*wxsim.Delivery, error)
		status string
	}{
		{"RFends01", 600, s.CloseRefund, wechatpay.RefundClosed},
		{"RFends02", 700, s.AbnormalRefund, wechatpay.RefundAbnormal}, // 600 closed: 1000 left
		{"RFends03", 300, s.CompleteRefund, wechatpay.RefundSuccess},  // 700 stuck: 300 left
	}
	for _, st := range steps {
		if err := refund(st.rf, st.fen); err != nil {
			t.Fatalf("refund %s of %d: %v", st.rf, st.fen, err)
		}
		d, err := st.end(ctx, st.rf)
		if err != nil || !d.Acked || d.OutRefundNo != st.rf {
			t.Fatalf("end %s: %+v %v", st.rf, d, err)
		}
		r, err := c.QueryRefund(ctx, st.rf)
		if err != nil || r.Status != st.status || r.Refund != st.fen || r.Total != 1000 {
			t.Errorf("query %s: %+v %v; want %s of %d", st.rf, r, err, st.status, st.fen)
		}
		if _, err := st.end(ctx, st.rf); !errors.Is(err, wxsim.ErrNotProcessing) {
			t.Errorf("end %s again: %v; want ErrNotProcessing", st.rf, err)
		}
	}
	if err := refund("RFends04", 1); err == nil {
		t.Error("a refund beyond what is left (700 abnormal, 300 succeeded of 1000) was taken")
	}
	if _, err := s.CloseRefund(ctx, "RFunknown01"); !errors.Is(err, wxsim.ErrUnknownRefund) {
		t.Errorf("close of an unknown refund: %v; want ErrUnknownRefund", err)
	}
}

// TestRepeatedPrepayWithOtherTimeExpireRefused: WeChat Pay answers a
// repeated out_trade_no whose parameters differ OUT_TRADE_NO_USED, its
// time_expire among them; the simulator compared every parameter but that
// one and handed back the order as first opened, so a test of paygate
// sending a repeat with a moved deadline saw it accepted.
func TestRepeatedPrepayWithOtherTimeExpireRefused(t *testing.T) {
	s, c, _ := sim(t)
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	req := wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGexpmoved000001", Description: "Premium", Total: 100, ExpireAt: deadline}
	first, err := c.Prepay(ctx, req)
	if err != nil {
		t.Fatalf("prepay: %v", err)
	}
	tests := []struct {
		name   string
		expire time.Time
		want   error
	}{
		{"same time_expire", deadline, nil},
		{"same instant in another zone", deadline.In(time.FixedZone("UTC+8", 8*3600)), nil},
		{"time_expire moved later", deadline.Add(5 * time.Minute), wechatpay.ErrNumberUsed},
		{"time_expire moved earlier", deadline.Add(-time.Minute), wechatpay.ErrNumberUsed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req
			r.ExpireAt = tt.expire
			got, err := c.Prepay(ctx, r)
			if !errors.Is(err, tt.want) || (tt.want != nil) != (err != nil) {
				t.Fatalf("repeat: %v; want %v", err, tt.want)
			}
			if err == nil && got.CodeURL != first.CodeURL {
				t.Errorf("repeat code_url %q; want the first's %q", got.CodeURL, first.CodeURL)
			}
		})
	}
	if n := s.OrderCount(); n != 1 {
		t.Errorf("orders at the simulator: %d; want 1", n)
	}
}

// TestNoAuthMethodRefused: a merchant that has not activated a product
// (Options.NoAuth) is refused a prepay in it, 403 NO_AUTH, and nothing is
// opened; the other method goes through.
func TestNoAuthMethodRefused(t *testing.T) {
	s, api := newSim(t, wxsim.Options{NoAuth: []string{"native"}})
	c, err := wechatpay.New(context.Background(), s.ClientConfig(api.URL, "https://x.example/n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodNative, OutTradeNo: "PGnoauth00000001", Description: "Premium", Total: 100})
	if !errors.Is(err, wechatpay.ErrRejected) || !strings.Contains(err.Error(), "NO_AUTH") {
		t.Errorf("native prepay of a merchant without Native Pay: %v; want ErrRejected naming NO_AUTH", err)
	}
	if _, err := c.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodJSAPI, OutTradeNo: "PGnoauth00000002", Description: "Premium", Total: 100, PayerOpenID: "oPayer"}); err != nil {
		t.Errorf("jsapi prepay: %v; want it opened", err)
	}
	if n := s.OrderCount(); n != 1 {
		t.Errorf("orders at the simulator: %d; want 1 (the jsapi one)", n)
	}
}

// TestRefundOfUnpaidOrderNotExists: WeChat Pay answers a refund of an
// order not paid (open or closed) 404 RESOURCE_NOT_EXISTS, "订单不存在"
// (its refund document: 请检查你的订单号是否正确且是否已支付，未支付的订单不能
// 发起退款): its refunds know only paid orders. The simulator answered 400
// INVALID_REQUEST, a code WeChat Pay keeps for a request against a paid
// order's rules, so paygate's tests never met the not-found it gets.
func TestRefundOfUnpaidOrderNotExists(t *testing.T) {
	s, c, _ := sim(t)
	ctx := context.Background()
	openNative(t, c, time.Now().Add(time.Hour), "PGunpaidrf000001", "PGunpaidrf000002")
	if err := c.CloseOrder(ctx, "PGunpaidrf000002"); err != nil {
		t.Fatalf("close: %v", err)
	}
	for _, tt := range []struct{ name, no string }{{"open", "PGunpaidrf000001"}, {"closed", "PGunpaidrf000002"}, {"never made", "PGunpaidrf000003"}} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: tt.no, OutRefundNo: "RF" + tt.no, Refund: 100, Total: 100})
			var ae *wechatpay.APIError
			if !errors.Is(err, wechatpay.ErrNotFound) || !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || ae.Code != "RESOURCE_NOT_EXISTS" {
				t.Errorf("refund of a %s unpaid order: %v; want 404 RESOURCE_NOT_EXISTS", tt.name, err)
			}
		})
	}
	if n := s.RefundCount(""); n != 0 {
		t.Errorf("refunds at the simulator: %d; want 0", n)
	}
}

// TestUnknownPathBareNotFound: WeChat Pay answers a path it does not serve
// 404 with an empty body, no error code. The simulator answered
// {"code":"NOT_FOUND"}, a code WeChat Pay's order and refund APIs never
// use, which paygate read as "no such order".
func TestUnknownPathBareNotFound(t *testing.T) {
	s, api := newSim(t, wxsim.Options{})
	for _, tt := range []struct{ method, uri string }{
		{http.MethodGet, "/v3/pay/transactions/id/4200000000000000000000000000?mchid=" + s.MchID()},
		{http.MethodGet, "/v3/pay/transactions/out-trade-no/PGunknownpath01/extra?mchid=" + s.MchID()},
	} {
		t.Run(tt.method+" "+tt.uri, func(t *testing.T) {
			resp := signed(t, s, s.MchID(), tt.method, api.URL, tt.uri, "", "")
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != http.StatusNotFound || body.Len() != 0 {
				t.Errorf("got %d %q; want 404 with an empty body", resp.StatusCode, body)
			}
		})
	}
}

// TestRefundRequestDisagreeingRefused: WeChat Pay refuses 400
// INVALID_REQUEST a refund whose out_refund_no another order's refund
// holds ("请求内容和上次请求不一致…商户订单号/商户退款单号已经被其他请求使用")
// and one whose amount.total is not the order's ("您的请求参数与订单信息不一致").
// The simulator answered the first 200 with the other order's refund, and
// the second PARAM_ERROR.
func TestRefundRequestDisagreeingRefused(t *testing.T) {
	s, c, _ := sim(t)
	ctx := context.Background()
	openNative(t, c, time.Now().Add(time.Hour), "PGrfdisagree0001", "PGrfdisagree0002")
	for _, no := range []string{"PGrfdisagree0001", "PGrfdisagree0002"} {
		if _, err := s.Pay(ctx, no); err != nil {
			t.Fatalf("pay %s: %v", no, err)
		}
	}
	if _, err := c.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: "PGrfdisagree0001", OutRefundNo: "RFdisagree01", Refund: 100, Total: 100}); err != nil {
		t.Fatalf("refund: %v", err)
	}
	for _, tt := range []struct {
		name string
		req  wechatpay.RefundRequest
	}{
		{"its number another order's refund's", wechatpay.RefundRequest{OutTradeNo: "PGrfdisagree0002", OutRefundNo: "RFdisagree01", Refund: 100, Total: 100}},
		{"a total not the order's", wechatpay.RefundRequest{OutTradeNo: "PGrfdisagree0002", OutRefundNo: "RFdisagree02", Refund: 100, Total: 200}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.CreateRefund(ctx, tt.req)
			var ae *wechatpay.APIError
			if !errors.Is(err, wechatpay.ErrRejected) || !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.Code != "INVALID_REQUEST" {
				t.Errorf("refund: %+v, %v; want 400 INVALID_REQUEST", got, err)
			}
		})
	}
	if n := s.RefundCount("PGrfdisagree0002"); n != 0 {
		t.Errorf("refunds of the second order: %d; want 0", n)
	}
}

// TestCloseOfUnknownOrderNoContent: WeChat Pay answers a close 204 for an
// order number it holds no order under, as for one it closed or had
// closed: its close checks the request's form, not the order (reported of
// APIv3's close through wechatpay-go: "重复关闭或者输入无效的订单号，接口仍然返回
// 204"). The simulator answered 404 ORDER_NOT_EXIST, an answer paygate
// then never met from WeChat Pay.
func TestCloseOfUnknownOrderNoContent(t *testing.T) {
	s, api := newSim(t, wxsim.Options{})
	body := `{"mchid":"` + s.MchID() + `"}`
	resp := signed(t, s, s.MchID(), http.MethodPost, api.URL, "/v3/pay/transactions/out-trade-no/PGneverclosed001/close", body, body)
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("close of an order never made: got %d; want 204", resp.StatusCode)
	}
	if n := s.OrderCount(); n != 0 {
		t.Errorf("orders at the simulator: %d; want 0 (a close makes none)", n)
	}
}
