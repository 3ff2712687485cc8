package deploy_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// compose is the subset of the Compose file format deploy/docker-compose.yml
// uses; decoding is strict, so a key outside it fails the test.
type compose struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Networks map[string]*struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
}

type composeService struct {
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Image       string            `yaml:"image"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Networks    []string          `yaml:"networks"`
	Ports       []string          `yaml:"ports"`
	ReadOnly    bool              `yaml:"read_only"`
	Tmpfs       []string          `yaml:"tmpfs"`
	SecurityOpt []string          `yaml:"security_opt"`
	CapDrop     []string          `yaml:"cap_drop"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Command         []string `yaml:"command"`
	Restart         string   `yaml:"restart"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
}

func readCompose(t *testing.T) compose {
	t.Helper()
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := decodeStrict(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// composeEnv is the paygate container's environment as Compose and the image
// give it, with an empty host environment (every ${VAR:-default} defaulted).
func composeEnv(img image, svc composeService) (map[string]string, error) {
	env := map[string]string{}
	for k, v := range img.Env {
		env[k] = v
	}
	for k, v := range svc.Environment {
		s, err := interpolate(v, nil)
		if err != nil {
			return nil, err
		}
		env[k] = s
	}
	return env, nil
}

// mount splits "source:target[:mode]".
func mount(v string) (src, dst, mode string) {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) < 2 {
		return v, "", ""
	}
	if len(parts) == 3 {
		mode = parts[2]
	}
	return parts[0], parts[1], mode
}

// checkCompose checks the compose file against the Dockerfile's runtime stage
// and the paygate config it mounts. configFile receives the host path of that
// config (relative to deploy/) and its environment, for check-config.
func checkCompose(c compose, img image) (ps problems, configFile string, env map[string]string) {
	pg, ok := c.Services["paygate"]
	if !ok {
		ps.add("no paygate service")
		return ps, "", nil
	}
	redis, ok := c.Services["redis"]
	if !ok {
		ps.add("no redis service")
	}
	bot, ok := c.Services["bot"]
	if !ok {
		ps.add("no bot service")
	}

	// Built from the repository's Dockerfile.
	if pg.Build == nil {
		ps.add("paygate: no build section")
	} else if _, err := os.Stat(filepath.Join(pg.Build.Context, pg.Build.Dockerfile)); err != nil || filepath.Clean(pg.Build.Context) != ".." {
		ps.add("paygate: build %s/%s is not the repository's Dockerfile", pg.Build.Context, pg.Build.Dockerfile)
	}

	// Config read-only under /etc/paygate, data in a named volume at the
	// image's data directory.
	dataDir := ""
	if len(img.Volumes) > 0 {
		dataDir = img.Volumes[0]
	}
	var hasData bool
	for _, v := range pg.Volumes {
		src, dst, mode := mount(v)
		switch {
		case strings.HasPrefix(dst, "/etc/paygate/"):
			if mode != "ro" {
				ps.add("paygate: config mount %q is not read-only", v)
			}
			if _, err := os.Stat(src); err != nil {
				ps.add("paygate: config mount source %s: %v", src, err)
			}
			configFile = src
		case dst == dataDir:
			if _, declared := c.Volumes[src]; !declared {
				ps.add("paygate: data mount %q is not a named volume of the file", v)
			}
			hasData = true
		}
	}
	if configFile == "" {
		ps.add("paygate: no config mounted under /etc/paygate/")
	}
	if !hasData {
		ps.add("paygate: the data directory %q (the image's VOLUME) is not mounted", dataDir)
	}
	if !pg.ReadOnly {
		ps.add("paygate: root filesystem not read_only")
	} else if !slices.Contains(pg.Tmpfs, "/tmp") {
		// `docker compose run paygate demo` makes its store in the temp
		// directory (os.MkdirTemp): on a read-only root it cannot.
		ps.add("paygate: root filesystem read_only without a tmpfs at /tmp: docker compose run paygate demo cannot make its temp directory")
	}

	// Start order: Redis healthy, then paygate, then the bot once the image's
	// HEALTHCHECK passes.
	if pg.DependsOn["redis"].Condition != "service_healthy" {
		ps.add("paygate: does not wait for redis to be healthy")
	}
	if redis.Healthcheck == nil || len(redis.Healthcheck.Test) == 0 {
		ps.add("redis: no healthcheck")
	}
	if !strings.HasPrefix(redis.Image, "redis:") {
		ps.add("redis: image %q is not redis", redis.Image)
	}
	if !strings.Contains(strings.Join(redis.Command, " "), "--appendonly yes") {
		ps.add("redis: no AOF persistence (--appendonly yes): orders would be lost on restart")
	} else if !strings.Contains(strings.Join(redis.Command, " "), "--appendfsync always") {
		// AOF's default, everysec, acknowledges writes it has not synced:
		// a crash loses a purchase's claim while its order is payable.
		ps.add("redis: AOF without --appendfsync always: a crash loses the last acknowledged writes (README, Scaling out)")
	}
	// Redis is paygate's alone: the store holds the orders, approvals,
	// refund confirmations and the user hash key, and Redis asks the
	// compose network for no password. On a network the bot (or any other
	// service) shares, the bot could approve its own order above
	// approval_above, confirm a refund or mark an order paid by writing the
	// keys paygate reads.
	if !slices.ContainsFunc(serviceNetworks(redis), func(n string) bool { return slices.Contains(serviceNetworks(pg), n) }) {
		ps.add("paygate: on no network of redis's %q: it cannot reach its store", serviceNetworks(redis))
	}
	for _, n := range serviceNetworks(redis) {
		for name, svc := range c.Services {
			if name != "redis" && name != "paygate" && slices.Contains(serviceNetworks(svc), n) {
				ps.add("%s: shares the network %q with redis: it reaches paygate's store, which asks no password there", name, n)
			}
		}
	}
	if bot.DependsOn["paygate"].Condition != "service_healthy" {
		ps.add("bot: does not wait for paygate to be healthy")
	}
	if !img.Healthcheck {
		ps.add("the image has no HEALTHCHECK, so service_healthy never comes")
	}

	if configFile == "" {
		return ps, "", nil
	}
	env, err := composeEnv(img, pg)
	if err != nil {
		ps.add("paygate environment: %v", err)
		return ps, configFile, nil
	}
	// Every variable the config reads reaches the container, from the
	// image's ENV or the compose environment: one passed by neither is
	// taken from nowhere, so `PAYGATE_X=… docker compose up` changed
	// nothing (Compose gives a container only what the file lists).
	if text, err := os.ReadFile(configFile); err == nil {
		for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(string(text), -1) {
			name := m[1]
			_, inImage := img.Env[name]
			_, inCompose := pg.Environment[name]
			if !inImage && !inCompose {
				ps.add("paygate: the config reads ${%s}, which neither the image nor the compose environment sets: %s=… docker compose up changes nothing", name, name)
			}
		}
	}
	cfg, err := loadConfig(configFile, env)
	if err != nil {
		ps.add("paygate config %s: %v", configFile, err)
		return ps, configFile, env
	}

	if cfg.Store.Driver != "redis" {
		ps.add("config: store.driver %q; want redis", cfg.Store.Driver)
	} else if host, _, _ := net.SplitHostPort(cfg.Store.Redis.Addrs[0]); host != "redis" {
		ps.add("config: store.redis.addrs %v is not the redis service", cfg.Store.Redis.Addrs)
	}
	host, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil || host != "0.0.0.0" {
		ps.add("config: listen %q: the bot in another container cannot reach it", cfg.Server.Listen)
	}
	// published reports whether the container port is published, and on the
	// host's loopback only.
	published := func(port string) bool {
		found := false
		for _, p := range pg.Ports {
			parts := strings.Split(p, ":")
			if parts[len(parts)-1] == port {
				found = true
				if len(parts) != 3 || parts[0] != "127.0.0.1" {
					ps.add("paygate: port %q is published on every host interface; want 127.0.0.1:", p)
				}
			}
		}
		return found
	}
	if !published(port) {
		ps.add("paygate: the listen port %s is not published", port)
	}
	// The admin listener (approvals, the simulator's pay, the console) must
	// be reachable from the host: the image has no shell or curl to reach
	// the container's loopback from inside, and Docker publishes only ports
	// the container listens on beyond its loopback. Published on the host's
	// loopback only; its API asks the admin token.
	if a := cfg.Server.AdminListen; a != "off" {
		ahost, aport, err := net.SplitHostPort(a)
		if ip := net.ParseIP(ahost); err != nil || ahost != "" && (ip == nil || !ip.IsUnspecified()) {
			ps.add("config: admin_listen %q: on the container's loopback no published port reaches it, and the image has no shell: nobody can approve an order or pay a simulated one; listen on 0.0.0.0 and publish it on 127.0.0.1", a)
		} else if !published(aport) {
			ps.add("paygate: the admin port %s is not published on 127.0.0.1: nobody can approve an order or pay a simulated one", aport)
		}
	}
	if got, want := bot.Environment["OPENAI_BASE_URL"], "http://paygate:"+port+"/v1"; got != want {
		ps.add("bot: OPENAI_BASE_URL %q; want %q", got, want)
	}
	if key, err := interpolate(bot.Environment["OPENAI_API_KEY"], nil); err != nil || len(cfg.Clients) == 0 || key != cfg.Clients[0].Key {
		ps.add("bot: OPENAI_API_KEY is not the paygate client key")
	}
	grace, err := time.ParseDuration(pg.StopGracePeriod)
	if err != nil || grace <= cfg.Server.ShutdownTimeout.D()+closeAfterDrain {
		ps.add("paygate: stop_grace_period %q does not cover server.shutdown_timeout %s and closing after it (%s)", pg.StopGracePeriod, cfg.Server.ShutdownTimeout.D(), closeAfterDrain)
	}
	return ps, configFile, env
}

// serviceNetworks is the networks a service is on: Compose's "default"
// when it names none.
func serviceNetworks(s composeService) []string {
	if len(s.Networks) == 0 {
		return []string{"default"}
	}
	return s.Networks
}

// closeAfterDrain is the most paygate may take after server.shutdown_timeout
// to close its workers and store (cmd/paygate closeFloor: 2 s at most).
const closeAfterDrain = 2 * time.Second

func TestComposeFile(t *testing.T) {
	c := readCompose(t)
	ps, file, env := checkCompose(c, readImage(t))
	ps.want(t, "docker-compose.yml")
	if file != "" && env != nil {
		checkConfig(t, file, env)
	}
}

// TestComposeChecksCatch proves each check can fail: every case breaks the
// parsed file in one way and wants the problem named.
func TestComposeChecksCatch(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*compose, *image)
		want   string
	}{
		{"bot service removed", func(c *compose, _ *image) { delete(c.Services, "bot") }, "no bot service"},
		{"config mounted writable", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			s.Volumes = []string{"./config.redis.yaml:/etc/paygate/config.yaml", "paygate-data:/var/lib/paygate"}
			c.Services["paygate"] = s
		}, "not read-only"},
		{"data volume not mounted", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			s.Volumes = s.Volumes[:1]
			c.Services["paygate"] = s
		}, "is not mounted"},
		{"bot pointed elsewhere", func(c *compose, _ *image) {
			s := c.Services["bot"]
			s.Environment = map[string]string{"OPENAI_BASE_URL": "http://paygate:9999/v1", "OPENAI_API_KEY": s.Environment["OPENAI_API_KEY"]}
			c.Services["bot"] = s
		}, "OPENAI_BASE_URL"},
		{"embedded store", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			env := map[string]string{}
			for k, v := range s.Environment {
				env[k] = v
			}
			env["PAYGATE_STORE_DRIVER"] = "embedded"
			s.Environment = env
			c.Services["paygate"] = s
		}, "want redis"},
		{"image listens on loopback", func(_ *compose, img *image) {
			img.Env = map[string]string{"PAYGATE_LISTEN": "127.0.0.1:8080", "PAYGATE_STORE_PATH": img.Env["PAYGATE_STORE_PATH"]}
		}, "cannot reach it"},
		{"image without health check", func(_ *compose, img *image) { img.Healthcheck = false }, "no HEALTHCHECK"},
		{"short grace period", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			s.StopGracePeriod = "10s"
			c.Services["paygate"] = s
		}, "stop_grace_period"},
		{"redis without persistence", func(c *compose, _ *image) {
			s := c.Services["redis"]
			s.Command = []string{"redis-server"}
			c.Services["redis"] = s
		}, "AOF"},
		{"a variable of the config not passed", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			env := map[string]string{}
			for k, v := range s.Environment {
				if k != "PAYGATE_ADMIN_TOKEN" {
					env[k] = v
				}
			}
			s.Environment = env
			c.Services["paygate"] = s
		}, "reads ${PAYGATE_ADMIN_TOKEN}, which neither"},
		{"admin on the container's loopback", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			env := map[string]string{}
			for k, v := range s.Environment {
				env[k] = v
			}
			env["PAYGATE_ADMIN_LISTEN"] = "127.0.0.1:8081"
			s.Environment = env
			c.Services["paygate"] = s
		}, "no published port reaches it"},
		{"admin port not published", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			s.Ports = []string{"127.0.0.1:8080:8080"}
			c.Services["paygate"] = s
		}, "admin port 8081 is not published"},
		{"admin port on every host interface", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			s.Ports = []string{"127.0.0.1:8080:8080", "8081:8081"}
			c.Services["paygate"] = s
		}, `port "8081:8081" is published on every host interface`},
		{"read-only root without a tmpfs at /tmp", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			s.Tmpfs = nil
			c.Services["paygate"] = s
		}, "without a tmpfs at /tmp"},
		{"bot on redis's network", func(c *compose, _ *image) {
			s := c.Services["bot"]
			s.Networks = append(serviceNetworks(s), serviceNetworks(c.Services["redis"])...)
			c.Services["bot"] = s
		}, `bot: shares the network`},
		{"paygate off redis's network", func(c *compose, _ *image) {
			s := c.Services["paygate"]
			s.Networks = []string{"elsewhere"}
			c.Services["paygate"] = s
		}, "cannot reach its store"},
		{"redis AOF synced every second", func(c *compose, _ *image) {
			s := c.Services["redis"]
			s.Command = []string{"redis-server", "--appendonly", "yes"}
			c.Services["redis"] = s
		}, "appendfsync always"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, img := readCompose(t), readImage(t)
			tt.mutate(&c, &img)
			ps, _, _ := checkCompose(c, img)
			if !ps.has(tt.want) {
				t.Errorf("got problems %q; want one containing %q", ps, tt.want)
			}
		})
	}
}

// TestComposeRejectsUnknownKeys: a misspelt key is an error, not ignored.
func TestComposeRejectsUnknownKeys(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "    environment:\n", "    enviroment:\n", 1)
	if bad == string(data) {
		t.Fatal("mutation did not apply")
	}
	var c compose
	if err := decodeStrict([]byte(bad), &c); err == nil || !strings.Contains(err.Error(), "enviroment") {
		t.Errorf("got %v; want an error naming enviroment", err)
	}
}
