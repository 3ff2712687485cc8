package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/paygate/paygate/config"
)

// build is the paygate binary the tests run check-config with, built once.
type build struct {
	bin string
	err error
}

var binary build // set by TestMain before any test runs, read-only after

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "paygate-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "paygate")
	// Built as the Dockerfile builds it (static, -trimpath), so the build
	// cache this fills also serves TestBuildImageScript's runs, and
	// cmd/paygate's TestStartSaysVersionPaymentsAndStore's build.
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/paygate/paygate/cmd/paygate")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		binary.err = fmt.Errorf("building paygate: %w\n%s", err, out)
	} else {
		binary.bin = bin
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// paygateBinary returns the built binary, failing the test (never skipping)
// when it could not be built.
func paygateBinary(t *testing.T) string {
	t.Helper()
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.bin
}

// checkConfig runs `paygate check-config -config file` with exactly env.
func checkConfig(t *testing.T, file string, env map[string]string) {
	t.Helper()
	cmd := exec.Command(paygateBinary(t), "check-config", "-config", file)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("paygate check-config -config %s: %v\n%s", file, err, out.String())
	}
}

// decodeStrict decodes YAML into v refusing unknown keys, so a misspelt key
// (readinesProbe, enviroment) is a test failure, not a silently ignored line.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// image is what the deploy files rely on from the Dockerfile's runtime stage.
type image struct {
	User        string            // USER
	Env         map[string]string // ENV
	Volumes     []string          // VOLUME
	WorkDir     string            // WORKDIR, where a relative path starts
	Healthcheck bool              // a HEALTHCHECK CMD
}

// readImage parses the runtime (last) stage of the repository's Dockerfile.
func readImage(t *testing.T) image {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if s := strings.TrimRight(l, " \t"); strings.HasSuffix(s, "\\") {
			cur += strings.TrimSuffix(s, "\\") + " "
			continue
		}
		if cur += l; strings.TrimSpace(cur) != "" {
			lines = append(lines, strings.TrimSpace(cur))
		}
		cur = ""
	}
	img := image{Env: map[string]string{}}
	for _, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "FROM":
			img = image{Env: map[string]string{}}
		case "USER":
			img.User = rest
		case "WORKDIR":
			img.WorkDir = path.Join("/", img.WorkDir, rest)
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %q: want KEY=VALUE", rest)
				}
				img.Env[k] = v
			}
		case "VOLUME":
			img.Volumes = append(img.Volumes, regexp.MustCompile(`"([^"]+)"`).FindAllString(rest, -1)...)
			for i, v := range img.Volumes {
				img.Volumes[i] = strings.Trim(v, `"`)
			}
		case "HEALTHCHECK":
			img.Healthcheck = strings.Contains(rest, "CMD")
		}
	}
	return img
}

// interpolate expands Compose's ${VAR}, ${VAR:-default} and $$ with env.
func interpolate(s string, env map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i++
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			name, def, hasDef := strings.Cut(s[i+2:i+end], ":-")
			v := env[name]
			if v == "" && hasDef {
				v = def
			}
			b.WriteString(v)
			i += end
		default:
			return "", fmt.Errorf("bare $NAME in %q: write ${NAME} or $$", s)
		}
	}
	return b.String(), nil
}

// problems collects what a check found, so one run names every problem.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// want fails t unless ps is empty.
func (ps problems) want(t *testing.T, what string) {
	t.Helper()
	for _, p := range ps {
		t.Errorf("%s: %s", what, p)
	}
}

// has reports whether some problem contains sub.
func (ps problems) has(sub string) bool {
	for _, p := range ps {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

// loadConfig loads a paygate config file the way serve does, with exactly env.
func loadConfig(file string, env map[string]string) (*config.Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return config.Parse(data, file, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

// TestEveryConfigFileChecks runs check-config on every paygate config file
// under deploy/ with an empty environment (every ${VAR:-default} defaulted);
// the one inside kubernetes.yaml is checked by TestKubernetesManifest.
func TestEveryConfigFileChecks(t *testing.T) {
	files, err := filepath.Glob("config*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no config*.yaml under deploy/")
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) { checkConfig(t, f, nil) })
	}
}
