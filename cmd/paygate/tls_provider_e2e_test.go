package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// caSigned is a CA of its own and a leaf for 127.0.0.1 it signed, valid
// until notAfter.
func caSigned(t *testing.T, notAfter time.Time) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "paygate test CA"},
		NotBefore: time.Now().Add(-time.Hour * 48), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour * 48), NotAfter: notAfter,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSProviderFailuresNamed: paygate trusts the providers'
// certificates through SSL_CERT_FILE, as an operator would. Each broken
// https provider (a certificate of an unknown CA, one for another host,
// an expired one, a plain http server behind an https:// base_url, an
// https server behind an http:// one, a port that takes the connection
// and never completes the handshake) gives way to the next target, and
// a model with no other target answers 502 (504 upstream_connect_timeout
// for the silent port: its timeouts.connect, not a later wait) naming
// what to fix; no log line holds a provider's key. The good provider
// offers h2 by ALPN, as real ones do.
func TestTLSProviderFailuresNamed(t *testing.T) {
	var asked atomic.Int32
	// The providers' own logs of the handshakes refused on purpose go to
	// the test's log, not the package run's output.
	quiet := log.New(t.Output(), "provider: ", 0)
	good := httptest.NewUnstartedServer(chatAnswer("from the good one", &asked))
	good.EnableHTTP2 = true
	good.Config.ErrorLog = quiet
	good.StartTLS()
	defer good.Close()
	leafServer := func(leaf tls.Certificate) *httptest.Server {
		s := httptest.NewUnstartedServer(chatAnswer("must not answer", &asked))
		s.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
		s.Config.ErrorLog = quiet
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	ca, expiredLeaf := caSigned(t, time.Now().Add(-24*time.Hour))
	expired := leafServer(expiredLeaf)
	_, otherLeaf := caSigned(t, time.Now().Add(24*time.Hour))
	unknown := leafServer(otherLeaf)
	plain := httptest.NewUnstartedServer(chatAnswer("must not answer", &asked))
	plain.Config.ErrorLog = quiet
	plain.Start()
	defer plain.Close()
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	gp := portOf(t, good.URL)
	cases := []struct{ name, url, status, want string }{
		{"unknown", unknown.URL, "502", "provider unknown's TLS certificate was not accepted: x509: certificate signed by unknown authority"},
		{"wronghost", "https://localhost:" + gp, "502", "provider wronghost's TLS certificate was not accepted: x509: certificate is valid for example.com, *.example.com, not localhost"},
		{"expired", expired.URL, "502", "provider expired's TLS certificate was not accepted: x509: certificate has expired or is not yet valid"},
		{"plain", "https://127.0.0.1:" + portOf(t, plain.URL), "502", "provider plain did not answer in TLS at its https:// base_url: check its base_url (http or https)"},
		{"tls", "http://127.0.0.1:" + gp, "502", "provider tls answered that it serves https on that port (HTTP 400): check its base_url (https://, not http://)"},
		{"mute", "https://" + mute.Addr().String(), "504", "mute: upstream_connect_timeout"},
	}
	conf := "providers:\n  - {name: good, base_url: \"" + good.URL + "/v1\", api_key: sk-good-key-0001}\n"
	models := "models:\n"
	for _, c := range cases {
		conf += "  - {name: " + c.name + ", base_url: \"" + c.url + "/v1\", api_key: sk-" + c.name + "-key-0001, timeouts: {connect: 1s}}\n"
		models += "  - {name: " + c.name + ", targets: [{provider: " + c.name + ", model: u}]}\n" +
			"  - {name: " + c.name + "-then-good, targets: [{provider: " + c.name + ", model: u}, {provider: good, model: u}]}\n"
	}
	cmd, lines, base := startProxied(t, conf+models, []*x509.Certificate{good.Certificate(), ca})
	for _, c := range cases {
		// Alone first: a provider marked misconfigured is skipped by the
		// rounds after it (a 503 naming the skip).
		status, body := proxiedChat(t, base, "k-egress-proxy-0123", c.name)
		if msg := gjson.GetBytes(body, "error.message").Str; fmt.Sprint(status) != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("%s alone: %d %q; want %s saying %q", c.name, status, msg, c.status, c.want)
		}
		status, body = proxiedChat(t, base, "k-egress-proxy-0123", c.name+"-then-good")
		if status != http.StatusOK || gjson.GetBytes(body, "choices.0.message.content").Str != "from the good one" {
			t.Errorf("%s then good: %d %.300s; want the good one's answer", c.name, status, body)
		}
	}
	if n := asked.Load(); n != int32(len(cases)) {
		t.Errorf("the providers answered %d chats; want %d, all the good one's", n, len(cases))
	}
	for _, l := range stopAndDrain(t, cmd, lines) {
		if strings.Contains(l, "-key-0001") {
			t.Errorf("a log line holds a provider's key: %s", l)
		}
	}
}
