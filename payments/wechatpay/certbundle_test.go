package wechatpay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
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

// TestPlatformCertFileCutShort: a platform certificate file in which a
// certificate is cut short (pasted without its last lines, the END line
// among them) is refused at start, naming the file. pem.Decode passes over
// a block it cannot read, so the rotation's incoming certificate, pasted
// after the outgoing one and cut, was left out without a word: serve
// started, and every notification signed with it was refused as from an
// unknown serial.
func TestPlatformCertFileCutShort(t *testing.T) {
	keys := mustKeys(t)
	whole := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: keys.PlatformCert.Raw})
	cut := whole[:bytes.LastIndexByte(whole[:len(whole)/2], '\n')+1] // whole lines, the END line not among them
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"after a whole one", append(append([]byte(nil), whole...), cut...)},
		{"between two whole ones", append(append(append([]byte(nil), whole...), cut...), whole...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "wechatpay_platform.pem")
			if err := os.WriteFile(file, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			certs, err := wechatpay.LoadCertificatesFile(file)
			if !errors.Is(err, wechatpay.ErrConfig) || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "cut short or damaged") {
				t.Fatalf("got %d certificates, %v; want an ErrConfig naming %s, saying a block is cut short or damaged", len(certs), err, file)
			}
		})
	}
}
