package wechatpay_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
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

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// merchantCert makes a certificate for the merchant key whose serial is the
// simulator's merchant serial, as WeChat's apiclient_cert.pem would be.
func merchantCert(t *testing.T, k *wxsim.Keys) []byte {
	t.Helper()
	serial, ok := new(big.Int).SetString(k.MerchantSerial, 16)
	if !ok {
		t.Fatalf("serial %q", k.MerchantSerial)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "merchant"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.MerchantKey.PublicKey, k.MerchantKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestKeysFromFiles(t *testing.T) {
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pk8, _ := x509.MarshalPKCS8PrivateKey(keys.MerchantKey)
	pub, _ := x509.MarshalPKIXPublicKey(&keys.PayKey.PublicKey)
	keyFile := writePEM(t, dir, "apiclient_key.pem", "PRIVATE KEY", pk8)
	pkcs1File := writePEM(t, dir, "apiclient_key_pkcs1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(keys.MerchantKey))
	certFile := writePEM(t, dir, "apiclient_cert.pem", "CERTIFICATE", merchantCert(t, keys))
	pubFile := writePEM(t, dir, "pub_key.pem", "PUBLIC KEY", pub)
	platFile := writePEM(t, dir, "wechatpay_platform.pem", "CERTIFICATE", keys.PlatformCert.Raw)

	tests := []struct {
		name string
		edit func(c *wechatpay.Config)
	}{
		{name: "public-key mode, serial from the merchant certificate", edit: func(c *wechatpay.Config) {
			c.MchPrivateKey, c.MchPrivateKeyFile = nil, keyFile
			c.MchCertSerial, c.MchCertFile = "", certFile
			c.PublicKey, c.PublicKeyFile = nil, pubFile
		}},
		{name: "platform-certificate mode, pkcs1 key", edit: func(c *wechatpay.Config) {
			c.MchPrivateKey, c.MchPrivateKeyFile = nil, pkcs1File
			c.PublicKey, c.PublicKeyID = nil, ""
			c.PlatformCertFiles = []string{platFile}
		}},
		{name: "both modes", edit: func(c *wechatpay.Config) {
			c.MchPrivateKey, c.MchPrivateKeyFile = nil, keyFile
			c.PublicKey, c.PublicKeyFile = nil, pubFile
			c.PlatformCertFiles = []string{platFile}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, wxsim.Options{}, "", tt.edit)
			// Native prepay needs no payer: a full signed round trip.
			res, err := r.client.Prepay(context.Background(), wechatpay.PrepayRequest{
				Method: wechatpay.MethodNative, OutTradeNo: "PGfiles000001", Description: "d", Total: 1})
			if err != nil || res.CodeURL == "" {
				t.Fatalf("prepay: got %+v, %v", res, err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	good := func() wechatpay.Config {
		return wechatpay.Config{
			MchID: "1900000001", MchCertSerial: keys.MerchantSerial, MchPrivateKey: keys.MerchantKey,
			APIv3Key: strings.Repeat("k", 32), PublicKeyID: keys.PublicKeyID, PublicKey: &keys.PayKey.PublicKey,
		}
	}
	tests := []struct {
		name string
		edit func(c *wechatpay.Config)
		want error
	}{
		{name: "valid", edit: func(*wechatpay.Config) {}, want: nil},
		{name: "apiv3 key 31 bytes", edit: func(c *wechatpay.Config) { c.APIv3Key = strings.Repeat("k", 31) }, want: wechatpay.ErrAPIv3KeyLength},
		{name: "apiv3 key 33 bytes", edit: func(c *wechatpay.Config) { c.APIv3Key = strings.Repeat("k", 33) }, want: wechatpay.ErrAPIv3KeyLength},
		{name: "apiv3 key empty", edit: func(c *wechatpay.Config) { c.APIv3Key = "" }, want: wechatpay.ErrAPIv3KeyLength},
		{name: "no mchid", edit: func(c *wechatpay.Config) { c.MchID = "" }, want: wechatpay.ErrConfig},
		{name: "no merchant key", edit: func(c *wechatpay.Config) { c.MchPrivateKey = nil }, want: wechatpay.ErrConfig},
		{name: "missing key file", edit: func(c *wechatpay.Config) { c.MchPrivateKey, c.MchPrivateKeyFile = nil, "/nonexistent/key.pem" }, want: wechatpay.ErrConfig},
		{name: "no serial", edit: func(c *wechatpay.Config) { c.MchCertSerial = "" }, want: wechatpay.ErrConfig},
		{name: "public key id without key", edit: func(c *wechatpay.Config) { c.PublicKey = nil }, want: wechatpay.ErrConfig},
		{name: "no verification key at all", edit: func(c *wechatpay.Config) { c.PublicKey, c.PublicKeyID = nil, "" }, want: wechatpay.ErrConfig},
		{name: "api_base with a path", edit: func(c *wechatpay.Config) { c.APIBase = "https://api.example/v3" }, want: wechatpay.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.edit(&c)
			_, err := wechatpay.New(context.Background(), c)
			if tt.want == nil && err != nil {
				t.Fatalf("got %v; want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v; want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), strings.Repeat("k", 31)) {
				t.Errorf("error leaks the apiv3 key: %v", err)
			}
		})
	}
}
