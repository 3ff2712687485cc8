package wechatpay_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestPrepayAnswerWithoutItsIDIsNotKnown: a signed 200 to a prepay that
// lacks the prepay_id (JSAPI) or code_url (Native) opened an order WeChat
// Pay may hold, and gave the payer nothing to pay it with. It is an outcome
// not known (ErrTemporary: the reconciler asks by the same number), never a
// panic (the SDK's PrepayWithRequestPayment dereferenced the missing
// prepay_id on the bot's request goroutine) nor a payable order without a
// code_url.
func TestPrepayAnswerWithoutItsIDIsNotKnown(t *testing.T) {
	keys := mustKeys(t)
	sim, err := wxsim.New(wxsim.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	for _, tt := range []struct {
		name   string
		method wechatpay.PayMethod
		answer string
	}{
		{"jsapi without prepay_id", wechatpay.MethodJSAPI, `{}`},
		{"jsapi with an empty prepay_id", wechatpay.MethodJSAPI, `{"prepay_id":""}`},
		{"native without code_url", wechatpay.MethodNative, `{}`},
		{"native with an empty code_url", wechatpay.MethodNative, `{"code_url":""}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			api := newSink(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				calls++
				body := []byte(tt.answer)
				for k, v := range sim.Sign(body, time.Now(), keys.PublicKeyID) {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(body)
			}))
			cfg := sim.ClientConfig(api.URL, "https://bot.example.com/wechatpay/notify")
			cfg.RetryBackoff = time.Millisecond
			c, err := wechatpay.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Prepay(context.Background(), wechatpay.PrepayRequest{
				Method: tt.method, OutTradeNo: "PG20240101noid0001", Description: "Premium", Total: 4999,
				PayerOpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
			})
			if !errors.Is(err, wechatpay.ErrTemporary) || errors.Is(err, wechatpay.ErrRejected) || res != nil {
				t.Fatalf("prepay answered 200 %s: got %+v, %v; want no result and ErrTemporary alone", tt.answer, res, err)
			}
			if calls != 1 {
				t.Errorf("prepay sent %d times; want 1 (the order exists: asking again is the reconciler's query)", calls)
			}
		})
	}
}
