package wechatpay_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestPlatformCertFileWithSeveralCertificates: during a rotation of WeChat
// Pay's platform certificates an operator keeps the outgoing and the
// incoming certificate in one PEM file, as a CA bundle is kept. Every
// certificate in it verifies notifications: read as its first block only,
// the one WeChat Pay signs with after the switch was silently left out,
// and every notification was refused (unknown serial) while WeChat Pay
// retried it for a day. Either order of the two certificates.
func TestPlatformCertFileWithSeveralCertificates(t *testing.T) {
	keys := mustKeys(t)
	oldKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x5157F09E), Subject: pkix.Name{CommonName: "outgoing platform certificate"},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	oldDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &oldKey.PublicKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	block := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	for _, tt := range []struct {
		name  string
		order [][]byte
	}{
		{"outgoing first", [][]byte{oldDER, keys.PlatformCert.Raw}},
		{"incoming first", [][]byte{keys.PlatformCert.Raw, oldDER}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var bundle []byte
			for _, der := range tt.order {
				bundle = append(bundle, block(der)...)
			}
			file := filepath.Join(t.TempDir(), "wechatpay_platform.pem")
			if err := os.WriteFile(file, bundle, 0o600); err != nil {
				t.Fatal(err)
			}
			r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) {
				c.PublicKey, c.PublicKeyID = nil, ""
				c.PlatformCerts, c.PlatformCertFiles = nil, []string{file}
			})
			tx := wxsim.Transaction{AppID: r.sim.AppID(), MchID: r.sim.MchID(), OutTradeNo: "PGbundle00001", TradeState: "SUCCESS", Amount: wxsim.Amount{Total: 1}}
			n, err := r.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventTransactionSuccess, OriginalType: "transaction",
				Resource: tx, Serial: keys.PlatformSerial})
			if err != nil {
				t.Fatal(err)
			}
			note, err := r.client.NotifyVerifier().Verify(context.Background(), n.Header, n.Body, time.Now())
			if err != nil {
				t.Fatalf("notification signed with the file's certificate %s: %v", keys.PlatformSerial, err)
			}
			var got wechatpay.TransactionResource
			if err := json.Unmarshal(note.Plaintext, &got); err != nil || got.OutTradeNo != "PGbundle00001" {
				t.Errorf("plaintext: got %s, %v", note.Plaintext, err)
			}
		})
	}
}
