package payments_test

import (
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
)

// TestRepeatNamingMethodOffWhilePayingPastDeadline: a QR order made while
// both methods were offered, past its expires_at, its payer entering their
// password (USERPAYING), asked for again once the caller is offered jsapi
// alone, naming native as a model re-asking copies its earlier call. Left
// out, pay_method gives user_paying (TestAskedAgainPastDeadlineWhilePayingHandsNoPayment);
// named, the call was asked about: "pay_method "native" is not offered
// here ... tell the user which they can use", a clarifying question about
// a QR code the user was paying at that moment. It is answered as when
// left out, as an open order of that method is (TestRepeatNamingMethodNoLongerOffered).
func TestRepeatNamingMethodOffWhilePayingPastDeadline(t *testing.T) {
	var b *payingBackend
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		b = &payingBackend{Client: o.Backend.(*wechatpay.Client)}
		o.Backend = b
	}})
	tools := newTools(e)
	c := caller("oUser-paying-method-off")
	first := call(t, tools, c, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
	no, _ := first.result["order_no"].(string)
	if first.result["status"] != "awaiting_payment" || no == "" {
		t.Fatalf("native order: %s", first.out.Result)
	}
	b.paying.Store(true)
	e.clock.Advance(payments.DefaultOrderTTL + time.Second)
	c.PayMethods = []string{"jsapi"} // restarted with payments.pay_methods: [jsapi]
	for _, args := range []string{
		`{"sku":"premium-monthly","pay_method":"native"}`,
		`{"sku":"premium-monthly","payment_method":"native"}`,
	} {
		got := call(t, tools, c, "create_order", args)
		if got.result["status"] != "user_paying" || got.result["order_no"] != no || got.out.Action != nil {
			t.Errorf("%s while the payer pays the QR order past its deadline: %s %s; want user_paying for %s, no action", args, got.out.Result, got.out.Action, no)
		}
	}
	if n := b.closes.Load(); n != 0 {
		t.Errorf("%d closes at WeChat Pay; want none under the paying user", n)
	}
	b.paying.Store(false) // the payer gave up: expired, and a new purchase naming native is asked about
	got := call(t, tools, c, "create_order", `{"sku":"premium-monthly","pay_method":"native"}`)
	if got.result["status"] != "needs_clarification" {
		t.Errorf("naming native once the payer gave up: %s; want needs_clarification", got.out.Result)
	}
}
