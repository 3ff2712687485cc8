package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wechatpayKeys writes the key files of a wechatpay backend to dir: the
// merchant's private key (PKCS#8 and PKCS#1), WeChat Pay's public key, a
// platform certificate, and wrong files beside them.
func wechatpayKeys(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "wechatpay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"key.pem":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"key1.pem":    pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"pub.pem":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"cert.pem":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}),
		"ec.pem":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ec8}),
		"garbage.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER at all")}),
		"text.pem":    []byte("SECRET-CONTENT-0123456789\n"),
	}
	// A rotation's outgoing and incoming certificates in one file, and one
	// whose second block is not a certificate.
	// The key saved by Notepad as "UTF-8 with BOM", and passphrase-protected
	// in the legacy (Proc-Type) and the PKCS#8 form.
	files["keybom.pem"] = append([]byte(utf8BOM), files["key.pem"]...)
	legacy, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte("passphrase"), x509.PEMCipherAES256) //nolint:staticcheck // an operator's old key
	if err != nil {
		t.Fatal(err)
	}
	files["keyenc1.pem"] = pem.EncodeToMemory(legacy)
	files["keyenc8.pem"] = pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("encrypted DER")})
	// Both saved with Windows line endings: these load.
	files["keycrlf.pem"] = bytes.ReplaceAll(files["key.pem"], []byte("\n"), []byte("\r\n"))
	files["pubcrlf.pem"] = bytes.ReplaceAll(files["pub.pem"], []byte("\n"), []byte("\r\n"))
	files["bundle.pem"] = append(append([]byte(nil), files["cert.pem"]...), files["cert.pem"]...)
	files["certpub.pem"] = append(append([]byte(nil), files["cert.pem"]...), files["pub.pem"]...)
	// A certificate, then the incoming one pasted cut short (its END line
	// and the lines before it missing), which no PEM decoder reads.
	cut := files["cert.pem"][:bytes.LastIndexByte(files["cert.pem"][:len(files["cert.pem"])/2], '\n')+1]
	files["certcut.pem"] = append(append([]byte(nil), files["cert.pem"]...), cut...)
	// The same cut certificate between two whole ones.
	files["certcutmid.pem"] = append(append(append([]byte(nil), files["cert.pem"]...), cut...), files["cert.pem"]...)
	out := map[string]string{"missing.pem": filepath.Join(dir, "missing.pem")}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.WriteFile(unreadable, files["key.pem"], 0o000); err != nil {
		t.Fatal(err)
	}
	out["unreadable.pem"] = unreadable
	return out
}

// TestWeChatPayKeyFiles: with backend wechatpay, the key files serve reads
// at start are read at load, so check-config refuses a missing, unreadable
// or wrong file at its key's file:line, and never prints what is in it, nor
// its name (the value of a *_file key may be the key itself).
func TestWeChatPayKeyFiles(t *testing.T) {
	f := wechatpayKeys(t)
	wechatpay := func(key, pub string, certs ...string) string {
		src := "payments:\n  backend: wechatpay\n  wechatpay:\n" +
			"    mch_id: \"1900000001\"\n    app_id: wx1\n    mch_cert_serial: S\n" +
			"    apiv3_key: \"0123456789abcdef0123456789abcdef\"\n    notify_url: \"https://pay.example.com/n\"\n" +
			"    mch_private_key_file: " + key + "\n" // line 9
		if pub != "" {
			src += "    public_key_id: PUB_KEY_ID_1\n    public_key_file: " + pub + "\n" // line 11
		}
		if len(certs) > 0 {
			src += "    platform_cert_files:\n" // line 10 or 12
			for _, c := range certs {
				src += "      - " + c + "\n"
			}
		}
		return src
	}
	tests := []struct {
		name, src, want string // want "": loads
	}{
		{"pkcs8 key and public key", wechatpay(f["key.pem"], f["pub.pem"]), ""},
		{"pkcs1 key and platform certificate", wechatpay(f["key1.pem"], "", f["cert.pem"]), ""},
		{"both modes", wechatpay(f["key.pem"], f["pub.pem"], f["cert.pem"]), ""},
		{"missing private key", wechatpay(f["missing.pem"], f["pub.pem"]),
			"c.yaml:9: payments.wechatpay.mch_private_key_file: cannot read the file it names: no such file or directory"},
		{"private key not PEM", wechatpay(f["text.pem"], f["pub.pem"]),
			"c.yaml:9: payments.wechatpay.mch_private_key_file: no PEM block in it"},
		{"private key not DER", wechatpay(f["garbage.pem"], f["pub.pem"]),
			"c.yaml:9: payments.wechatpay.mch_private_key_file: its PRIVATE KEY block is not PKCS#8: "},
		{"private key not RSA", wechatpay(f["ec.pem"], f["pub.pem"]),
			"c.yaml:9: payments.wechatpay.mch_private_key_file: not an RSA key"},
		{"certificate as the private key", wechatpay(f["cert.pem"], f["pub.pem"]),
			`c.yaml:9: payments.wechatpay.mch_private_key_file: its PEM block is "CERTIFICATE", not a private key`},
		{"private key saved with a byte-order mark", wechatpay(f["keybom.pem"], f["pub.pem"]),
			"c.yaml:9: payments.wechatpay.mch_private_key_file: no PEM block in it: it begins with a UTF-8 byte-order mark"},
		{"encrypted private key, legacy PEM", wechatpay(f["keyenc1.pem"], f["pub.pem"]),
			"c.yaml:9: payments.wechatpay.mch_private_key_file: the key in it is encrypted (passphrase-protected)"},
		{"encrypted private key, PKCS#8", wechatpay(f["keyenc8.pem"], f["pub.pem"]),
			"c.yaml:9: payments.wechatpay.mch_private_key_file: the key in it is encrypted (passphrase-protected)"},
		{"CRLF private key and public key", wechatpay(f["keycrlf.pem"], f["pubcrlf.pem"]), ""},
		{"missing public key", wechatpay(f["key.pem"], f["missing.pem"]),
			"c.yaml:11: payments.wechatpay.public_key_file: cannot read the file it names: no such file or directory"},
		{"private key as the public key", wechatpay(f["key.pem"], f["key.pem"]),
			`c.yaml:11: payments.wechatpay.public_key_file: its PEM block is "PRIVATE KEY", not PUBLIC KEY`},
		{"missing platform certificate", wechatpay(f["key.pem"], "", f["cert.pem"], f["missing.pem"]),
			"c.yaml:12: payments.wechatpay.platform_cert_files[1]: cannot read the file it names: no such file or directory"},
		{"public key as a certificate", wechatpay(f["key.pem"], "", f["pub.pem"]),
			`c.yaml:11: payments.wechatpay.platform_cert_files[0]: its PEM block is "PUBLIC KEY", not CERTIFICATE`},
		{"two certificates in one file", wechatpay(f["key.pem"], "", f["bundle.pem"]), ""},
		{"a public key after a certificate", wechatpay(f["key.pem"], "", f["certpub.pem"]),
			`c.yaml:11: payments.wechatpay.platform_cert_files[0]: its PEM block 2 is "PUBLIC KEY", not CERTIFICATE`},
		{"a certificate cut short after a whole one", wechatpay(f["key.pem"], "", f["certcut.pem"]),
			"c.yaml:11: payments.wechatpay.platform_cert_files[0]: 2 PEM blocks begin in it and 1 decodes: one is cut short or damaged"},
		{"a certificate cut short between two whole ones", wechatpay(f["key.pem"], "", f["certcutmid.pem"]),
			"c.yaml:11: payments.wechatpay.platform_cert_files[0]: 3 PEM blocks begin in it and 2 decode: one is cut short or damaged"},
	}
	if os.Geteuid() != 0 { // root reads a file of mode 0
		tests = append(tests, struct{ name, src, want string }{"unreadable private key", wechatpay(f["unreadable.pem"], f["pub.pem"]),
			"c.yaml:9: payments.wechatpay.mch_private_key_file: cannot read the file it names: permission denied"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v; want it to load", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error starting %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET-CONTENT") || strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("the error shows the file's contents: %v", err)
			}
			if strings.Contains(err.Error(), filepath.Dir(f["key.pem"])) {
				t.Errorf("the error names the file (a *_file value may be the key itself): %v", err)
			}
		})
	}
}

// TestSimulatorIgnoresKeyFiles: the simulator backend reads no key file,
// so a config prepared for wechatpay whose files are not mounted yet loads.
func TestSimulatorIgnoresKeyFiles(t *testing.T) {
	src := "payments:\n  backend: simulator\n  wechatpay:\n    mch_private_key_file: /nonexistent/key.pem\n    public_key_file: /nonexistent/pub.pem\n"
	if _, err := Parse([]byte(src), "c.yaml", envMap(nil)); err != nil {
		t.Fatal(err)
	}
}

// TestPlatformCertificateValidity: check-config warns, at the key's line,
// about a platform certificate outside its validity period. Alone it
// verifies no notification (WeChat Pay signs with its current certificate),
// and loading it silently left every payment notification refused.
func TestPlatformCertificateValidity(t *testing.T) {
	f := wechatpayKeys(t)
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	year := 365 * 24 * time.Hour
	for _, tc := range []struct {
		name     string
		from, to time.Duration // from now
		want     string        // in the warning; "" for none
	}{
		{"valid", -year, year, ""},
		{"expired a year ago", -6 * year, -year, "expired on"},
		{"valid only from next year", year, 5 * year, "valid only from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "wechatpay"},
				NotBefore: time.Now().Add(tc.from), NotAfter: time.Now().Add(tc.to)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".pem")
			if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
				t.Fatal(err)
			}
			src := "payments:\n  backend: wechatpay\n  wechatpay:\n" +
				"    mch_id: \"1900000001\"\n    app_id: wx1\n    mch_cert_serial: S\n" +
				"    apiv3_key: \"0123456789abcdef0123456789abcdef\"\n    notify_url: \"https://pay.example.com/n\"\n" +
				"    mch_private_key_file: " + f["key.pem"] + "\n" +
				"    platform_cert_files:\n      - " + p + "\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "platform_cert_files[0]") {
					got = append(got, w)
				}
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warnings %q; want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want) || !strings.Contains(got[0], "c.yaml:")):
				t.Errorf("warnings %q; want one at c.yaml:LINE saying %q", got, tc.want)
			}
		})
	}
}
