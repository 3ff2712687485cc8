package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestAPIv3KeyRotationNotifications follows the README's change of the
// APIv3 key (payments.wechatpay credentials of the same merchant) on
// backend wechatpay against the simulator: paygate runs with the new key
// in apiv3_key and the one WeChat Pay still uses in apiv3_previous_key.
// A payment WeChat Pay encrypted under the old key, and one under the new,
// are both acknowledged and pay their orders; one under a third key is
// still a 500 FAIL, its order left unpaid.
func TestAPIv3KeyRotationNotifications(t *testing.T) {
	const newKey = "NEWapiv3key-0123456789abcdefghij"
	cs := newCrashSim(t)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	dir := t.TempDir()
	keyFile, pubFile := cs.writeKeys(t, dir)
	var h http.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	// WeChat Pay's key so far stays beside the new one.
	previous := `apiv3_previous_key: "` + cs.APIv3Key() + `"
    ` + publicKeyYAML(cs, pubFile)
	cfg := wechatpayConfig(t, cs, dir, up.URL, keyFile, newKey, previous, front.URL)
	a, err := newApp(cfg, io.Discard, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	h = a.server.Handler()
	ctx := context.Background()
	order := func(user string) string {
		t.Helper()
		ans := chatWith(t, front.URL, e2eClientKey, user, "premium please")
		no := ans.Get("paygate.actions.0.order.order_no").Str
		if no == "" {
			t.Fatalf("no order: %s", ans.Raw)
		}
		return no
	}
	status := func(no string) store.OrderStatus {
		t.Helper()
		o, err := a.store.GetOrder(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		return o.Status
	}

	// Encrypted under the old key (the simulator's), as WeChat Pay retries
	// one made before the change.
	oldNo := order("oRotate-user-old")
	if d, err := cs.Pay(ctx, oldNo); err != nil || !d.Acked {
		t.Errorf("a payment encrypted under the previous key: %+v, %v; want it acknowledged", d, err)
	}
	if s := status(oldNo); s != store.StatusPaid {
		t.Errorf("its order: %s; want paid", s)
	}

	deliver := func(no, key string) int {
		t.Helper()
		tx, ok := cs.Order(no)
		if !ok {
			t.Fatalf("the simulator has no order %s", no)
		}
		tx.TradeState, tx.TradeStateDesc, tx.TransactionID = "SUCCESS", "支付成功", "4200"+no[len(no)-10:]
		tx.SuccessTime = time.Now().Format(time.RFC3339)
		n, err := cs.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventTransactionSuccess, Summary: "支付成功",
			OriginalType: "transaction", Resource: tx, APIv3Key: key})
		if err != nil {
			t.Fatal(err)
		}
		code, err := cs.Deliver(ctx, front.URL+"/wechatpay/notify", n)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	// Under a third key: the key is wrong, 500 FAIL, nothing changed.
	otherNo := order("oRotate-user-other")
	if code := deliver(otherNo, "OTHERkey-0123456789abcdefghijklm"); code != http.StatusInternalServerError {
		t.Errorf("a payment under neither key: %d; want 500", code)
	}
	if s := status(otherNo); s == store.StatusPaid {
		t.Errorf("its order: %s; want it left unpaid", s)
	}
	// Under the new key, once the merchant platform has it.
	if code := deliver(otherNo, newKey); code/100 != 2 {
		t.Errorf("a payment encrypted under the new key: %d; want 2xx", code)
	}
	if s := status(otherNo); s != store.StatusPaid {
		t.Errorf("its order: %s; want paid", s)
	}
}
