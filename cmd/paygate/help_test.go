package main

import (
	"strings"
	"testing"
)

// TestHelpGoesToStandardOutput: help asked for is the answer, so it goes
// to standard output with exit 0, as `paygate -h`, `paygate audit -h` and
// `paygate demo -h` already did; the commands with flags printed theirs on
// standard error, so `paygate serve -h | less` showed nothing and a script
// reading the flags got none. A bad flag still says so on standard error.
func TestHelpGoesToStandardOutput(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // contained in standard output ("": it is empty)
		stderr string // contained in standard error ("": it is empty)
	}{
		{"paygate -h", []string{"-h"}, 0, "paygate check-config", ""},
		{"serve -h", []string{"serve", "-h"}, 0, "-config", ""},
		{"serve -help with no sub-command", []string{"-config", "x.yaml", "-help"}, 0, "-config", ""},
		{"check-config --help", []string{"check-config", "--help"}, 0, "-config", ""},
		{"healthcheck -h", []string{"healthcheck", "-h"}, 0, "-url", ""},
		{"audit verify -h", []string{"audit", "verify", "-h"}, 0, "-head", ""},
		{"audit export -help", []string{"audit", "export", "-help"}, 0, "-from", ""},
		{"a bad flag", []string{"check-config", "-nope"}, 2, "", "flag provided but not defined: -nope"},
		{"a bad flag of serve", []string{"serve", "-nope"}, 2, "", "-config"},
		// version printed the version and exited 0 whatever followed it:
		// `paygate version -json` or `paygate version --short` in a
		// script got the plain line, no usage error to say the flag is
		// not there, and `paygate version -h` gave no help.
		{"version", []string{"version"}, 0, "paygate ", ""},
		{"--version", []string{"--version"}, 0, "paygate ", ""},
		{"version -h", []string{"version", "-h"}, 0, "paygate version: print the version", ""},
		{"a flag version does not take", []string{"version", "-json"}, 2, "", "paygate version takes no arguments"},
		{"an argument after --version", []string{"--version", "short"}, 2, "", "paygate version takes no arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRun(t, tc.args, tc.code, tc.stdout, tc.stderr)
		})
	}
}

// TestHelpOfACommand: `paygate help X` is X's help, as `paygate X -h`
// gives it (git's and go's convention); it printed the command list
// whatever X was, so `paygate help audit` never showed audit's -head or
// -text, and `paygate help nosuch` exited 0 as if the command were there.
func TestHelpOfACommand(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string // contained in standard output ("": it is empty)
		stderr string // contained in standard error ("": it is empty)
	}{
		{[]string{"help"}, 0, "paygate check-config", ""},
		{[]string{"help", "audit"}, 0, "paygate audit verify [-config FILE] [-head SEQ:HASH]", ""},
		{[]string{"help", "audit", "verify"}, 0, "-trust-marks", ""},
		{[]string{"audit", "help", "verify"}, 0, "Usage of audit verify", ""},
		{[]string{"audit", "help", "export"}, 0, "Usage of audit export", ""},
		{[]string{"audit", "help", "nosuch"}, 2, "", `paygate audit: unknown command "nosuch"`},
		{[]string{"help", "check-config"}, 0, "Usage of check-config", ""},
		{[]string{"help", "store"}, 0, "paygate store status [-config FILE]", ""},
		{[]string{"store", "status", "-h"}, 0, "Usage of store status", ""},
		{[]string{"store", "nosuch"}, 2, "", `paygate store: unknown command "nosuch"`},
		// As audit's: `paygate store help status` printed store's usage,
		// not status's flags, and `paygate store help nosuch` exited 0
		// with it, as if that command were there.
		{[]string{"store", "help", "status"}, 0, "Usage of store status", ""},
		{[]string{"store", "help", "nosuch"}, 2, "", `paygate store: unknown command "nosuch"`},
		{[]string{"help", "healthcheck"}, 0, "-url", ""},
		{[]string{"help", "version"}, 0, "paygate version: print the version", ""},
		{[]string{"help", "demo"}, 0, "paygate demo: play a purchase offline", ""},
		{[]string{"help", "nosuch"}, 2, "", `paygate: unknown command "nosuch"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			checkRun(t, tc.args, tc.code, tc.stdout, tc.stderr)
		})
	}
}

// checkRun runs paygate with args and checks its exit code, and that stdout
// and stderr each contain the text wanted, or are empty where "" is wanted.
func checkRun(t *testing.T, args []string, wantCode int, wantStdout, wantStderr string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(args, &stdout, &stderr)
	if code != wantCode {
		t.Errorf("exit %d; want %d (stdout %q, stderr %q)", code, wantCode, stdout.String(), stderr.String())
	}
	if wantStdout == "" {
		if stdout.Len() != 0 {
			t.Errorf("stdout %q; want nothing", stdout.String())
		}
	} else if !strings.Contains(stdout.String(), wantStdout) {
		t.Errorf("stdout %q; want it to contain %q (stderr %q)", stdout.String(), wantStdout, stderr.String())
	}
	if wantStderr == "" {
		if stderr.Len() != 0 {
			t.Errorf("stderr %q; want nothing", stderr.String())
		}
	} else if !strings.Contains(stderr.String(), wantStderr) {
		t.Errorf("stderr %q; want it to contain %q", stderr.String(), wantStderr)
	}
}

// TestFlagsBeforeTheCommand: a flag written before the sub-command
// (`paygate -config prod.yaml check-config`) was taken as serve's, and the
// command as an argument serve does not take: "paygate serve: unexpected
// argument "check-config": give the config file with -config FILE", to a
// user who had given it. It is still a usage error (serve's flags are the
// only ones before a command), now saying how to write it.
func TestFlagsBeforeTheCommand(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"-config", "prod.yaml", "check-config"}, "paygate: flags go after the command: paygate check-config -config prod.yaml"},
		{[]string{"--config=prod.yaml", "serve"}, "paygate: flags go after the command: paygate serve --config=prod.yaml"},
		{[]string{"-config", "prod.yaml", "audit", "verify", "-text"}, "paygate: flags go after the command: paygate audit verify -config prod.yaml -text"},
		{[]string{"-config", "prod.yaml", "store", "status"}, "paygate: flags go after the command: paygate store status -config prod.yaml"},
		{[]string{"-config", "prod.yaml", "demo"}, "paygate: demo takes no flags: paygate demo"},
		{[]string{"-config", "prod.yaml", "extra.yaml"}, `paygate serve: unexpected argument "extra.yaml": give the config file with -config FILE`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			checkRun(t, tc.args, 2, "", tc.stderr)
		})
	}
}

// TestAnotherCommandsFlagsBeforeIt: a flag serve does not have, written
// before the command that has it (`paygate -url URL healthcheck`, audit's
// -text), stopped serve's parse before the command was seen: "flag
// provided but not defined: -url" and serve's usage, which names neither
// the command nor where the flag goes. It gets the line to write, as
// -config before a command does.
func TestAnotherCommandsFlagsBeforeIt(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"-url", "http://127.0.0.1:9090", "healthcheck"}, "paygate: flags go after the command: paygate healthcheck -url http://127.0.0.1:9090"},
		{[]string{"-config", "prod.yaml", "-text", "audit", "verify"}, "paygate: flags go after the command: paygate audit verify -config prod.yaml -text"},
		{[]string{"-o", "out.jsonl", "audit", "export", "-config", "prod.yaml"}, "paygate: flags go after the command: paygate audit export -o out.jsonl -config prod.yaml"},
		{[]string{"-json", "version"}, "paygate: version takes no flags: paygate version"},
		{[]string{"-nosuch"}, "flag provided but not defined: -nosuch"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			checkRun(t, tc.args, 2, "", tc.stderr)
		})
	}
}

// TestFlagsBeforeTheSubCommand: a flag written between a command and its
// sub-command (`paygate audit -config prod.yaml verify`, `paygate store
// -config prod.yaml status`) was taken for the sub-command: "unknown
// command "-config"" and the command's whole usage, which names the flag
// as one the user gave. It is still a usage error, now saying how to write
// it, as a flag before the command is told.
func TestFlagsBeforeTheSubCommand(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"audit", "-config", "prod.yaml", "verify"}, "paygate: flags go after the command: paygate audit verify -config prod.yaml"},
		{[]string{"audit", "-config=prod.yaml", "-text", "verify", "-head", "4:ab"}, "paygate: flags go after the command: paygate audit verify -config=prod.yaml -text -head 4:ab"},
		{[]string{"audit", "-o", "out.jsonl", "export"}, "paygate: flags go after the command: paygate audit export -o out.jsonl"},
		{[]string{"store", "-config", "prod.yaml", "status"}, "paygate: flags go after the command: paygate store status -config prod.yaml"},
		{[]string{"store", "-config", "prod.yaml"}, `paygate store: unknown command "-config"`},
		// Flags on both sides of the command: the line given was
		// `paygate audit -config prod.yaml -text verify`, itself refused.
		{[]string{"-config", "prod.yaml", "audit", "-text", "verify"}, "paygate: flags go after the command: paygate audit verify -config prod.yaml -text"},
		{[]string{"-config", "prod.yaml", "store", "-config", "other.yaml", "status"}, "paygate: flags go after the command: paygate store status -config prod.yaml -config other.yaml"},
		// A flag's value that spells a sub-command or a command (a file
		// named export, status, audit) is the flag's: the line given was
		// `paygate audit export -config verify`, another command, or
		// `paygate audit verify -o export`, refused.
		{[]string{"audit", "-config", "export", "verify"}, "paygate: flags go after the command: paygate audit verify -config export"},
		{[]string{"audit", "-o", "verify", "export"}, "paygate: flags go after the command: paygate audit export -o verify"},
		{[]string{"store", "-config", "status", "status"}, "paygate: flags go after the command: paygate store status -config status"},
		{[]string{"-config", "x.yaml", "audit", "-o", "verify", "export"}, "paygate: flags go after the command: paygate audit export -config x.yaml -o verify"},
		{[]string{"-text", "-config", "audit", "audit", "verify"}, "paygate: flags go after the command: paygate audit verify -text -config audit"},
		{[]string{"-url", "store", "healthcheck"}, "paygate: flags go after the command: paygate healthcheck -url store"},
		// No sub-command after the command: the word after it stays
		// first, refused there by name (`unknown command "nosuch"`).
		{[]string{"-config", "x.yaml", "audit", "nosuch"}, "paygate: flags go after the command: paygate audit nosuch -config x.yaml"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			checkRun(t, tc.args, 2, "", tc.stderr)
		})
	}
}
