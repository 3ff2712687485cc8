package config

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// The WeChat Pay backend reads its key files when serve starts; these
// checks read them the same way at load (payments/wechatpay: an RSA
// private key in PKCS#8 or PKCS#1 PEM, an RSA "PUBLIC KEY", RSA
// certificates), so check-config refuses a missing or wrong file at its
// key's line. The errors say what is wrong with the file, never its
// contents, nor its name (secretKey: the value of a "*_file" key may be
// the key itself, pasted where a path was wanted).

// checkPrivateKeyFile checks the merchant's API private key.
func (l *loader) checkPrivateKeyFile(path, file string) {
	block := l.pemFile(path, file)
	if block == nil {
		return
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		// A passphrase-protected key: paygate takes no passphrase, and
		// the legacy form's error was ASN.1 noise about tags.
		l.at(path, "the key in it is encrypted (passphrase-protected), which paygate cannot read; write it out unencrypted (openssl pkey -in key.pem -out apiclient_key.pem) and keep the file's permissions tight")
		return
	}
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		var k any
		if k, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			err = fmt.Errorf("its PRIVATE KEY block is not PKCS#8: %w", err)
		} else if _, ok := k.(*rsa.PrivateKey); !ok {
			err = errors.New("not an RSA key")
		}
	case "RSA PRIVATE KEY":
		if _, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			err = fmt.Errorf("its RSA PRIVATE KEY block is not PKCS#1: %w", err)
		}
	default:
		err = fmt.Errorf("its PEM block is %q, not a private key (PRIVATE KEY or RSA PRIVATE KEY)", block.Type)
	}
	if err != nil {
		l.at(path, "%v", err)
	}
}

// checkPublicKeyFile checks WeChat Pay's public key (public-key mode).
func (l *loader) checkPublicKeyFile(path, file string) {
	block := l.pemFile(path, file)
	if block == nil {
		return
	}
	if block.Type != "PUBLIC KEY" {
		l.at(path, "its PEM block is %q, not PUBLIC KEY", block.Type)
		return
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		err = fmt.Errorf("its PUBLIC KEY block does not parse: %w", err)
	} else if _, ok := k.(*rsa.PublicKey); !ok {
		err = errors.New("not an RSA key")
	}
	if err != nil {
		l.at(path, "%v", err)
	}
}

// checkCertificateFile checks a WeChat Pay platform certificate file:
// every certificate in it, as payments/wechatpay loads every one (the
// outgoing and the incoming certificate of a rotation may share a file).
func (l *loader) checkCertificateFile(path, file string) {
	block := l.pemFile(path, file)
	if block == nil {
		return
	}
	data, _ := os.ReadFile(file) // pemFile read it
	for n, rest := 1, data; ; n++ {
		if block, rest = pem.Decode(rest); block == nil {
			// pem.Decode passes over a block it cannot read (pasted
			// without its END line, or a line damaged), at times with the
			// block after it: the rotation's incoming certificate, cut,
			// was left out without a word, as payments/wechatpay refuses.
			if begun := pemBlocksBegun(data); begun >= n {
				decode := "decode"
				if n-1 == 1 {
					decode = "decodes"
				}
				l.at(path, "%d PEM blocks begin in it and %d %s: one is cut short or damaged", begun, n-1, decode)
			}
			return
		}
		// Which block, when the file has more than one.
		which := ""
		if n > 1 || len(bytes.TrimSpace(rest)) > 0 {
			which = fmt.Sprintf(" %d", n)
		}
		if !l.checkCertificate(path, which, block) {
			return
		}
	}
}

// checkCertificate checks one PEM block of a platform certificate file
// (which names it, " 2", when the file has several) and reports whether it
// is a certificate.
func (l *loader) checkCertificate(path, which string, block *pem.Block) bool {
	if block.Type != "CERTIFICATE" {
		l.at(path, "its PEM block%s is %q, not CERTIFICATE", which, block.Type)
		return false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		err = fmt.Errorf("its CERTIFICATE block%s does not parse: %w", which, err)
	} else if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		err = fmt.Errorf("the certificate%s has no RSA key", which)
	}
	if err != nil {
		l.at(path, "%v", err)
		return false
	}
	// A warning, not an error: an expired certificate beside its successor
	// is the normal state of a rotation. Alone, it verifies nothing WeChat
	// Pay sends (it signs with the current certificate's serial), so every
	// notification would be refused for the day WeChat Pay retries it.
	switch now := time.Now(); {
	case now.After(c.NotAfter):
		l.warn(path, "the certificate (serial %X) expired on %s: WeChat Pay no longer signs with it; add the current platform certificate",
			c.SerialNumber, c.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(c.NotBefore):
		l.warn(path, "the certificate (serial %X) is valid only from %s",
			c.SerialNumber, c.NotBefore.UTC().Format(time.DateOnly))
	}
	return true
}

// pemBlocksBegun counts the PEM blocks that begin in data (its "-----BEGIN "
// lines), as payments/wechatpay counts them.
func pemBlocksBegun(data []byte) int {
	n := 0
	for line := range bytes.Lines(data) {
		if bytes.HasPrefix(line, []byte("-----BEGIN ")) {
			n++
		}
	}
	return n
}

// pemFile reads file's first PEM block, or reports at path why it cannot.
func (l *loader) pemFile(path, file string) *pem.Block {
	if file == "" {
		l.at(path, "empty file name")
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		l.at(path, "cannot read the file it names: %v%s", fileError(err), notAPath(file))
		return nil
	}
	block, _ := pem.Decode(data)
	if block == nil {
		if bytes.HasPrefix(data, []byte(utf8BOM+"-----BEGIN ")) {
			// Notepad's "UTF-8 with BOM": the block is there, but no PEM
			// reader (Go's, payments/wechatpay's) looks past the mark
			// before its BEGIN line, and "no PEM block" sent the operator
			// to a file that plainly holds one.
			l.at(path, "no PEM block in it: it begins with a UTF-8 byte-order mark (saved as \"UTF-8 with BOM\"), which no PEM reader looks past; save it as UTF-8 without BOM")
			return nil
		}
		l.at(path, "no PEM block in it")
		return nil
	}
	return block
}
