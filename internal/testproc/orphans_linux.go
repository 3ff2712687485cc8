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
// workers and helpers too), and those it leaves behind, forked since (as
// squid's pinger was, once squid answered) or as it died: this process is
// their subreaper (PR_SET_CHILD_SUBREAPER) meanwhile, so they come to it
// when their parent ends, rather than to init, unseen. The processes the
// test binary runs itself are not the check's.
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
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("subreaper: %v", err)
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()
	child := exec.Command(os.Args[0], "-test.run", strings.Join(run, "/"), "-test.count", "1")
	// In a process group of its own, which its processes inherit: those
	// that come to this one are told from the ones this test binary runs
	// itself.
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
	pidfds := map[int]int{} // the processes watched, by pid
	defer func() {
		for _, fd := range pidfds {
			_ = unix.Close(fd)
		}
	}()
	// watch adds pids to the processes watched; one gone already is
	// not.
	watch := func(pids []int) {
		for _, pid := range pids {
			if _, ok := pidfds[pid]; ok || pid == child.Process.Pid {
				continue
			}
			if fd, err := unix.PidfdOpen(pid, 0); err == nil {
				pidfds[pid] = fd
			}
		}
	}
	watch(descendants(child.Process.Pid))
	if len(pidfds) == 0 {
		t.Fatal("the child test binary started no process")
	}
	kill() // no cleanup of the child's runs
	// A pidfd reads as readable once its process has ended; one the
	// child left comes to this process meanwhile (subreaper), and is
	// watched from then on.
	deadline := time.Now().Add(within)
	for {
		var running []int
		var fds []unix.PollFd
		for pid, fd := range pidfds {
			if p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}; !ended(t, p) {
				running, fds = append(running, pid), append(fds, p[0])
			}
		}
		// Looked for after the ended ones are read: a process's
		// children have come here by the time it reads as ended.
		watched := len(pidfds)
		for _, c := range children(os.Getpid()) {
			if g, err := syscall.Getpgid(c); err == nil && g == child.Process.Pid {
				watch(append([]int{c}, descendants(c)...))
			}
		}
		left := time.Until(deadline)
		if len(pidfds) > watched && left > 0 {
			continue
		}
		if len(running) == 0 || left <= 0 {
			for _, pid := range running {
				cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
				_ = unix.PidfdSendSignal(pidfds[pid], unix.SIGKILL, nil, 0) // this test's: ended here
				t.Errorf("process %d (%s) still ran %s after the test binary that started it died", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")), within)
			}
			reap(pidfds)
			return
		}
		// Until one ends, or a while for one the child left to come.
		if _, err := unix.Poll(fds, int(min(left, orphanScan).Milliseconds())); err != nil && err != syscall.EINTR {
			t.Fatal(err)
		}
	}
}

// orphanScan is how often EndWithTheTestBinary looks for processes the
// child left, come to it, while the ones it watches run.
const orphanScan = 50 * time.Millisecond

// ended reports whether the process of the pidfd in p has ended.
func ended(t *testing.T, p []unix.PollFd) bool {
	t.Helper()
	n, err := unix.Poll(p, 0)
	for err == syscall.EINTR {
		n, err = unix.Poll(p, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// reap waits for those of the processes of pidfds that are this process's
// children (left by the child test binary, come to it), ended or killed,
// so that none stays a zombie of the test binary; the others are not
// waited for (ECHILD).
func reap(pidfds map[int]int) {
	for _, fd := range pidfds {
		var info unix.Siginfo
		_ = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED, nil)
	}
}

// children are pid's children: none when it has ended.
func children(pid int) []int {
	var all []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f) // a task or process gone since: none
		for _, p := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(p); err == nil {
				all = append(all, c)
			}
		}
	}
	return all
}

// descendants are the processes below pid: its children, theirs, and so on.
func descendants(pid int) []int {
	var all []int
	for _, c := range children(pid) {
		all = append(append(all, c), descendants(c)...)
	}
	return all
}
