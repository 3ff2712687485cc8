package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestShutdownKeepsCutTurnsCosts: streams that run to the drain's cut leave
// their turns' costs queued in the ledger; on a healthy store every one
// reaches it, with both drivers. The close after a drain that used the
// whole shutdown_timeout once had no time left, so the store was closed
// under the ledger at once (35 of 40 costs lost).
func TestShutdownKeepsCutTurnsCosts(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			// Each driver's run waits out its 8 s drain: side by side
			// (a server, a store and a provider of its own each).
			t.Parallel()
			const n = 40
			hang := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","model":"u","choices":[{"index":0,"delta":{"role":"assistant","content":"one "},"finish_reason":null}],"usage":{"prompt_tokens":100000,"completion_tokens":10,"total_tokens":100010}}`+"\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(up.Close)
			t.Cleanup(func() { close(hang) })
			place := testdrivers.NewPlace(t, driver, nil)
			storeCfg := `{path: "` + place.Path + `"}`
			if driver == "redis" {
				storeCfg = `{driver: redis, redis: {addrs: ["` + testdrivers.RedisAddr() + `"], key_prefix: "` + place.Prefix + `"}}`
			}
			// 8 s: the close after a drain of budget gets closeFloor of it
			// (a quarter, at most 2 s) less cutReserve (250 ms). A 2 s drain
			// left the ledger's writer 250 ms, and a stall of 200 ms in it
			// (under -race on a loaded CI machine) had the store closed
			// under 39 of the 40 costs; 8 s gives it the 1.75 s the default
			// shutdown_timeout gives.
			src := `
server: {listen: "127.0.0.1:0", admin_listen: "off", shutdown_timeout: 8s}
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: ` + storeCfg + `
privacy: {hash_key: fixed-key-for-this-test}
providers: [{name: fake, base_url: "` + up.URL + `", api_key: x, timeouts: {idle: 60s, total: 120s}, prices: {"u": {input: "2.50", output: "10.00"}}}]
models: [{name: m, targets: [{provider: fake, model: u}]}]
`
			cfg, err := config.Parse([]byte(src), "t.yaml", func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			logs := &logtest.Buffer{}
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan map[string]string, 1)
			done := make(chan error, 1)
			go func() { done <- serve(ctx, cfg, logs, ready) }()
			base := "http://" + (<-ready)["main"]
			var started, ended sync.WaitGroup
			for i := range n {
				started.Add(1)
				ended.Add(1)
				go func() {
					defer ended.Done()
					req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
					req.Header.Set("Authorization", "Bearer "+e2eClientKey)
					req.Header.Set("X-WeChat-OpenID", fmt.Sprintf("o-user-%d", i))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						started.Done()
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					br := bufio.NewReader(resp.Body)
					_, _ = br.ReadString('\n')
					started.Done()
					_, _ = io.ReadAll(br)
				}()
			}
			started.Wait()
			cancel() // what SIGTERM does; the streams run to the drain's cut
			ended.Wait()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}
			st := place.Open()
			lost := 0
			for i := range n {
				// The user's default conversation: client, user, session (the user).
				user := fmt.Sprintf("o-user-%d", i)
				if v, err := st.TakeTally(context.Background(), "cost:bot\x00"+user+"\x00"+user); err != nil || v == 0 {
					lost++
				}
			}
			if lost > 0 {
				t.Errorf("%d of %d cut turns' costs never reached a healthy store (store closed under the workers: %v)",
					lost, n, strings.Contains(logs.String(), "closing the store under it"))
			}
		})
	}
}
