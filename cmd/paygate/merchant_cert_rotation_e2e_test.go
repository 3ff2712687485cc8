package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestMerchantCertificateRotation follows the README's change of the
// merchant API certificate (mch_cert_serial and mch_private_key_file
// together): an order made and paid under the old certificate, and one
// made and left unpaid, then paygate restarted with the new pair and the
// old certificate revoked at WeChat Pay. The paid order is refunded, the
// unpaid one handed back payable, both under the new certificate only:
// nothing paygate keeps is bound to the certificate an order was made
// under.
func TestMerchantCertificateRotation(t *testing.T) {
	cs := newCrashSim(t)
	var orderNo string
	up := refundProvider(t, &orderNo, "changed my mind")
	dir := t.TempDir()
	oldKeyFile, pubFile := cs.writeKeys(t, dir)
	newKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(newKey)
	if err != nil {
		t.Fatal(err)
	}
	newKeyFile := filepath.Join(dir, "new-key.pem")
	writeFile(t, newKeyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	const newSerial = "5A1B2C3D4E5F60718293A4B5C6D7E8F901234567"

	var h atomic.Pointer[http.Handler]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	start := func(serial, keyFile string) *app {
		t.Helper()
		cfg := wechatpayConfig(t, cs, dir, up.URL, keyFile, cs.APIv3Key(), publicKeyYAML(cs, pubFile), front.URL)
		cfg.Payments.WeChatPay.MchCertSerial = serial // keyFile's certificate
		a, err := newApp(cfg, io.Discard, "")
		if err != nil {
			t.Fatal(err)
		}
		hh := a.server.Handler()
		h.Store(&hh)
		return a
	}
	ctx := context.Background()
	const payer, waiter = "oCert-payer", "oCert-waiter"
	order := func(user string) string {
		t.Helper()
		ans := chatWith(t, front.URL, e2eClientKey, user, "premium please")
		no := ans.Get("paygate.actions.0.order.order_no").Str
		if no == "" {
			t.Fatalf("no order for %s: %s", user, ans.Raw)
		}
		return no
	}

	// Under the old certificate.
	first := start(cs.Keys().MerchantSerial, oldKeyFile)
	orderNo = order(payer)
	if d, err := cs.Pay(ctx, orderNo); err != nil || !d.Acked {
		t.Fatalf("pay %s: %+v %v", orderNo, d, err)
	}
	unpaid := order(waiter)
	first.close()

	// The new pair; the old certificate revoked once no replica uses it.
	cs.AddMerchantCertificate(newSerial, &newKey.PublicKey)
	second := start(newSerial, newKeyFile)
	t.Cleanup(second.close)
	cs.RevokeMerchantCertificate(cs.Keys().MerchantSerial)
	requestsBefore := len(cs.Requests())

	act := chatWith(t, front.URL, e2eClientKey, payer, "I want a refund").Get(`paygate.actions.#(type=="refund_proposed")`)
	if act.Get("refund.order_no").Str != orderNo {
		t.Fatalf("refund proposal: %s", act.Raw)
	}
	status, body := httpCall(t, http.MethodPost, front.URL+act.Get("refund.confirm_url").Str, "Bearer "+e2eClientKey, payer)
	if status != http.StatusOK || cs.RefundCount(orderNo) != 1 {
		t.Errorf("the refund of an order paid under the old certificate: %d %s, %d refunds at WeChat Pay; want it made", status, body.Raw, cs.RefundCount(orderNo))
	}
	status, body = httpCall(t, http.MethodGet, front.URL+"/v1/paygate/orders/"+unpaid, "Bearer "+e2eClientKey, waiter)
	rp := body.Get("request_payment")
	if status != http.StatusOK || !rp.Exists() {
		t.Fatalf("the unpaid order made under the old certificate: %d %s; want it payable", status, body.Raw)
	}
	msg := rp.Get("appId").Str + "\n" + rp.Get("timeStamp").Str + "\n" + rp.Get("nonceStr").Str + "\n" + rp.Get("package").Str + "\n"
	if err := verifyPaySign(&newKey.PublicKey, msg, rp.Get("paySign").Str); err != nil {
		t.Errorf("its paySign does not verify under the new certificate: %v (%s)", err, rp.Raw)
	}
	for _, r := range cs.Requests()[requestsBefore:] {
		if r.Status == http.StatusUnauthorized || r.Code == "SIGN_ERROR" {
			t.Errorf("WeChat Pay refused %s %s after the change: %d %s", r.Op, r.OutTradeNo, r.Status, r.Code)
		}
	}
}

// verifyPaySign checks a wx.requestPayment paySign over msg with pub.
func verifyPaySign(pub *rsa.PublicKey, msg, paySign string) error {
	sig, err := base64.StdEncoding.DecodeString(paySign)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(msg))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
}
