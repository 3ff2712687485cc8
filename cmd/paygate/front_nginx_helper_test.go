package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envNginxHelper names the address TestFrontNginxHelper serves nginx on,
// in the test binary TestFrontNginxPortTakenIsNoFront starts.
const envNginxHelper = "PAYGATE_TEST_NGINX_HELPER_ADDR"

// TestFrontNginxHelper is not a test of its own: run by the tests of
// startNginx in a test binary of its own, it
// starts nginx with startNginx, says so on its standard output, and holds
// it until its standard input ends (or the binary is killed).
func TestFrontNginxHelper(t *testing.T) {
	addr := os.Getenv(envNginxHelper)
	if addr == "" {
		return
	}
	startNginx(t, addr, `        location / { return 200 "up\n"; }`)
	_, _ = os.Stdout.WriteString("\nnginx up\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestFrontNginxPortTakenIsNoFront: when another process took the port
// handed to nginx between freeAddr and nginx's start (another test
// binary's listener on a shared CI host), startNginx fails on nginx's
// "bind() failed", rather than taking the other process's listener for
// nginx's and handing the test a front that is not there.
func TestFrontNginxPortTakenIsNoFront(t *testing.T) {
	l, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // the other process: takes connections, answers nothing
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFrontNginxHelper$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), envNginxHelper+"="+l.Addr().String())
	cmd.Stdin = strings.NewReader("") // the helper returns at once if nginx came up
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "\nnginx up\n") || err == nil {
		t.Errorf("startNginx on a port another process holds: %v, %s; want its failure on nginx's bind", err, out)
	} else if !strings.Contains(string(out), "Address already in use") {
		t.Errorf("startNginx on a port another process holds failed without naming nginx's bind: %s", out)
	}
}
