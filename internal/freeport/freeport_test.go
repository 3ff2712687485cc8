package freeport

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// childEnv is set in the test binary TestPortNotHandedToTwoProcesses runs
// again as the other process.
const childEnv = "FREEPORT_TEST_CHILD"

// TestPortNotHandedToTwoProcesses: a port one test binary was handed (its
// server not yet bound to it: a redis-server starting) is not handed to
// another test binary that tries it, as go test runs packages side by side
// on one host; each then started its server on the same port, and one
// failed on "address already in use" or, worse, talked to the other's. So
// is one the other runs under a TMPDIR of its own.
func TestPortNotHandedToTwoProcesses(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string // the other test binary's environment, past this one's
	}{
		{"the same TMPDIR", nil},
		// As testproc.EndWithTheTestBinary runs its children, in a
		// temporary directory removed with its test.
		{"a TMPDIR of its own", []string{"TMPDIR=" + t.TempDir()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Getenv(childEnv) == t.Name() {
				fmt.Printf("port %d\n", Port(t))
				_, _ = io.Copy(io.Discard, os.Stdin) // holds the port until the parent is done
				return
			}
			child := exec.Command(os.Args[0], "-test.run", "^TestPortNotHandedToTwoProcesses$/^"+regexp.QuoteMeta(tc.name)+"$", "-test.count", "1")
			child.Env = append(append(os.Environ(), childEnv+"="+t.Name()), tc.env...)
			child.Stderr = os.Stderr
			stdin, err := child.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = stdin.Close(); _ = child.Wait() }()
			line, err := bufio.NewReader(out).ReadString('\n')
			theirs, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "port "))
			if err != nil || perr != nil {
				t.Fatalf("the other test binary's port: %q, %v", line, err)
			}
			// This process tries the other one's port first.
			tried := false
			candidate = func(lo, hi int) int {
				if !tried {
					tried = true
					return theirs
				}
				return lo + rand.IntN(hi-lo)
			}
			t.Cleanup(func() { candidate = random })
			if ours := Port(t); ours == theirs {
				t.Errorf("port %d handed to this test binary as well as to the other one", ours)
			}
			if !tried {
				t.Error("Port did not try the other test binary's port")
			}
		})
	}
}
