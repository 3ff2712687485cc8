package testproc

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// selfEnv names, in the test binary TestEndWithTheTestBinaryFailsOnWhatOutlivesIt
// runs again, the case whose processes EndWithTheTestBinary checks there.
const selfEnv = "TESTPROC_SELF_CHILD"

// selfCases are the processes the check is run on: sh started as a server
// is (Start: SIGTERM when the test binary dies), which forks one on that
// signal, as squid's pinger outlived squid (forked once squid answered, it
// was not among the processes listed when the check started), or forks
// nothing.
var selfCases = []struct {
	name   string
	script string
	fails  bool // the check fails the test, naming what outlived the binary
}{
	{"one forked as the binary dies", `trap 'sleep 37 & exit' TERM; echo ready; while :; do sleep 0.1; done`, true},
	{"every one ends", `echo ready; while :; do sleep 0.1; done`, false},
}

// TestEndWithTheTestBinaryFailsOnWhatOutlivesIt: EndWithTheTestBinary
// fails its test for a process that outlives the killed test binary, one
// forked after the check listed the binary's processes too, and passes one
// whose processes all end with it, the test binary's own running on. The
// check is run in the test binary run again, whose result this reads.
func TestEndWithTheTestBinaryFailsOnWhatOutlivesIt(t *testing.T) {
	if name := os.Getenv(selfEnv); name != "" {
		if os.Getenv(orphanEnv) == "" {
			// A process of this test binary's own, which runs on past
			// the check: not the child's.
			own := exec.Command("sleep", "38")
			if err := own.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = own.Process.Kill(); _ = own.Wait() }()
		}
		for _, tc := range selfCases {
			if tc.name == name {
				EndWithTheTestBinary(t, 3*time.Second, func(t *testing.T) {
					sh := exec.Command("sh", "-c", tc.script)
					out, err := sh.StdoutPipe()
					if err != nil {
						t.Fatal(err)
					}
					Start(t, sh)
					// Its trap set: a signal before it ended sh alone.
					if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
						t.Fatalf("sh said %q, %v; want ready", line, err)
					}
				})
			}
		}
		return
	}
	for _, tc := range selfCases {
		t.Run(tc.name, func(t *testing.T) {
			run := exec.Command(os.Args[0], "-test.run", "^TestEndWithTheTestBinaryFailsOnWhatOutlivesIt$", "-test.count", "1", "-test.v")
			run.Env = append(os.Environ(), selfEnv+"="+tc.name)
			out, err := run.CombinedOutput()
			failed := strings.Contains(string(out), "sleep 37") && strings.Contains(string(out), "still ran")
			switch {
			case tc.fails && (err == nil || !failed):
				t.Errorf("the check passed a test binary that left sh's `sleep 37` running (%v):\n%s", err, out)
			case !tc.fails && err != nil:
				t.Errorf("the check failed a test binary whose processes all ended (%v):\n%s", err, out)
			}
		})
	}
}
