package redistest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv names, in the test binary run by TestServersEndWithTheTestBinary,
// how the child leaves its server.
const childEnv = "REDISTEST_ORPHAN_CHILD"

// TestServersEndWithTheTestBinary: a test binary that dies without its
// cleanups (go test's -timeout panic, a kill) takes the servers it started
// with it, a paused one too, rather than leave redis-server processes
// running on the machine for good. The test binary is run again as the
// child that starts the server, and killed.
func TestServersEndWithTheTestBinary(t *testing.T) {
	if how := os.Getenv(childEnv); how != "" {
		s := StartServer(t)
		if how == "paused" {
			s.Pause()
		}
		fmt.Printf("pid %d\n", s.cmd.Process.Pid)
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent kills it
		return
	}
	RequireBinaries(t)
	for _, how := range []string{"running", "paused"} {
		t.Run(how, func(t *testing.T) {
			child := exec.Command(os.Args[0], "-test.run", "^TestServersEndWithTheTestBinary$", "-test.count", "1")
			// Its temporary directories, left by a child that is killed, in
			// this test's.
			child.Env = append(os.Environ(), childEnv+"="+how, "TMPDIR="+t.TempDir())
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
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				_ = child.Process.Kill()
				_ = child.Wait()
				t.Fatalf("the child named no server: %q, %v", line, err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
			if err != nil {
				t.Fatalf("the child's line %q: %v", line, err)
			}
			pidfd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				t.Fatalf("pidfd of redis-server %d: %v", pid, err)
			}
			defer unix.Close(pidfd)
			_ = child.Process.Kill() // no cleanup of the child's runs
			_ = child.Wait()
			// The pidfd reads as readable once the process has ended.
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			for {
				n, err := unix.Poll(fds, int(upWithin.Milliseconds()))
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) // this test's server: ended here
					t.Fatalf("redis-server %d (%s) still runs %s after the test binary that started it died", pid, how, upWithin)
				}
				return
			}
		})
	}
}
