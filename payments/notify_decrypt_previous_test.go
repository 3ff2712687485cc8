package payments_test

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestUndecryptableNotificationNamesBothKeys: during an APIv3 key's change
// (apiv3_previous_key set) a notification neither key opens is answered
// 500 FAIL with an alert that names both keys: "check apiv3_key" alone
// sent the operator to the new key when the outgoing one, mistyped or
// swapped with it, may be the wrong one. No key is printed.
func TestUndecryptableNotificationNamesBothKeys(t *testing.T) {
	const prev = "PREVapiv3-0123456789abcdefghijkl"
	e := newEnv(t, envOptions{client: func(c *wechatpay.Config) { c.APIv3PreviousKey = prev }})
	o := e.create("oUser-decrypt-both", 1)
	n := e.buildPayment(e.paidTx(o), func(s *wxsim.NotificationSpec) { s.APIv3Key = strings.Repeat("w", 32) })
	before := len(e.logs.String())
	if status, resp := e.post(n.Header, n.Body); status != 500 {
		t.Errorf("answer: %d %s; want 500 FAIL", status, resp)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment {
		t.Errorf("order: %s; want awaiting_payment", got.Status)
	}
	log := e.logs.String()[before:]
	if !strings.Contains(log, `"alert":true`) || !strings.Contains(log, "apiv3_previous_key") {
		t.Errorf("the alert does not name apiv3_previous_key; log:\n%s", log)
	}
	if strings.Contains(log, prev) {
		t.Errorf("the log prints the previous key:\n%s", log)
	}
}
