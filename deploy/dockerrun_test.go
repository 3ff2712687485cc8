package deploy_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dockerRuns returns the `docker run` commands written in text (a README's
// code block, a Dockerfile's comment), each with its continuation lines
// joined and comment markers dropped.
func dockerRuns(text string) []string {
	var runs []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		if cur == "" && !strings.HasPrefix(l, "docker run ") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		runs = append(runs, cur+l)
		cur = ""
	}
	return runs
}

// stopTimeout is the --stop-timeout of a docker run command, in seconds;
// ok is false when it gives none.
func stopTimeout(run string) (time.Duration, bool) {
	m := regexp.MustCompile(`(?:^|\s)--stop-timeout[= ](\d+)(?:\s|$)`).FindStringSubmatch(run)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// checkDockerRuns lists the docker run commands of text (named where) that
// would let `docker stop` kill paygate before it has drained: Docker waits
// 10 s by default after the SIGTERM, and then sends SIGKILL, a third of the
// way into the image's 30 s drain.
func checkDockerRuns(where, text string, shutdown time.Duration) problems {
	var ps problems
	runs := dockerRuns(text)
	if len(runs) == 0 {
		ps.add("%s: no docker run command found", where)
	}
	for _, run := range runs {
		d, ok := stopTimeout(run)
		if !ok {
			d = 10 * time.Second // Docker's default
		}
		if d <= shutdown+closeAfterDrain {
			ps.add("%s: %q: docker stop kills it %s after SIGTERM; server.shutdown_timeout %s and closing after it (%s) need --stop-timeout above %d",
				where, run, d, shutdown, closeAfterDrain, int((shutdown + closeAfterDrain).Seconds()))
		}
	}
	return ps
}

// TestDockerRunGivesTheDrainItsTime: the README's and the Dockerfile's
// docker run commands give the container a stop timeout longer than the
// image's config drains, as the compose file (stop_grace_period) and the
// Kubernetes manifest (terminationGracePeriodSeconds) do. Without it a
// `docker stop` SIGKILLed paygate 10 s into its 30 s drain: streams in
// flight cut without the shutdown error event, the ledger's queued costs
// lost.
func TestDockerRunGivesTheDrainItsTime(t *testing.T) {
	cfg, err := loadConfig("../config.yaml", map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	shutdown := cfg.Server.ShutdownTimeout.D()
	for _, f := range []string{"../README.md", "../Dockerfile"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkDockerRuns(f, string(data), shutdown).want(t, "docker run")
	}
}

// TestDockerRunChecksCatch: the check above finds a run without
// --stop-timeout or with one too short, and takes a long enough one.
func TestDockerRunChecksCatch(t *testing.T) {
	tests := []struct {
		text string
		bad  bool
	}{
		{"docker run -p 8080:8080 paygate", true},
		{"# docker run --stop-timeout 20 -p 8080:8080 \\\n#   -v d:/var/lib/paygate paygate", true},
		{"docker run --stop-timeout 35 -p 8080:8080 \\\n  -v d:/var/lib/paygate paygate", false},
		{"docker run --stop-timeout=35 paygate", false},
		{"no command here", true},
	}
	for _, tc := range tests {
		if got := len(checkDockerRuns("x", tc.text, 30*time.Second)) > 0; got != tc.bad {
			t.Errorf("%q: found a problem %v; want %v", tc.text, got, tc.bad)
		}
	}
}
