package redis

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
)

// testCA issues server certificates for the names given.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pgtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue is a certificate for names: IP addresses go in its IP SANs, the
// rest in its DNS SANs.
func (ca *testCA) issue(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsFront listens on a loopback port and relays each connection to the
// Redis at backend: one that opens with a TLS handshake over TLS with cert,
// a plain one as it is (a sentinel monitors the master through it, in
// plain text, while paygate reaches it with TLS). It returns the port.
func tlsFront(t *testing.T, cert tls.Certificate, backend string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false // closed
		}
		conns = append(conns, c)
		return true
	}
	conns = []net.Conn{}
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	wg.Go(func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				br := bufio.NewReader(raw)
				first, err := br.Peek(1)
				if err != nil {
					_ = raw.Close()
					return
				}
				var front net.Conn = &peekedConn{Conn: raw, r: br}
				if first[0] == 0x16 { // a TLS handshake record
					front = tls.Server(front, cfg)
				}
				back, err := net.Dial("tcp", backend)
				if err != nil {
					_ = raw.Close()
					return
				}
				if !track(raw) || !track(back) {
					_ = raw.Close()
					_ = back.Close()
					return
				}
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(back, front); done <- struct{}{} }()
				go func() { _, _ = io.Copy(front, back); done <- struct{}{} }()
				<-done
				_ = raw.Close()
				_ = back.Close()
				<-done
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestTLSVerifiesEachServerAgainstItsOwnName: with tls, paygate reaches the
// sentinel by one name and the master at the address the sentinel gives,
// each with a certificate for its own name only; each is verified against
// the host it is dialled at, or against store.redis's explicit server name
// when one is set. A master whose certificate is the one the listed
// address's name has (a managed Redis's shared certificate, its servers
// announced at IP addresses) is taken, as it was before servers were
// verified each against its own host: refused, every such deployment lost
// its store on upgrade.
func TestTLSVerifiesEachServerAgainstItsOwnName(t *testing.T) {
	set := redistest.StartSentinel(t)
	ca := newTestCA(t)
	tests := []struct {
		name                    string
		sentinelCert, masterCrt []string
		serverName              string
		wantErr                 string // "" for none
	}{
		{name: "each its own host", sentinelCert: []string{"localhost"}, masterCrt: []string{"127.0.0.1"}},
		{name: "one explicit name", sentinelCert: []string{"redis.internal"}, masterCrt: []string{"redis.internal"}, serverName: "redis.internal"},
		{name: "explicit name the master lacks", sentinelCert: []string{"redis.internal"}, masterCrt: []string{"127.0.0.1"}, serverName: "redis.internal",
			wantErr: "certificate"},
		{name: "one certificate for the listed name", sentinelCert: []string{"localhost"}, masterCrt: []string{"localhost"}},
		{name: "master certificate for another host", sentinelCert: []string{"localhost"}, masterCrt: []string{"elsewhere.test"},
			wantErr: "certificate"},
		{name: "sentinel certificate for another host", sentinelCert: []string{"elsewhere.test"}, masterCrt: []string{"127.0.0.1"},
			wantErr: "certificate"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sentinelPort := tlsFront(t, ca.issue(t, tc.sentinelCert...), set.Sentinel.Addr())
			masterPort := tlsFront(t, ca.issue(t, tc.masterCrt...), set.Master.Addr())
			// The sentinel monitors the master under a name of this case's,
			// at the front's address: the address it gives paygate.
			name := set.Name + "-tls-" + strconv.Itoa(i)
			sc := set.Sentinel.Client()
			mustNil(t, "SENTINEL MONITOR", sc.Do(ctx, "SENTINEL", "MONITOR", name, "127.0.0.1", masterPort, 1).Err())
			t.Cleanup(func() { _ = sc.Do(context.Background(), "SENTINEL", "REMOVE", name).Err() })

			s := openOn(t, nil, Options{Addrs: []string{"localhost:" + strconv.Itoa(sentinelPort)}, MasterName: name,
				TLS: true, TLSServerName: tc.serverName, rootCAs: ca.pool, MaxRetries: -1, EpochInterval: -1})
			key := testPrefix() + "tls"
			err := s.Client().Set(ctx, key, "v", time.Minute).Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("SET through the master's TLS front: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("SET: got %v; want an error naming %q", err, tc.wantErr)
			case err == nil:
				_ = s.Client().Del(ctx, key).Err()
			}
		})
	}
}

// TestTLSDialerSendsAListedNameToAnIPAddress: a node reached at an IP address
// (a cluster node or sentinel master a managed Redis announces by address)
// is sent the first listed DNS name as SNI. No name at all was sent there
// (Go sends none for an IP), where the release before sent the first listed
// name to every node, and a server that picks its certificate by SNI
// answered with its default one or none.
func TestTLSDialerSendsAListedNameToAnIPAddress(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, "redis.example.internal")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	sni := make(chan string, 1)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		sni <- h.ServerName
		return &cert, nil
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = tls.Server(c, cfg).Handshake()
	}()
	dial := tlsDialer(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.pool}, 5*time.Second,
		[]string{"10.0.0.7", "redis.example.internal", "other.example.internal"})
	c, err := dial(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial an announced IP address holding the listed name's certificate: %v", err)
	}
	_ = c.Close()
	<-done
	if got := <-sni; got != "redis.example.internal" {
		t.Errorf("SNI sent to an IP address: %q; want the first listed DNS name, redis.example.internal", got)
	}
}
