package deploy_test

import (
	"fmt"
	"net"
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

// dockerRunFlags returns the -e (name to value; a bare -e NAME, passed from
// the host, gets a stand-in of 32 characters of its own) and -p values of a
// docker run command.
func dockerRunFlags(run string) (env map[string]string, ports []string) {
	env = map[string]string{}
	f := strings.Fields(run)
	for i := 0; i < len(f); i++ {
		flag, val, inline := strings.Cut(f[i], "=")
		if !inline {
			val = ""
		}
		switch flag {
		case "-e", "--env", "-p", "--publish":
		default:
			continue
		}
		if !inline {
			if i+1 >= len(f) {
				break
			}
			i++
			val = f[i]
		}
		val = strings.Trim(val, `"'`)
		switch flag {
		case "-e", "--env":
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				v = fmt.Sprintf("%s-%032d", strings.ToLower(k), len(env))
			}
			env[k] = v
		default:
			ports = append(ports, val)
		}
	}
	return env, ports
}

// checkDockerRunAdmin lists what keeps the docker run commands of text
// (named where) from the image's admin API: with the image's config, the
// simulator's orders are paid, and orders above approval_above approved,
// there only. Some command must set a token and listen on the container's
// every interface, published on the host's loopback only; none may
// publish it on every host interface. envs receives each reaching
// command's container environment, for check-config.
func checkDockerRunAdmin(where, text string, img image) (ps problems, envs []map[string]string) {
	for _, run := range dockerRuns(text) {
		flags, ports := dockerRunFlags(run)
		env := map[string]string{}
		for k, v := range img.Env {
			env[k] = v
		}
		for k, v := range flags {
			env[k] = v
		}
		cfg, err := loadConfig("../config.yaml", env)
		if err != nil {
			ps.add("%s: %q: config.yaml: %v", where, run, err)
			continue
		}
		a := cfg.Server.AdminListen
		if a == "off" || cfg.Admin.Token == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || host != "" && (ip == nil || !ip.IsUnspecified()) {
			continue // the container's loopback: nothing published reaches it
		}
		published := false
		for _, p := range ports {
			parts := strings.Split(p, ":")
			if parts[len(parts)-1] != port {
				continue
			}
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				ps.add("%s: %q publishes the admin port on every host interface (-p %s); want -p 127.0.0.1:%s:%s", where, run, p, port, port)
				continue
			}
			published = true
		}
		if published {
			envs = append(envs, env)
		}
	}
	if len(envs) == 0 {
		ps.add("%s: no docker run reaches the admin API (-e PAYGATE_ADMIN_LISTEN=0.0.0.0:8081 -p 127.0.0.1:8081:8081 -e PAYGATE_ADMIN_TOKEN): the image's simulator is paid, and a large order approved, only there", where)
	}
	return ps, envs
}

// TestDockerRunReachesTheAdminAPI: the README shows a docker run whose
// admin API the host reaches. The image keeps its admin listener on the
// container's loopback, which no published port reaches and the image has
// no shell to reach from inside; its config's simulator pays an order only
// when told through that API (payments.simulator.pay_after is 0), so a
// reader who ran the README's one command could never pay, nor approve,
// an order. Each such command's environment must pass check-config (a
// token shorter than 16 characters is refused on that address).
func TestDockerRunReachesTheAdminAPI(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ps, envs := checkDockerRunAdmin("README.md", string(data), readImage(t))
	ps.want(t, "docker run")
	for _, env := range envs {
		checkConfig(t, "../config.yaml", env)
	}
}

// TestDockerRunAdminChecksCatch: the check above finds a command that
// leaves the admin listener on loopback, gives no token, leaves its port
// unpublished or publishes it on every host interface.
func TestDockerRunAdminChecksCatch(t *testing.T) {
	img := image{Env: map[string]string{"PAYGATE_LISTEN": "0.0.0.0:8080"}}
	tests := []struct {
		text string
		want string // "" for no problem
	}{
		{"docker run -p 8080:8080 -e PAYGATE_CLIENT_KEY paygate", "no docker run reaches"},
		{"docker run -p 127.0.0.1:8081:8081 -e PAYGATE_ADMIN_TOKEN paygate", "no docker run reaches"},
		{"docker run -p 127.0.0.1:8081:8081 -e PAYGATE_ADMIN_LISTEN=0.0.0.0:8081 paygate", "no docker run reaches"},
		{"docker run -e PAYGATE_ADMIN_LISTEN=0.0.0.0:8081 -e PAYGATE_ADMIN_TOKEN paygate", "no docker run reaches"},
		{"docker run -p 8081:8081 -e PAYGATE_ADMIN_LISTEN=0.0.0.0:8081 -e PAYGATE_ADMIN_TOKEN paygate", "on every host interface"},
		{"docker run -p 127.0.0.1:8081:8081 \\\n  -e PAYGATE_ADMIN_LISTEN=0.0.0.0:8081 -e PAYGATE_ADMIN_TOKEN paygate", ""},
	}
	for _, tc := range tests {
		ps, _ := checkDockerRunAdmin("x", tc.text, img)
		wantProblem(t, tc.text, ps, tc.want)
	}
}

// checkImageRuns lists what keeps the image's own config.yaml from running
// as the docker run commands of text (named where) start it, and returns
// each one's container environment (the image's ENV, then its -e flags) for
// check-config; one that mounts a config directory over /etc/paygate runs
// the operator's config and is left out. The Dockerfile's build stage
// checks config.yaml without the runtime stage's ENV, and
// scripts/build-image.sh runs it with its listeners moved to loopback: a
// rule of check-config for a listener other machines reach (a short client
// key, the development key) would fail the image at its every start while
// both passed. Its main listener must be on every interface of the
// container, and published: a container's loopback is out of reach.
func checkImageRuns(where, text string, img image) (ps problems, envs []map[string]string) {
	for _, run := range dockerRuns(text) {
		if strings.Contains(run, ":/etc/paygate") {
			continue
		}
		flags, ports := dockerRunFlags(run)
		env := map[string]string{}
		for k, v := range img.Env {
			env[k] = v
		}
		for k, v := range flags {
			env[k] = v
		}
		envs = append(envs, env)
		cfg, err := loadConfig("../config.yaml", env)
		if err != nil {
			ps.add("%s: %q: config.yaml: %v", where, run, err)
			continue
		}
		host, port, err := net.SplitHostPort(cfg.Server.Listen)
		if ip := net.ParseIP(host); err != nil || host != "" && (ip == nil || !ip.IsUnspecified()) {
			ps.add("%s: %q: server.listen %q: on the container's loopback no published port reaches it", where, run, cfg.Server.Listen)
			continue
		}
		published := false
		for _, p := range ports {
			parts := strings.Split(p, ":")
			published = published || parts[len(parts)-1] == port
		}
		if !published {
			ps.add("%s: %q does not publish server.listen's port %s", where, run, port)
		}
	}
	if len(envs) == 0 {
		ps.add("%s: no docker run of the image's own config found", where)
	}
	return ps, envs
}

// TestImageConfigRunsAsItIs: the image's config.yaml, with the image's ENV
// alone and with each README and Dockerfile docker run's environment,
// passes check-config, on a listener those commands publish.
func TestImageConfigRunsAsItIs(t *testing.T) {
	img := readImage(t)
	checkConfig(t, "../config.yaml", img.Env) // docker run paygate, nothing passed
	for _, f := range []string{"../README.md", "../Dockerfile"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ps, envs := checkImageRuns(f, string(data), img)
		ps.want(t, "docker run")
		for _, env := range envs {
			checkConfig(t, "../config.yaml", env)
		}
	}
}

// TestImageRunChecksCatch: the check above finds a listener left on the
// container's loopback and a port left unpublished.
func TestImageRunChecksCatch(t *testing.T) {
	img := image{Env: map[string]string{"PAYGATE_LISTEN": "0.0.0.0:8080"}}
	tests := []struct {
		text string
		want string // "" for no problem
	}{
		{"docker run -p 8080:8080 paygate", ""},
		{"docker run -p 127.0.0.1:8080:8080 -e PAYGATE_CLIENT_KEY paygate", ""},
		{"docker run -p 8080:8080 -e PAYGATE_LISTEN=127.0.0.1:8080 paygate", "container's loopback"},
		{"docker run -p 8081:8081 paygate", "does not publish server.listen's port 8080"},
		{"docker run -v \"$PWD/myconf:/etc/paygate:ro\" paygate", "no docker run of the image's own config"},
	}
	for _, tc := range tests {
		ps, _ := checkImageRuns("x", tc.text, img)
		wantProblem(t, tc.text, ps, tc.want)
	}
}

// wantProblem fails t unless ps, the problems found in text, are none for
// want "" or hold one containing want.
func wantProblem(t *testing.T, text string, ps problems, want string) {
	t.Helper()
	switch {
	case want == "" && len(ps) > 0:
		t.Errorf("%q: problems %q; want none", text, ps)
	case want != "" && !ps.has(want):
		t.Errorf("%q: problems %q; want one containing %q", text, ps, want)
	}
}
