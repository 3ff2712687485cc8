package main

import (
	"strings"
	"testing"
)

// TestMissingDefaultConfigSaysWhatToDo: run outside the repository root (a
// built binary copied elsewhere), the default ./config.yaml is not there,
// and each command that reads it said only "open config.yaml: no such file
// or directory". It says where paygate looked and what to do instead.
func TestMissingDefaultConfigSaysWhatToDo(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{{}, {"serve"}, {"check-config"}, {"audit", "verify"}, {"healthcheck", "-config", "config.yaml"}} {
		t.Run(strings.Join(append([]string{"paygate"}, args...), " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run(args, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d; want 1 (stderr %q)", code, stderr.String())
			}
			for _, want := range []string{"config.yaml", "repository root", "-config FILE", "-config /dev/null"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q; want it to say %q", stderr.String(), want)
				}
			}
		})
	}
	// A file named on the command line that is missing is only named.
	var stdout, stderr strings.Builder
	if code := run([]string{"check-config", "-config", "other.yaml"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "other.yaml") || strings.Contains(stderr.String(), "/dev/null") {
		t.Errorf("missing -config other.yaml: exit %d, stderr %q; want 1 naming the file alone", code, stderr.String())
	}
}
