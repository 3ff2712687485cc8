package deploy_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"time"
)

var standInKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// standInPEM is a stand-in for a Secret item that is a PEM file (the
// merchant's private key, WeChat Pay's public key, a platform
// certificate): check-config reads these as it would at start, so the
// stand-in must be one of the right kind. ok is false for other items.
func standInPEM(item string) (data []byte, ok bool) {
	if !strings.HasSuffix(item, ".pem") {
		return nil, false
	}
	key := standInKey()
	var block *pem.Block
	switch name := strings.ToLower(item); {
	case strings.Contains(name, "cert"):
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stand-in"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		block = &pem.Block{Type: "CERTIFICATE", Bytes: der}
	case strings.Contains(name, "public"):
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			panic(err)
		}
		block = &pem.Block{Type: "PUBLIC KEY", Bytes: der}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			panic(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(block), true
}
