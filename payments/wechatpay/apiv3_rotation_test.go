package wechatpay_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestAPIv3KeyRotation: when the merchant sets a new APIv3 key on the
// merchant platform, notifications WeChat Pay encrypted before the change
// (retried for up to a day) still carry the old key's ciphertext. With the
// new key in APIv3Key and the outgoing one in APIv3PreviousKey, both open;
// a third key's does not, and is still ErrDecryptKey.
func TestAPIv3KeyRotation(t *testing.T) {
	const newKey = "NEWapiv3key-0123456789abcdefghij"
	var oldKey string
	r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) {
		oldKey = c.APIv3Key
		c.APIv3Key, c.APIv3PreviousKey = newKey, oldKey
	})
	build := func(key, no string) ([]byte, error) {
		tx := wxsim.Transaction{AppID: r.sim.AppID(), MchID: r.sim.MchID(), OutTradeNo: no, TradeState: "SUCCESS", Amount: wxsim.Amount{Total: 1}}
		n, err := r.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventTransactionSuccess, OriginalType: "transaction", Resource: tx, APIv3Key: key})
		if err != nil {
			t.Fatal(err)
		}
		note, err := r.client.NotifyVerifier().Verify(context.Background(), n.Header, n.Body, time.Now())
		if err != nil {
			return nil, err
		}
		return note.Plaintext, nil
	}
	for _, tt := range []struct{ name, key, no string }{
		{"under the old key, before the change", oldKey, "PGrotate00001"},
		{"under the new key", newKey, "PGrotate00002"},
	} {
		pt, err := build(tt.key, tt.no)
		if err != nil {
			t.Errorf("%s: %v; want it opened", tt.name, err)
			continue
		}
		var got wechatpay.TransactionResource
		if err := json.Unmarshal(pt, &got); err != nil || got.OutTradeNo != tt.no {
			t.Errorf("%s: plaintext %s, %v", tt.name, pt, err)
		}
	}
	if _, err := build("OTHERkey-0123456789abcdefghijklm", "PGrotate00003"); !errors.Is(err, wechatpay.ErrDecryptKey) {
		t.Errorf("under a third key: %v; want ErrDecryptKey", err)
	}
}
