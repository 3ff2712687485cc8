// Command paygate is the sidecar: an OpenAI-compatible proxy that executes
// WeChat Pay payment tool calls itself. This package only parses flags and
// wires the packages together; it holds no logic of its own.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `paygate — an OpenAI-compatible sidecar that takes payments safely

Usage:
  paygate [serve] [-config FILE]     run the proxy (default)
  paygate check-config [-config FILE] validate a config file; errors name file:line
  paygate demo                       play a purchase offline (scripted model, WeChat Pay simulator)
  paygate version                    print the version (also --version)
  paygate audit verify|export [-config FILE] check the audit chain; JSONL export
  paygate store status [-config FILE] whether the store still holds orders and
                                     events in flight (exit 0 when drained)
  paygate healthcheck [-config FILE | -url URL]
                                     exit 0 when /healthz answers, on the config's server.listen
                                     or at URL (default http://127.0.0.1:8080/healthz; a URL
                                     without a path, or host:port, asks its /healthz)
  paygate help COMMAND               a command's flags (also paygate COMMAND -h)

The default config file is ./config.yaml.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a sub-command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && (isHelp(args[0]) || args[0] == "-version" || args[0] == "--version" || len(args[0]) > 0 && args[0][0] != '-') {
		// A help flag first is the command list, not serve's flags: taken
		// for serve's, `paygate --help` showed -config alone and exited 2.
		cmd, args = args[0], args[1:]
	}
	if cmd == "serve" && len(args) > 0 && args[0] != "serve" {
		if msg, moved := flagsBeforeCommand(args); moved {
			fmt.Fprintln(stderr, msg)
			return 2
		}
	}
	switch cmd {
	case "serve":
		return cmdServe(args, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "demo":
		return cmdDemo(args, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(args, stdout, stderr)
	case "audit":
		return cmdAudit(args, stdout, stderr)
	case "store":
		return cmdStore(args, stdout, stderr)
	case "version", "-version", "--version":
		if len(args) == 1 && isHelp(args[0]) {
			fmt.Fprintln(stdout, "paygate version: print the version; it takes no arguments")
			return 0
		}
		if len(args) > 0 {
			// A flag it does not have (-json, --short) is a usage error,
			// not the plain line a script would take for what it asked.
			fmt.Fprintln(stderr, "paygate version takes no arguments")
			return 2
		}
		fmt.Fprintln(stdout, "paygate", buildVersion())
		return 0
	case "help", "-h", "--h", "-help", "--help":
		if cmd == "help" && len(args) > 0 && args[0] != "help" && !strings.HasPrefix(args[0], "-") {
			// `paygate help audit` is audit's help, as `paygate audit -h`
			// gives it: it printed the command list whatever was named, and
			// `paygate help nosuch` exited 0 as if that command were there.
			return run(append(args[:len(args):len(args)], "-h"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "paygate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// buildVersion is this binary's version as `paygate version` prints it,
// serve's first log line says it and /metrics labels paygate_build_info
// with it.
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(version, bi)
}

// versionOf is the version to print: the one stamped with -ldflags (the
// image's), else the module version `go install …@v1.2.3` records, else
// "dev" with the VCS revision `go build` records in a git checkout. A plain
// "dev" told an operator nothing about which build was running.
func versionOf(stamped string, bi *debug.BuildInfo) string {
	if stamped != "dev" || bi == nil {
		return stamped
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return stamped
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += ", modified"
	}
	return stamped + " (" + rev + ")"
}

// commandsWithFlags are the commands that take flags, each with its
// sub-commands (audit verify, store status).
var commandsWithFlags = map[string]bool{"serve": false, "check-config": false, "healthcheck": false, "audit": true, "store": true}

// flagsBeforeCommand reports, with the line to write instead, that args
// (serve's, no command first) are flags followed by a command: `paygate
// -config prod.yaml check-config` was refused as serve's unexpected
// argument "check-config", told to "give the config file with -config
// FILE", which it had.
func flagsBeforeCommand(args []string) (msg string, ok bool) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFlag(fs)
	var flags, rest []string
	if err := fs.Parse(args); err != nil {
		// A flag serve lacks, the command's own (healthcheck's -url,
		// audit's -text), stops the parse before the command is reached:
		// the command is the first word that names one.
		i := wordIndex(args, isCommandWord)
		if i < 1 {
			return "", false
		}
		flags, rest = args[:i], args[i:]
	} else {
		if fs.NArg() == 0 {
			return "", false
		}
		rest = fs.Args()
		flags = args[:len(args)-len(rest)]
	}
	sub, known := commandsWithFlags[rest[0]]
	if !known {
		if slices.Contains(flaglessCommands, rest[0]) {
			return "paygate: " + rest[0] + " takes no flags: paygate " + rest[0], true
		}
		return "", false
	}
	words, after := rest[:1], rest[1:]
	if sub && len(after) > 0 {
		// The sub-command after flags of its own (`-config F audit -text
		// verify`) goes first too: the line given was `paygate audit
		// -config F -text verify`, itself refused.
		i := wordIndex(after, func(a string) bool { return slices.Contains(subCommands[rest[0]], a) })
		switch {
		case i >= 0 && (i == 0 || strings.HasPrefix(after[0], "-")):
			words = []string{rest[0], after[i]}
			after = append(after[:i:i], after[i+1:]...)
		case !strings.HasPrefix(after[0], "-"):
			words, after = rest[:2], rest[2:]
		}
	}
	line := append(append(append([]string{"paygate"}, words...), flags...), after...)
	return "paygate: flags go after the command: " + strings.Join(line, " "), true
}

// subCommands are the sub-commands of the commands that have them.
var subCommands = map[string][]string{"audit": {"verify", "export"}, "store": {"status"}}

// flagsBeforeSubCommand reports, with the line to write instead, that
// args (cmd's, after its name) are flags followed by one of its
// sub-commands (subCommands): `paygate audit -config prod.yaml verify` was told
// "unknown command "-config"" and the command's usage.
func flagsBeforeSubCommand(cmd string, args []string) (msg string, ok bool) {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") || isHelp(args[0]) {
		return "", false
	}
	i := wordIndex(args, func(a string) bool { return slices.Contains(subCommands[cmd], a) })
	if i < 1 {
		return "", false
	}
	line := append(append([]string{"paygate", cmd, args[i]}, args[:i]...), args[i+1:]...)
	return "paygate: flags go after the command: " + strings.Join(line, " "), true
}

// valueFlags are the commands' flags that take a value (-config FILE, -o
// FILE, -head SEQ:HASH, -url URL).
var valueFlags = []string{"config", "head", "o", "url"}

// wordIndex is the index of the first of args that is (a) word and no
// flag's value: in `audit -config export verify` the sub-command is
// verify, export the file -config names; -1 when there is none.
func wordIndex(args []string, word func(string) bool) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if word(a) {
			return i
		}
		if name, ok := strings.CutPrefix(a, "-"); ok && !strings.Contains(name, "=") &&
			slices.Contains(valueFlags, strings.TrimPrefix(name, "-")) {
			i++ // its value
		}
	}
	return -1
}

// flaglessCommands are the commands that take no flags.
var flaglessCommands = []string{"demo", "version", "help"}

// isCommandWord reports whether arg names a command flagsBeforeCommand
// moves flags after.
func isCommandWord(arg string) bool {
	_, ok := commandsWithFlags[arg]
	return ok || slices.Contains(flaglessCommands, arg)
}

// isHelp reports whether arg is one of the help flags (as the flag package
// takes them: -h, -help, with one dash or two).
func isHelp(arg string) bool {
	switch arg {
	case "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

// parseFlags parses args into fs, whose output is stderr afterwards. ok is
// false when the command is to exit with code: 0 when a help flag asked
// for the flags, printed on stdout, 2 for a bad flag, reported on stderr.
// A help asked for is the answer, not a usage error: exiting 2 for it made
// a script or a user asking a command's flags see a failure, and printed on
// stderr (where the flag package writes both) `paygate serve -h | less`
// showed nothing, where `paygate -h` and `paygate audit -h` print on stdout.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		stdout.Write(out.Bytes())
		return 0, false
	}
	stderr.Write(out.Bytes())
	return 2, false
}

// configFlag registers -config on fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", defaultConfig, "config file (YAML)")
}

// defaultConfig is the config file every command reads unless told.
const defaultConfig = "config.yaml"

// emptyConfig reports, and complains, that -config was given empty
// (-config "$VAR", the variable unset): it said only "reading config: open
// : no such file or directory". A usage error, refused as healthcheck
// refuses its empty -config.
func emptyConfig(fs *flag.FlagSet, path string, stderr io.Writer) bool {
	if path != "" {
		return false
	}
	fmt.Fprintf(stderr, "paygate %s: -config is empty: give a file, or leave it out to read ./%s\n", fs.Name(), defaultConfig)
	return true
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
	cfg, err := config.Load(path)
	if err != nil && path == defaultConfig && errors.Is(err, fs.ErrNotExist) {
		// A built binary run outside the repository root said only
		// "open config.yaml: no such file or directory".
		return nil, fmt.Errorf("%w: paygate reads ./config.yaml unless told: run it from the repository root, give -config FILE, or -config /dev/null for the built-in defaults", err)
	}
	if err == nil {
		warnCatalogSize(cfg)
	}
	return cfg, err
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !noArguments(fs, stderr) || emptyConfig(fs, *path, stderr) {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// serve refuses these; a pre-flight check run where serve will run
	// must not pass a start that then fails.
	if err := checkProxyEnv(os.Getenv); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d providers, %d models, %d clients)\n", *path, len(cfg.Providers), len(cfg.Models), len(cfg.Clients))
	return 0
}

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !noArguments(fs, stderr) || emptyConfig(fs, *path, stderr) {
		return 2
	}
	// SIGHUP is what a reload sends (systemctl reload, docker kill -s HUP, a
	// config reloader), and a closed terminal: left to its default it
	// killed paygate at once, every stream cut without its error event and
	// the payments in progress stopped. paygate reads its config once, so
	// serve logs it and goes on, as Caddy does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// A log reader that goes away (`paygate serve 2>&1 | jq`, ended by the
	// same Ctrl-C; a log shipper restarted) broke the pipe on stderr, and a
	// Go program that does not ask for SIGPIPE dies of it at its next write
	// there: the drain's first log line killed paygate, every stream cut
	// without its end. Asked for, the write fails (the line is lost) and
	// serve goes on.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	applyGCDefaults(os.Getenv)
	if r := heapProfileRate(cfg.Server.Pprof, os.Getenv); r >= 0 {
		runtime.MemProfileRate = r
	}
	// The first signal starts the drain (up to server.shutdown_timeout); a
	// second ends the process at once, as an operator pressing Ctrl-C
	// again or a supervisor repeating SIGTERM expects (dieOf). The stores
	// are crash-safe: bbolt commits are atomic, and a write cut short in
	// Redis is repaired from its intent.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan struct{})
	defer close(served)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-served:
			return
		}
		select {
		case sig := <-sigs:
			dieOf(sig.(syscall.Signal))
		case <-served:
		}
	}()
	err = checkProxyEnv(os.Getenv)
	if err == nil {
		err = serveHangups(ctx, cfg, stderr, nil, hup)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		// In the log's own format, secrets masked: a log pipeline that
		// reads paygate's JSON and alerts on its errors got a plain-text
		// line for why it stopped (a port taken, a store that would not
		// open), the one line a crash loop leaves. A config that does not
		// load is reported above as check-config reports it.
		logging.New(stderr, logging.ParseLevel(cfg.Log.Level), cfg.Secrets()).Error("paygate stopped", "err", err)
		return 1
	}
	return 0
}

// dieOf ends the process as sig's default action does: ended by sig, as a
// supervisor reads it. As PID 1 of its PID namespace (the image's
// ENTRYPOINT in a container) no signal can end it that way (the kernel
// drops one it has no handler for; the Go runtime, failing, exits with
// status 2, paygate's for a wrong command line): it exits with 128 plus
// the signal's number, the status a shell and a container's state give a
// process ended by it (143 for SIGTERM, 130 for SIGINT).
func dieOf(sig syscall.Signal) {
	if os.Getpid() != 1 {
		signal.Reset(sig)
		raise(sig)
	}
	os.Exit(128 + int(sig))
}

// defaultHealthURL is what healthcheck asks with neither -url nor -config:
// the default server.listen's /healthz.
const defaultHealthURL = "http://" + config.DefaultListen + "/healthz"

// cmdHealthcheck lets a distroless image (no curl) check itself: GET
// /healthz at -url, or, with -config, on the server.listen of that config
// as serve reads it. A container's HEALTHCHECK runs with serve's
// environment, so a PAYGATE_LISTEN, or a mounted config, that moves the
// port moves the check with it; a fixed URL made a healthy container
// unhealthy (and a service waiting for it never start).
func cmdHealthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := fs.String("url", "", "health URL (default "+defaultHealthURL+")")
	path := fs.String("config", "", "config file: check /healthz on its server.listen")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !noArguments(fs, stderr) {
		return 2
	}
	bad := ""
	fs.Visit(func(f *flag.Flag) {
		if f.Value.String() == "" && bad == "" {
			bad = f.Name
		}
	})
	if bad != "" {
		// Taken as not given, an empty one (-config "$VAR", the variable
		// unset) asked the default address: another listener there
		// passed for this paygate.
		fmt.Fprintf(stderr, "paygate healthcheck: -%s is empty: leave it out to ask %s\n", bad, defaultHealthURL)
		return 2
	}
	target := *url
	switch {
	case *url != "" && *path != "":
		fmt.Fprintln(stderr, "paygate healthcheck: give -config or -url, not both")
		return 2
	case *path != "":
		cfg, err := loadConfig(*path)
		if err == nil {
			target, err = healthURL(cfg.Server.Listen)
		}
		if err != nil {
			fmt.Fprintln(stderr, "unhealthy:", err)
			return 1
		}
	case target == "":
		target = defaultHealthURL
	default:
		target = healthURLOf(target)
	}
	// Direct: the listener is this machine's (this container's), and an
	// HTTP_PROXY set for the providers cannot reach it; Go skips the proxy
	// for loopback addresses only, not for a host or service name.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	c := &http.Client{Timeout: 3 * time.Second, Transport: tr}
	resp, err := c.Get(target)
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

// healthURLOf reads -url as an operator writes it: the listener's address
// (127.0.0.1:8080, as the help's default reads; ":8080" on 127.0.0.1, as
// server.listen writes every interface) or its URL without a path
// asks that listener's /healthz; a URL with a path is asked as given. Asked
// as written, the first was a parse error and the second the server's root,
// a 404: a HEALTHCHECK overridden so kept a healthy container unhealthy.
func healthURLOf(raw string) string {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := neturl.Parse(raw)
	if err != nil {
		return raw // the request names the error
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/healthz"
	}
	if strings.HasPrefix(u.Host, ":") { // ":8080", as server.listen writes every interface
		u.Host = "127.0.0.1" + u.Host
	}
	return u.String()
}

// healthURL is the /healthz URL of a server.listen address, as a local
// process reaches it: a listener on every interface (0.0.0.0, "::" or no
// host, which Go opens for IPv4 too) on 127.0.0.1.
func healthURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("server.listen %q: %w", listen, err)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("server.listen %q picks a free port at start: give -url", listen)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
