package main

import (
	"crypto/x509"
	"net"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/squidtest"
)

// blackholedPort is a loopback port whose connects hang, as an address
// whose packets are dropped does: a listener with a backlog of 0 that
// never accepts, its queue filled. Linux drops the SYNs past a full
// queue, and the dialler waits for its own timeout.
func blackholedPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	for range 8 {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("a connect to %s went through: no address here drops connects", addr)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// TestProxiedConnectTimeout: a provider whose address drops connects,
// reached through the company's proxy (squid, HTTPS_PROXY), fails its
// attempt after its timeouts.connect, as it does when dialled directly:
// the proxy's CONNECT goes unanswered while the proxy waits for the same
// connect. The next target answers at once, where the round waited the
// attempt's whole share of failover.max_round_time (30 s for the default
// 60 s) on every request.
func TestProxiedConnectTimeout(t *testing.T) {
	dead := blackholedPort(t)
	var asked atomic.Int32
	up := httptest.NewTLSServer(chatAnswer("from the second target", &asked))
	defer up.Close()
	squid := squidtest.Start(t, []string{"dead.example.com", "llm.example.com"}, "")
	cmd, lines, base := startProxied(t, `
providers:
  - {name: dead, base_url: "https://dead.example.com:`+strconv.Itoa(dead)+`/v1", api_key: sk-dead-key, timeouts: {connect: 1s}}
  - {name: llm, base_url: "https://llm.example.com:`+portOf(t, up.URL)+`/v1", api_key: sk-llm-key}
models: [{name: m, targets: [{provider: dead, model: u}, {provider: llm, model: u}]}]
`, []*x509.Certificate{up.Certificate()},
		"HTTPS_PROXY=http://"+squidtest.User+":"+squidtest.Pass+"@"+squid)

	deadGivenUpAtConnect(t, cmd, lines, base)
}
