package testproc

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// orphanEnv names, in the test binary EndWithTheTestBinary runs again, the
// test that is the child.
const orphanEnv = "TESTPROC_ORPHAN_CHILD"

// EndWithTheTestBinary fails t when a process start started outlives, by
// within, a test binary that dies without its cleanups (go test's -timeout
// panic, a kill), as a helper's servers must not: they would run on the
// machine for good. The test binary is run again as a child that runs t
// alone, where this calls start and waits; then the child is killed. The
// processes are the child's descendants when start returned (a server's
// workers and helpers too).
func EndWithTheTestBinary(t *testing.T, within time.Duration, start func(t *testing.T)) {
	if os.Getenv(orphanEnv) == t.Name() {
		start(t)
		_, _ = os.Stdout.WriteString("started\n")
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent kills it
		return
	}
	t.Helper()
	var run []string
	for _, name := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(name)+"$")
	}
	child := exec.Command(os.Args[0], "-test.run", strings.Join(run, "/"), "-test.count", "1")
	// Its temporary directories, which a killed child leaves, in one
	// removed with t; one a server that dropped its privileges reaches
	// (SharedDir).
	child.Env = append(os.Environ(), orphanEnv+"="+t.Name(), "TMPDIR="+SharedDir(t, "testproc-orphan-", 0o755))
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	}
	defer kill()
	r := bufio.NewReader(out)
	if line, err := r.ReadString('\n'); line != "started\n" {
		_ = stdin.Close()
		rest, _ := io.ReadAll(r) // what the child said until it ended
		kill()
		t.Fatalf("the child test binary did not start its processes (%v):\n%s%s", err, line, rest)
	}
	pidfds := map[int]int{}
	defer func() {
		for _, fd := range pidfds {
			_ = unix.Close(fd)
		}
	}()
	for _, pid := range descendants(t, child.Process.Pid) {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("pidfd of %d: %v", pid, err)
		}
		pidfds[pid] = fd
	}
	if len(pidfds) == 0 {
		t.Fatal("the child test binary started no process")
	}
	kill() // no cleanup of the child's runs
	// A pidfd reads as readable once its process has ended.
	deadline := time.Now().Add(within)
	for pid, fd := range pidfds {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(time.Until(deadline), 0).Milliseconds()))
		for err == syscall.EINTR {
			n, err = unix.Poll(fds, int(max(time.Until(deadline), 0).Milliseconds()))
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) // this test's: ended here
			t.Errorf("process %d (%s) still ran %s after the test binary that started it died", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")), within)
		}
	}
}

// descendants are the processes below pid: its children, theirs, and so on.
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	var all []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range strings.Fields(string(b)) {
			c, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("%s: %q", f, b)
			}
			all = append(append(all, c), descendants(t, c)...)
		}
	}
	return all
}
