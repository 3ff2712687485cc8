package wechatpay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestOfficialNotifyHandlerAcceptsSimulator proves the simulator's
// notifications faithful: the SDK's own notify handler verifies and decrypts
// them, in public-key mode and in platform-certificate mode.
func TestOfficialNotifyHandlerAcceptsSimulator(t *testing.T) {
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		mode     wxsim.SigningMode
		verifier auth.Verifier
	}{
		{name: "public key", mode: wxsim.SignPublicKey,
			verifier: verifiers.NewSHA256WithRSAPubkeyVerifier(keys.PublicKeyID, keys.PayKey.PublicKey)},
		{name: "platform certificate", mode: wxsim.SignCertificate,
			verifier: verifiers.NewSHA256WithRSAVerifier(core.NewCertificateMapWithList([]*x509Cert{keys.PlatformCert}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.verifier
			var mu sync.Mutex
			var txs []payments.Transaction
			var refunds []map[string]any
			var rig *rig
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handler, err := notify.NewRSANotifyHandler(rig.sim.APIv3Key(), v)
				if err != nil {
					t.Errorf("sdk handler: %v", err)
					w.WriteHeader(500)
					return
				}
				content := map[string]any{}
				req, err := handler.ParseNotifyRequest(r.Context(), r, &content)
				if err != nil {
					t.Errorf("sdk rejected the simulator's notification: %v", err)
					w.WriteHeader(400)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				switch req.EventType {
				case wechatpay.EventTransactionSuccess:
					var tx payments.Transaction
					if err := json.Unmarshal([]byte(req.Resource.Plaintext), &tx); err != nil {
						t.Errorf("transaction: %v", err)
					}
					txs = append(txs, tx)
				case wechatpay.EventRefundSuccess:
					refunds = append(refunds, content)
				default:
					t.Errorf("event %q", req.EventType)
				}
				w.WriteHeader(http.StatusNoContent)
			})
			sink := newSink(t, h)
			rig = newRig(t, wxsim.Options{SignWith: tt.mode}, sink.URL+"/wechatpay/notify", nil)
			ctx := context.Background()
			if _, err := rig.client.Prepay(ctx, wechatpay.PrepayRequest{Method: wechatpay.MethodJSAPI, OutTradeNo: "PGsdknotify01", Description: "d", Total: 4999, PayerOpenID: "o1"}); err != nil {
				t.Fatal(err)
			}
			d, err := rig.sim.Pay(ctx, "PGsdknotify01")
			if err != nil || !d.Acked || d.Attempts != 1 {
				t.Fatalf("pay delivery: got %+v, %v; want acknowledged at once", d, err)
			}
			if _, err := rig.client.CreateRefund(ctx, wechatpay.RefundRequest{OutTradeNo: "PGsdknotify01", OutRefundNo: "RFsdknotify01", Refund: 4999, Total: 4999}); err != nil {
				t.Fatal(err)
			}
			d, err = rig.sim.CompleteRefund(ctx, "RFsdknotify01")
			if err != nil || !d.Acked {
				t.Fatalf("refund delivery: got %+v, %v", d, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(txs) != 1 || *txs[0].OutTradeNo != "PGsdknotify01" || *txs[0].TradeState != "SUCCESS" || *txs[0].Amount.Total != 4999 || *txs[0].Mchid != rig.sim.MchID() {
				t.Errorf("transactions: got %v", txs)
			}
			if len(refunds) != 1 || refunds[0]["out_refund_no"] != "RFsdknotify01" || refunds[0]["refund_status"] != "SUCCESS" {
				t.Errorf("refunds: got %v", refunds)
			}
		})
	}
}

// TestNotifyVerifier checks each way a notification can be wrong, in the
// order an attacker or a misconfiguration would produce them.
func TestNotifyVerifier(t *testing.T) {
	r := newRig(t, wxsim.Options{}, "", nil) // ClientConfig configures both keys
	sim := r.sim
	tx := wxsim.Transaction{AppID: sim.AppID(), MchID: sim.MchID(), OutTradeNo: "PGverify00001", TradeState: "SUCCESS", Amount: wxsim.Amount{Total: 1}}
	build := func(spec wxsim.NotificationSpec) *wxsim.Notification {
		t.Helper()
		if spec.EventType == "" {
			spec.EventType, spec.OriginalType, spec.Summary, spec.Resource = wechatpay.EventTransactionSuccess, "transaction", "支付成功", tx
		}
		n, err := sim.BuildNotification(spec)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	now := time.Now()
	tests := []struct {
		name string
		make func() (http.Header, []byte)
		want error
	}{
		{name: "valid public key", make: func() (http.Header, []byte) { n := build(wxsim.NotificationSpec{}); return n.Header, n.Body }},
		{name: "valid platform certificate", make: func() (http.Header, []byte) {
			n := build(wxsim.NotificationSpec{Serial: mustKeys(t).PlatformSerial})
			return n.Header, n.Body
		}},
		{name: "missing signature", make: func() (http.Header, []byte) {
			n := build(wxsim.NotificationSpec{})
			n.Header.Del("Wechatpay-Signature")
			return n.Header, n.Body
		}, want: wechatpay.ErrMissingHeaders},
		{name: "unknown serial", make: func() (http.Header, []byte) {
			n := build(wxsim.NotificationSpec{Serial: "PUB_KEY_ID_0000000000000000000000000000"})
			return n.Header, n.Body
		}, want: wechatpay.ErrUnknownSerial},
		{name: "stale timestamp", make: func() (http.Header, []byte) {
			n := build(wxsim.NotificationSpec{Timestamp: now.Add(-6 * time.Minute)})
			return n.Header, n.Body
		}, want: wechatpay.ErrStaleTimestamp},
		{name: "future timestamp", make: func() (http.Header, []byte) {
			n := build(wxsim.NotificationSpec{Timestamp: now.Add(6 * time.Minute)})
			return n.Header, n.Body
		}, want: wechatpay.ErrStaleTimestamp},
		{name: "tampered body", make: func() (http.Header, []byte) {
			n := build(wxsim.NotificationSpec{})
			return n.Header, []byte(strings.Replace(string(n.Body), "支付成功", "支付失败", 1))
		}, want: wechatpay.ErrBadSignature},
		{name: "re-encoded json is not the signed bytes", make: func() (http.Header, []byte) {
			n := build(wxsim.NotificationSpec{})
			var m map[string]any
			_ = json.Unmarshal(n.Body, &m)
			b, _ := json.MarshalIndent(m, "", " ")
			return n.Header, b
		}, want: wechatpay.ErrBadSignature},
		{name: "signature of another notification", make: func() (http.Header, []byte) {
			a, b := build(wxsim.NotificationSpec{}), build(wxsim.NotificationSpec{})
			a.Header.Set("Wechatpay-Signature", b.Header.Get("Wechatpay-Signature"))
			return a.Header, a.Body
		}, want: wechatpay.ErrBadSignature},
		{name: "signed but encrypted with another key", make: func() (http.Header, []byte) {
			n := build(wxsim.NotificationSpec{APIv3Key: strings.Repeat("x", 32)})
			return n.Header, n.Body
		}, want: wechatpay.ErrDecrypt},
		{name: "signed but not json", make: func() (http.Header, []byte) {
			body := []byte("not json")
			return sim.Sign(body, now, mustKeys(t).PublicKeyID), body
		}, want: wechatpay.ErrMalformed},
		{name: "signed with a bad nonce length", make: func() (http.Header, []byte) {
			body := []byte(`{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"short","ciphertext":"AAAA"}}`)
			return sim.Sign(body, now, mustKeys(t).PublicKeyID), body
		}, want: wechatpay.ErrDecrypt},
	}
	nv := r.client.NotifyVerifier()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := tt.make()
			n, err := nv.Verify(context.Background(), h, body, time.Now())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v; want nil", err)
				}
				var got wechatpay.TransactionResource
				if err := json.Unmarshal(n.Plaintext, &got); err != nil || got.OutTradeNo != "PGverify00001" {
					t.Errorf("plaintext: got %s, %v", n.Plaintext, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v; want %v", err, tt.want)
			}
		})
	}
}
