package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/redistest"
)

// TestServeAnswersAtOnceWithRedisDown: `paygate serve` on a Redis that is
// down (its port refuses) or hung (paused: it takes connections and
// answers nothing) answers on its listeners at once, as it does when Redis
// goes away later: /healthz 200 to a Kubernetes probe with its 1 s timeout,
// /readyz 503 "store unreachable", chat served without payment state, the
// admin API 503. Once Redis answers, it is ready and loads the user hash
// key. Before, it waited for Redis up to 2 s at Open and up to 3 s more for
// the user hash key with its listeners bound but not served: a probe sent
// then sat in the backlog and timed out (3.1 s refused, 5.4 s hung).
func TestServeAnswersAtOnceWithRedisDown(t *testing.T) {
	for _, tt := range []struct {
		name       string
		down, back func(*redistest.Server)
	}{
		{"refused", (*redistest.Server).Kill, (*redistest.Server).Restart},
		{"hung", (*redistest.Server).Pause, (*redistest.Server).Resume},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.StartServer(t)
			tt.down(srv)
			up := newScriptedProvider(t, stateScript)
			// privacy.hash_key left to the store: the longest wait there was.
			n := newCrashNode(t, newCrashSim(t), `store: {driver: redis, redis: {addrs: ["`+srv.Addr()+`"]}}`+"\n", up.URL, "", "")
			probe := firstProbe("http://" + n.admin + "/healthz")
			n.start()
			if err := <-probe; err != nil {
				t.Fatalf("the first /healthz probe that reached paygate with Redis %s: %v; want 200 within a probe's 1 s", tt.name, err)
			}

			// Within /readyz's own 2 s on a hung Redis, as after start.
			ready := &http.Client{Timeout: 3 * time.Second}
			code, body := getBody(ready, "http://"+n.admin+"/readyz")
			if code != http.StatusServiceUnavailable || body != "store unreachable\n" {
				t.Errorf("/readyz with Redis %s: %d %q; want 503 store unreachable", tt.name, code, body)
			}
			start := time.Now()
			st, ans, err := n.chat("oUser-startup", "hello")
			took := time.Since(start)
			if err != nil || st != http.StatusOK || ans.Get("choices.0.message.content").Str != "Noted." {
				t.Errorf("chat with Redis %s: %d %v %s; want the model's answer, without payment state", tt.name, st, err, ans.Raw)
			}
			if took > 3*time.Second {
				t.Errorf("chat with Redis %s took %v; want about the turn's 1 s state deadline at most", tt.name, took.Round(time.Millisecond))
			}
			if got := n.adminGet("/admin/api/orders"); gjson.Get(got, "error").Str != "the store is unavailable" {
				t.Errorf("admin API with Redis %s: %s; want the store unavailable", tt.name, got)
			}

			tt.back(srv)
			// Ready only once the user hash key is loaded too (/readyz
			// says `user hash key not loaded` before). Its log line
			// comes only when an earlier ask failed: the loader's first
			// ask, made as the store's start ends, meets a Redis back by
			// then when its dial retries outlast the restart.
			awaitCondition(t, "/readyz 200 once Redis answers", 15*time.Second, func() bool {
				code, _ := getBody(ready, "http://"+n.admin+"/readyz")
				return code == http.StatusOK
			})
			if err := n.signal(syscall.SIGTERM); err != nil {
				t.Errorf("exit after SIGTERM: %v; want 0", err)
			}
		})
	}
}

// TestServeRefusesAnotherDeploymentsPrefix: `paygate serve` of another
// deployment (here another payments backend) under a key prefix a first one
// owns stops, exit status 1, its ERROR line naming store.redis.key_prefix,
// also now that it answers before Redis has: its refusal comes from the
// store's first check, in the background.
func TestServeRefusesAnotherDeploymentsPrefix(t *testing.T) {
	srv := redistest.StartServer(t)
	storeYAML := `store: {driver: redis, redis: {addrs: ["` + srv.Addr() + `"]}}` + "\n" + `privacy: {hash_key: fixed-key-for-this-test}` + "\n"
	serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
`+storeYAML+`
providers: [{name: fake, base_url: "http://127.0.0.1:9/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
`, io.Discard) // the simulator's deployment owns the prefix

	n := newCrashNode(t, newCrashSim(t), storeYAML, "http://127.0.0.1:9", "", "")
	cmd := exec.Command(os.Args[0], "serve", "-config", n.cfg)
	cmd.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve under another deployment's prefix: %v; want exit 1\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if gjson.Get(last, "level").Str != "ERROR" || !strings.Contains(gjson.Get(last, "err").Str, "store.redis.key_prefix") {
		t.Errorf("the reason serve stopped: %s; want an ERROR line naming store.redis.key_prefix", last)
	}
	// No signal started this drain: its line must not speak of a second
	// one (a first SIGTERM only ends the wait for one that never came;
	// it takes two to stop at once), and it names what did start it.
	for _, l := range lines {
		if !strings.HasPrefix(gjson.Get(l, "msg").Str, "shutting down") {
			continue
		}
		if strings.Contains(l, "a second SIGTERM") || gjson.Get(l, "cause").Str != "store refused" {
			t.Errorf("the drain's line: %s; want its cause (store refused), no word of a second signal", l)
		}
	}
}

// firstProbe asks url as a Kubernetes probe does, with a 1 s timeout and a
// new connection each time, from before paygate listens: it reports the
// outcome of the first that connects (nil: a 200).
func firstProbe(url string) <-chan error {
	out := make(chan error, 1)
	go func() {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(30 * time.Second)
		for {
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				out <- err
				return
			}
			if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(end) {
				out <- err
				return
			}
			<-tick.C
		}
	}()
	return out
}

// getBody GETs url with c and returns the status and body (0 and the error
// when there is no answer).
func getBody(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
