package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFrontNginxEndsWithTheTestBinary: the nginx a test started does not
// outlive the test binary when it dies without running its cleanups (go
// test's -timeout panic, a kill): nginx's master, and the worker that
// holds its port (a worker outlives a killed master), end with it, rather
// than listen on for good on a CI host.
func TestFrontNginxEndsWithTheTestBinary(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestFrontNginxHelper$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), envNginxHelper+"="+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var out bytes.Buffer
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		said := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == "nginx up" && !said {
				said = true
				up <- true
			}
		}
		if !said {
			up <- false
		}
		_ = cmd.Wait()
		close(exited)
	}()
	if !<-up {
		<-exited
		t.Fatalf("the helper test binary did not start nginx: %s%s", out.String(), errOut.String())
	}
	master := childOf(cmd.Process.Pid)
	if master == 0 {
		t.Fatal("no nginx process under the helper test binary")
	}
	// nginx's directory, which the helper's cleanup never removes: nginx
	// rewrites its title ("nginx: master process … -p dir …").
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(master) + "/cmdline")
	args := strings.Fields(strings.ReplaceAll(string(cmdline), "\x00", " "))
	for i, a := range args {
		if a == "-p" && i+1 < len(args) && strings.HasPrefix(filepath.Base(args[i+1]), "paygate-front-") {
			dir := args[i+1]
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
		}
	}
	// The test binary dies without its cleanups.
	_ = cmd.Process.Kill()
	<-exited

	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return // nginx is gone with the binary that started it
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling for the port's close, not a synchronisation
	}
	t.Errorf("nginx still serves %s 15s after the test binary that started it was killed", addr)
	// End what the helper left: nginx's master ends its worker on SIGTERM
	// (a worker whose master is gone ends on SIGQUIT, its own
	// graceful-stop signal).
	_ = syscall.Kill(master, syscall.SIGTERM)
	for _, w := range childrenOf(master) {
		_ = syscall.Kill(w, syscall.SIGQUIT)
	}
}

// childOf is the first process whose parent is pid, 0 when none.
func childOf(pid int) int {
	if c := childrenOf(pid); len(c) > 0 {
		return c[0]
	}
	return 0
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, p)
		}
	}
	return kids
}
