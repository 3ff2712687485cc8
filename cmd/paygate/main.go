// Command paygate is the sidecar: an OpenAI-compatible proxy that executes
// WeChat Pay payment tool calls itself. This package only parses flags and
// wires the packages together; it holds no logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/paygate/paygate/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `paygate — an OpenAI-compatible sidecar that takes payments safely

Usage:
  paygate [serve] [-config FILE]     run the proxy (default)
  paygate check-config [-config FILE] validate a config file; errors name file:line
  paygate demo                       play a purchase offline (scripted model, WeChat Pay simulator)
  paygate version                    print the version
  paygate audit verify|export [-config FILE] check the audit chain; JSONL export
  paygate healthcheck [-url URL]     exit 0 when /healthz answers (for container health checks)

The default config file is ./config.yaml.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a sub-command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return cmdServe(args, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "demo":
		return cmdDemo(args, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(args, stderr)
	case "audit":
		return cmdAudit(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "paygate", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "paygate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// configFlag registers -config on fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "config.yaml", "config file (YAML)")
}

// noArguments reports, and complains when it is not so, that fs was given
// no argument after its flags: `check-config other.yaml` must not quietly
// check ./config.yaml.
func noArguments(fs *flag.FlagSet, stderr io.Writer) bool {
	if fs.NArg() == 0 {
		return true
	}
	fmt.Fprintf(stderr, "paygate %s: unexpected argument %q: give the config file with -config FILE\n", fs.Name(), fs.Arg(0))
	return false
}

func loadConfig(path string) (*config.Config, error) {
	return config.Load(path)
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !noArguments(fs, stderr) {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d providers, %d models, %d clients)\n", *path, len(cfg.Providers), len(cfg.Models), len(cfg.Clients))
	return 0
}

func cmdServe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !noArguments(fs, stderr) {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	applyGCDefaults(os.Getenv)
	// The first signal starts the drain (up to server.shutdown_timeout); the
	// handler is given back before serve hears of it, so a second signal
	// ends the process at once, as an operator pressing Ctrl-C again or a
	// supervisor repeating SIGTERM expects. The stores are crash-safe: bbolt
	// commits are atomic, and a write cut short in Redis is repaired from its
	// intent.
	sigCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	context.AfterFunc(sigCtx, func() { stop(); cancel() })
	if err := serve(ctx, cfg, stderr, nil); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "paygate:", err)
		return 1
	}
	return 0
}

// cmdHealthcheck lets a distroless image (no curl) check itself.
func cmdHealthcheck(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "health URL")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(*url)
	if err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "unhealthy: status", resp.StatusCode)
		return 1
	}
	return 0
}
