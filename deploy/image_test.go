package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBuildImageScript runs scripts/build-image.sh on the real Dockerfile and
// on copies broken in one way each: the script must pass the first and fail
// every other naming the problem, or it would not keep the recipe honest.
func TestBuildImageScript(t *testing.T) {
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../scripts/build-image.sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		old, new        string // a replacement in the Dockerfile
		ignore          string // appended to .dockerignore
		wantOK          bool
		wantErrContains string
	}{
		{name: "the real Dockerfile", wantOK: true},
		{name: "health check names no sub-command", old: `"healthcheck", "-config"`, new: `"health", "-config"`,
			wantErrContains: "HEALTHCHECK command failed"},
		{name: "health check on a fixed URL", old: `"healthcheck", "-config", "/etc/paygate/config.yaml"`,
			new: `"healthcheck", "-url", "http://127.0.0.1:8080/healthz"`, wantErrContains: "fixed -url"},
		{name: "health check reads another config", old: `"healthcheck", "-config", "/etc/paygate/config.yaml"`,
			new: `"healthcheck", "-config", "/etc/paygate/other.yaml"`, wantErrContains: "but serve runs with -config /etc/paygate/config.yaml"},
		{name: "cgo left on", old: "CGO_ENABLED=0 GOOS=linux go build", new: "GOOS=linux go build",
			wantErrContains: "does not set CGO_ENABLED=0"},
		{name: "no -trimpath", old: "go build -trimpath ", new: "go build ",
			wantErrContains: "does not use -trimpath"},
		{name: "data dir owned by root", old: "COPY --from=build --chown=65532:65532 /out/data", new: "COPY --from=build /out/data",
			wantErrContains: "owned by 'root'"},
		{name: "runtime copies what the build does not make", old: "COPY --from=build /out/paygate ", new: "COPY --from=build /out/paygate-server ",
			wantErrContains: "was not produced by the build stage"},
		{name: "another Go", old: "FROM golang:1.26.8 AS build", new: "FROM golang:1.21 AS build",
			wantErrContains: "not go.mod's Go"},
		{name: "Go not pinned to go.mod's", old: "FROM golang:1.26.8 AS build", new: "FROM golang:1.26 AS build",
			wantErrContains: "not go.mod's Go 1.26.8"},
		{name: "user by name", old: "USER 65532:65532", new: "USER nonroot:nonroot",
			wantErrContains: "not numeric"},
		{name: "listening on loopback only", old: "PAYGATE_LISTEN=0.0.0.0:8080", new: "PAYGATE_LISTEN=127.0.0.1:8080",
			wantErrContains: "want 0.0.0.0:PORT"},
		{name: "an instruction the script cannot mirror", old: "WORKDIR /src\n", new: "WORKDIR /src\nSHELL [\"/bin/bash\", \"-c\"]\n",
			wantErrContains: "unsupported instruction"},
		{name: "build line fails", old: "./cmd/paygate\n", new: "./cmd/paygate-missing\n",
			wantErrContains: "RUN failed"},
		{name: "context drops the sources", ignore: "cmd\n",
			wantErrContains: "RUN failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.wantOK {
				// After the real Dockerfile's run (first, sequential), which
				// fills the build cache the broken copies then share: on a
				// cold cache, parallel runs would each compile everything.
				t.Parallel()
			}
			df := string(dockerfile)
			if tt.old != "" {
				df = strings.Replace(df, tt.old, tt.new, 1)
				if df == string(dockerfile) {
					t.Fatalf("mutation %q did not apply: the Dockerfile changed; update this test", tt.old)
				}
			}
			dir := t.TempDir()
			dfPath, ignPath := filepath.Join(dir, "Dockerfile"), filepath.Join(dir, "dockerignore")
			if err := os.WriteFile(dfPath, []byte(df), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ignPath, append(append([]byte{}, dockerignore...), tt.ignore...), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(script)
			cmd.Env = append(os.Environ(), "DOCKERFILE="+dfPath, "DOCKERIGNORE="+ignPath, "KEEP=")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			switch {
			case tt.wantOK && err != nil:
				t.Fatalf("build-image.sh: %v\n%s", err, out.String())
			case !tt.wantOK && err == nil:
				t.Fatalf("build-image.sh passed; want a failure containing %q\n%s", tt.wantErrContains, out.String())
			case !tt.wantOK && !strings.Contains(out.String(), tt.wantErrContains):
				t.Errorf("build-image.sh failed without naming %q:\n%s", tt.wantErrContains, out.String())
			}
		})
	}
}

// dockerignored reports whether the .dockerignore patterns drop rel (a path
// relative to the build context) or a directory above it. It reads patterns
// as scripts/build-image.sh does: no "!" exceptions, a leading "**/" also
// matching at the root.
func dockerignored(patterns, rel string) bool {
	parts := strings.Split(rel, "/")
	for _, p := range strings.Split(patterns, "\n") {
		p = strings.Trim(strings.TrimSpace(p), "/")
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		for i := range parts {
			sub := strings.Join(parts[:i+1], "/")
			for _, q := range []string{p, strings.TrimPrefix(p, "**/")} {
				if ok, _ := filepath.Match(q, sub); ok {
					return true
				}
			}
		}
	}
	return false
}

// TestDockerignoreDropsTheConfigDirectory: a config directory the
// Dockerfile's docker run mounts from the build context's root ("$PWD/…"
// over /etc/paygate) is kept out of the build context. An operator who
// follows the comment keeps the config there, with secrets in files that
// are not *.pem or *.key (an admin_token, an apiv3 key, a config.yaml with
// a key inline); `COPY . .` put them in the build stage's layers, and into
// the context sent to a remote builder.
func TestDockerignoreDropsTheConfigDirectory(t *testing.T) {
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	mountRE := regexp.MustCompile(`-v\s+"?\$(?:PWD|\{PWD\})/([^":]+):/etc/paygate`)
	found := 0
	for _, run := range dockerRuns(string(dockerfile)) {
		for _, m := range mountRE.FindAllStringSubmatch(run, -1) {
			found++
			if dir := strings.TrimSuffix(m[1], "/"); !dockerignored(string(dockerignore), dir) {
				t.Errorf("Dockerfile: %q mounts %s over /etc/paygate, and .dockerignore keeps it in the build context: its secrets reach the build stage", run, dir)
			}
		}
	}
	if found == 0 {
		t.Fatal("no docker run in the Dockerfile mounts a config directory from $PWD: update this test")
	}
	for _, tt := range []struct {
		rel  string
		want bool
	}{
		{"data", true}, {"data/paygate.db", true}, {"x/y.pem", true},
		{"deploy/config.redis.yaml", true}, {"cmd/paygate/main.go", false}, {"go.mod", false},
	} {
		if got := dockerignored(string(dockerignore), tt.rel); got != tt.want {
			t.Errorf("dockerignored(%q) = %v; want %v", tt.rel, got, tt.want)
		}
	}
}
