// Package squidtest runs squid as the company's egress proxy, as
// deployments in China and on corporate networks reach their providers
// (and WeChat Pay and the merchant's webhooks): Debian's squid, in the
// foreground on a config of its own, asking for Basic credentials
// (User, Pass) and resolving names from a hosts file of its own,
// so that a provider's name only the proxy knows (…example.com, which
// httptest's certificate covers, mapped to 127.0.0.1) proves a request
// went through it: paygate cannot dial it directly, and Go never proxies a
// loopback address. Tests that use it need squid and fail without it,
// never skip: scripts/test.sh installs it. It is for tests only.
package squidtest

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/freeport"
	"github.com/paygate/paygate/internal/testproc"
)

// User and Pass are the credentials squid lets through.
const (
	User = "paygate"
	Pass = "sq-Pass-0123"
)

// Start runs squid on a free address and returns its host:port.
// hosts names the names it resolves to 127.0.0.1; access holds http_access
// lines put before the one that lets the authenticated user through. It is
// stopped, and its log shown when the test failed, at the test's end.
func Start(t *testing.T, hosts []string, access string) string {
	t.Helper()
	squid := testproc.Bin(t, "squid", "the tests of paygate behind an egress proxy need it (apt-get install -y squid; scripts/test.sh installs it)")
	// Squid, as user proxy, writes its logs there and runs the credentials
	// helper from there.
	dir := testproc.SharedDir(t, "paygate-squid-", 0o777)
	// Squid's credentials helper: one "user password" line in (URL-escaped;
	// these are plain), OK or ERR out.
	helper := "#!/bin/sh\nwhile read -r u p; do\n  if [ \"$u\" = " + User + " ] && [ \"$p\" = " + Pass +
		" ]; then echo OK; else echo ERR; fi\ndone\n"
	writeMode(t, filepath.Join(dir, "auth.sh"), helper, 0o755)
	writeMode(t, filepath.Join(dir, "hosts"), "127.0.0.1 "+strings.Join(hosts, " ")+"\n", 0o644)
	addr := freeport.Addr(t)
	// No pinger: squid's ICMP helper, a process of its own, ran on for
	// seconds after squid had ended, at the test's end or with it.
	conf := `http_port ` + addr + `
pid_filename ` + dir + `/squid.pid
cache_log ` + dir + `/cache.log
access_log stdio:` + dir + `/access.log
coredump_dir ` + dir + `
hosts_file ` + dir + `/hosts
cache deny all
shutdown_lifetime 0 seconds
pinger_enable off
auth_param basic program ` + dir + `/auth.sh
auth_param basic children 2
acl authed proxy_auth REQUIRED
` + access + `
http_access allow authed
http_access deny all
`
	path := filepath.Join(dir, "squid.conf")
	writeMode(t, path, conf, 0o644)
	cmd := exec.Command(squid, "-N", "-f", path)
	cmd.SysProcAttr = asProxyUser(t)
	exited := testproc.StartLogged(t, cmd, dir, "squid", "cache.log", "access.log")
	// Up once it answers as squid: a connection taken is no proof, as
	// another process may hold the port freeAddr handed out.
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := c.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			if strings.HasPrefix(resp.Header.Get("Server"), "squid") {
				return addr
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "stderr"))
			l, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
			t.Fatalf("squid exited: %s%s\nconfig:\n%s", b, l, conf)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			l, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
			t.Fatalf("squid does not answer on %s after 15s: %s", addr, l)
		}
	}
}

// asProxyUser starts squid as user proxy when the test runs as root (as CI
// does), rather than let squid switch to it: the kernel clears the signal a
// child gets when the test binary dies without its cleanups (testproc) on
// such a switch, and squid ran on for good after a -timeout panic or a kill.
// Elsewhere squid runs as the test's user.
func asProxyUser(t *testing.T) *syscall.SysProcAttr {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("proxy") // Debian's squid's cache_effective_user
	if err != nil {
		t.Fatalf("squid as root needs its user proxy (Debian's squid package makes it): %v", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("user proxy: uid %q, gid %q", u.Uid, u.Gid)
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

func writeMode(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// Deny is the access lines that refuse every request to host (squid's
// 403), as a company proxy's allow-list that leaves it out does.
func Deny(host string) string {
	return "acl blocked dstdomain " + host + "\nhttp_access deny blocked"
}

// Proxy is a transport's Proxy for the squid at addr, with the credentials
// it lets through: the proxy set on the transport as HTTPS_PROXY would set
// it (Go reads the environment once per process).
func Proxy(addr string) func(*http.Request) (*url.URL, error) {
	return http.ProxyURL(&url.URL{Scheme: "http", User: url.UserPassword(User, Pass), Host: addr})
}
