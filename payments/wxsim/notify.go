package wxsim

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
)

// Notification is one signed, encrypted notification, ready to POST.
type Notification struct {
	ID     string
	URL    string
	Header http.Header
	Body   []byte
}

// NotificationSpec describes a notification to build. Zero values take the
// real thing's: the configured APIv3 key, now, the current signing key.
type NotificationSpec struct {
	ID           string // default: a fresh UUID
	EventType    string // e.g. TRANSACTION.SUCCESS
	Summary      string
	OriginalType string // transaction | refund
	Resource     any    // marshalled to JSON, then encrypted

	APIv3Key  string    // encrypt with another key (an undecryptable notification)
	Timestamp time.Time // sign at another time (a stale notification)
	Serial    string    // name another serial (signed with the public key)
}

// Delivery records one notification's delivery.
type Delivery struct {
	ID          string
	EventType   string
	URL         string
	OutTradeNo  string
	OutRefundNo string
	Attempts    int
	LastStatus  int
	Acked       bool
	Err         string
}

// BuildNotification signs and encrypts a notification like WeChat Pay does.
func (s *Server) BuildNotification(spec NotificationSpec) (*Notification, error) {
	plain, err := json.Marshal(spec.Resource)
	if err != nil {
		return nil, fmt.Errorf("wxsim: resource: %w", err)
	}
	key := spec.APIv3Key
	if key == "" {
		key = s.apiv3Key
	}
	block, err := aes.NewCipher([]byte(key))
	if err != nil {
		return nil, fmt.Errorf("wxsim: apiv3 key: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("wxsim: gcm: %w", err)
	}
	nonce := randomHex(6) // 12 characters, used as the 12 nonce bytes
	ct := gcm.Seal(nil, []byte(nonce), plain, []byte(spec.OriginalType))
	id := spec.ID
	if id == "" {
		id = newUUID()
	}
	ts := spec.Timestamp
	if ts.IsZero() {
		ts = s.now()
	}
	env := map[string]any{
		"id":            id,
		"create_time":   ts.In(cst).Format(time.RFC3339),
		"resource_type": "encrypt-resource",
		"event_type":    spec.EventType,
		"summary":       spec.Summary,
		"resource": map[string]string{
			"original_type":   spec.OriginalType,
			"algorithm":       wechatpay.AlgorithmAESGCM,
			"ciphertext":      base64.StdEncoding.EncodeToString(ct),
			"associated_data": spec.OriginalType,
			"nonce":           nonce,
		},
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("wxsim: envelope: %w", err)
	}
	var h http.Header
	if spec.Serial != "" {
		h = s.Sign(body, ts, spec.Serial)
	} else {
		key, serial := s.signer("")
		h = signWith(key, serial, body, ts)
	}
	h.Set("Content-Type", "application/json")
	return &Notification{ID: id, Header: h, Body: body}, nil
}

// Deliver POSTs n once to url and returns the HTTP status.
func (s *Server) Deliver(ctx context.Context, url string, n *Notification) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(n.Body))
	if err != nil {
		return 0, fmt.Errorf("wxsim: notify request: %w", err)
	}
	for k, v := range n.Header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "Mozilla/4.0 (wxsim)")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("wxsim: notify: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// deliver sends n until acknowledged (2xx) or attempts run out, like WeChat
// Pay's retry schedule, compressed. Each attempt after the first is the same
// notification (id and body) signed anew when it is sent, as WeChat Pay
// sends a retry: the first attempt's timestamp is past the receiver's
// 5 minute window for every retry after that long.
func (s *Server) deliver(ctx context.Context, n *Notification, d Delivery) Delivery {
	for d.Attempts < s.opts.NotifyAttempts {
		d.Attempts++
		if d.Attempts > 1 {
			n = s.resign(n)
		}
		status, err := s.Deliver(ctx, n.URL, n)
		d.LastStatus = status
		if err != nil {
			d.Err = err.Error()
		} else {
			d.Err = ""
		}
		if err == nil && status >= 200 && status < 300 {
			d.Acked = true
			break
		}
		if d.Attempts >= s.opts.NotifyAttempts {
			break
		}
		t := time.NewTimer(s.opts.NotifyRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			d.Err = ctx.Err().Error()
			s.record(d)
			return d
		case <-s.closed:
			t.Stop()
			d.Err = ErrClosed.Error()
			s.record(d)
			return d
		case <-t.C:
		}
	}
	s.record(d)
	return d
}

// resign returns n signed now with the key of its serial, under a fresh
// nonce: a retry of n as WeChat Pay sends one.
func (s *Server) resign(n *Notification) *Notification {
	m := *n
	m.Header = n.Header.Clone()
	for k, v := range s.Sign(n.Body, s.now(), n.Header.Get(wechatpay.HeaderSerial)) {
		m.Header[k] = v
	}
	return &m
}

func (s *Server) record(d Delivery) {
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	s.log.Info("wxsim: notification delivered", "id", d.ID, "event", d.EventType, "url", d.URL, "attempts", d.Attempts, "status", d.LastStatus, "acked", d.Acked)
	if s.opts.Delivered != nil {
		s.opts.Delivered(d)
	}
}

// markPaid makes an unpaid order paid, without notifying. An order past its
// time_expire cannot be paid.
func (s *Server) markPaid(no string) (Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[no]
	if !ok {
		return Transaction{}, fmt.Errorf("%w: %s", ErrUnknownOrder, no)
	}
	if o.tx.TradeState != "NOTPAY" {
		return o.tx, fmt.Errorf("%w: %s is %s", ErrNotPayable, no, o.tx.TradeState)
	}
	now := s.now()
	if !o.expire.IsZero() && !now.Before(o.expire) {
		// As at WeChat Pay: past time_expire the payer cannot pay; the
		// order stays NOTPAY until the merchant closes it.
		return o.tx, fmt.Errorf("%w: %s expired at %s", ErrNotPayable, no, o.expire.Format(time.RFC3339))
	}
	o.tx.TradeState, o.tx.TradeStateDesc = "SUCCESS", "支付成功"
	o.tx.TransactionID = "4200" + now.In(cst).Format("20060102") + randomDigits(16)
	o.tx.BankType = "OTHERS"
	o.tx.SuccessTime = now.In(cst).Format(time.RFC3339)
	if o.tx.Payer == nil {
		o.tx.Payer = &Payer{OpenID: "oSim" + randomHex(12)}
	}
	o.tx.Amount.PayerTotal = o.tx.Amount.Total
	o.tx.Amount.PayerCurrency = "CNY"
	s.byTxID[o.tx.TransactionID] = o
	return o.tx, nil
}

// Pay pays an unpaid order, as a payer would, and delivers its signed
// TRANSACTION.SUCCESS notification to the order's notify_url (retrying until
// acknowledged or out of attempts). It returns the delivery record. An order
// past its time_expire is ErrNotPayable, as the real service refuses the payer.
func (s *Server) Pay(ctx context.Context, outTradeNo string) (*Delivery, error) {
	tx, err := s.markPaid(outTradeNo)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	url := s.orders[outTradeNo].notifyURL
	s.mu.Unlock()
	n, err := s.BuildNotification(NotificationSpec{
		EventType: wechatpay.EventTransactionSuccess, Summary: "支付成功", OriginalType: "transaction", Resource: tx,
	})
	if err != nil {
		return nil, err
	}
	n.URL = url
	d := s.deliver(ctx, n, Delivery{ID: n.ID, EventType: wechatpay.EventTransactionSuccess, URL: url, OutTradeNo: outTradeNo})
	return &d, nil
}

// RefundResource is the decrypted resource of a REFUND.* notification.
type RefundResource struct {
	MchID               string `json:"mchid"`
	TransactionID       string `json:"transaction_id"`
	OutTradeNo          string `json:"out_trade_no"`
	RefundID            string `json:"refund_id"`
	OutRefundNo         string `json:"out_refund_no"`
	RefundStatus        string `json:"refund_status"`
	SuccessTime         string `json:"success_time,omitempty"`
	UserReceivedAccount string `json:"user_received_account"`
	Amount              struct {
		Total       int64 `json:"total"`
		Refund      int64 `json:"refund"`
		PayerTotal  int64 `json:"payer_total"`
		PayerRefund int64 `json:"payer_refund"`
	} `json:"amount"`
}

// CompleteRefund finishes a PROCESSING refund with SUCCESS and delivers its
// REFUND.SUCCESS notification.
func (s *Server) CompleteRefund(ctx context.Context, outRefundNo string) (*Delivery, error) {
	return s.settleRefund(ctx, outRefundNo, wechatpay.RefundSuccess)
}

// CloseRefund ends a PROCESSING refund CLOSED, as WeChat Pay closes one it
// could not make, and delivers its REFUND.CLOSED notification. Its amount
// is the order's to refund again: WeChat Pay refuses a refund above what
// the order's refunds not closed leave, and a closed one leaves it all.
func (s *Server) CloseRefund(ctx context.Context, outRefundNo string) (*Delivery, error) {
	return s.settleRefund(ctx, outRefundNo, wechatpay.RefundClosed)
}

// AbnormalRefund ends a PROCESSING refund ABNORMAL (the payer's account or
// card cannot take it: the merchant re-handles it on its platform) and
// delivers its REFUND.ABNORMAL notification. Its amount stays taken from
// what the order can refund.
func (s *Server) AbnormalRefund(ctx context.Context, outRefundNo string) (*Delivery, error) {
	return s.settleRefund(ctx, outRefundNo, wechatpay.RefundAbnormal)
}

// settleRefund moves a PROCESSING refund to status (SUCCESS, CLOSED or
// ABNORMAL), as queries then read it, and delivers its notification.
func (s *Server) settleRefund(ctx context.Context, outRefundNo, status string) (*Delivery, error) {
	event, summary := wechatpay.EventRefundSuccess, "退款成功"
	switch status {
	case wechatpay.RefundClosed:
		event, summary = wechatpay.EventRefundClosed, "退款关闭"
	case wechatpay.RefundAbnormal:
		event, summary = wechatpay.EventRefundAbnormal, "退款异常"
	}
	s.mu.Lock()
	rf, ok := s.refunds[outRefundNo]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrUnknownRefund, outRefundNo)
	}
	if rf.r.Status != "PROCESSING" {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s is %s", ErrNotProcessing, outRefundNo, rf.r.Status)
	}
	rf.r.Status = status
	if status == wechatpay.RefundSuccess {
		rf.r.SuccessTime = s.now().In(cst).Format(time.RFC3339)
	}
	if o := s.orders[rf.r.OutTradeNo]; o != nil && status == wechatpay.RefundClosed {
		o.refunded -= rf.r.Amount.Refund
	}
	res := RefundResource{
		MchID: s.opts.MchID, TransactionID: rf.r.TransactionID, OutTradeNo: rf.r.OutTradeNo,
		RefundID: rf.r.RefundID, OutRefundNo: rf.r.OutRefundNo, RefundStatus: status,
		SuccessTime: rf.r.SuccessTime, UserReceivedAccount: rf.r.UserReceivedAccount,
	}
	res.Amount.Total, res.Amount.Refund = rf.r.Amount.Total, rf.r.Amount.Refund
	res.Amount.PayerTotal, res.Amount.PayerRefund = rf.r.Amount.PayerTotal, rf.r.Amount.PayerRefund
	url := rf.notifyURL
	s.mu.Unlock()
	n, err := s.BuildNotification(NotificationSpec{
		EventType: event, Summary: summary, OriginalType: "refund", Resource: res,
	})
	if err != nil {
		return nil, err
	}
	n.URL = url
	d := s.deliver(ctx, n, Delivery{ID: n.ID, EventType: event, URL: url, OutTradeNo: res.OutTradeNo, OutRefundNo: outRefundNo})
	return &d, nil
}

// Order returns the simulator's view of an order.
func (s *Server) Order(outTradeNo string) (Transaction, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[outTradeNo]
	if !ok {
		return Transaction{}, false
	}
	tx := o.tx
	if tx.Payer != nil {
		p := *tx.Payer
		tx.Payer = &p
	}
	return tx, true
}

// Refund returns the simulator's view of a refund.
func (s *Server) Refund(outRefundNo string) (Refund, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rf, ok := s.refunds[outRefundNo]
	if !ok {
		return Refund{}, false
	}
	return rf.r, true
}

// OrderCount is the number of distinct orders the simulator holds.
func (s *Server) OrderCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.orders)
}

// RefundCount is the number of distinct refunds of outTradeNo ("" for all).
func (s *Server) RefundCount(outTradeNo string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, rf := range s.refunds {
		if outTradeNo == "" || rf.r.OutTradeNo == outTradeNo {
			n++
		}
	}
	return n
}

// Prepays counts the prepay requests the simulator accepted for outTradeNo
// (repeats of one order included).
func (s *Server) Prepays(outTradeNo string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prepays[outTradeNo]
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []RequestLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestLog(nil), s.requests...)
}

// Deliveries returns a copy of the delivery log.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

func newUUID() string {
	b := []byte(randomHex(16))
	return fmt.Sprintf("%s-%s-4%s-a%s-%s", b[0:8], b[8:12], b[13:16], b[17:20], b[20:32])
}
