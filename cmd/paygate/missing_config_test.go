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

// TestEmptyConfigFlagIsRefused: -config given empty (-config "$VAR", the
// variable unset) said "reading config: open : no such file or directory",
// naming no flag; it is a usage error, refused as healthcheck refuses its
// empty -config: exit 2 naming the flag.
func TestEmptyConfigFlagIsRefused(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{{"-config", ""}, {"serve", "-config="}, {"check-config", "-config", ""}, {"audit", "verify", "-config", ""}, {"audit", "export", "-config", ""}} {
		t.Run(strings.Join(append([]string{"paygate"}, args...), " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run(args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d; want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "-config is empty") || strings.Contains(stderr.String(), "open :") {
				t.Errorf("stderr %q; want it to say -config is empty", stderr.String())
			}
		})
	}
}
