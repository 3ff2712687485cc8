package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
)

// TestReadyzWaitsForUserHashKey: with privacy.hash_key left to the store
// and serve's store opened without waiting, the user hash key is loaded
// only after the store's first check; a request before that reaches the
// provider without the end user's identifiers. /readyz answers 503 `user
// hash key not loaded` meanwhile, so that a rolling deploy sends no
// traffic there (it said ready as soon as Redis answered), and 200 once
// the key is loaded. When Redis comes back after an outage, the /readyz
// (or the turn) that finds it answering asks for the key at once: the
// loader's backoff (up to 30 s, here a minute) kept the replica unready,
// and serving without the identifiers, that long.
func TestReadyzWaitsForUserHashKey(t *testing.T) {
	src := func(addr, upstream string) string {
		return `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {driver: redis, redis: {addrs: ["` + addr + `"]}}
providers: [{name: fake, base_url: "` + upstream + `/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
`
	}
	body := `{"model":"gpt-4o","user":"` + testOpenID + `","messages":[{"role":"user","content":"hello"}]}`
	readyz := func(url string) (int, string) {
		return getBody(&http.Client{Timeout: 5 * time.Second}, url+"/readyz")
	}

	t.Run("healthy", func(t *testing.T) {
		srv := redistest.StartServer(t)
		up := newScriptedProvider(t, stateScript)
		release := make(chan struct{})
		url, a := serveConfig(t, src(srv.Addr(), up.URL), io.Discard, withoutStoreWait(),
			withStoreWrap(func(st store.Store) store.Store { return heldSecret{st, release} }))
		<-a.storeStart.Started()
		if code, got := readyz(url); code != http.StatusServiceUnavailable || !strings.HasPrefix(got, "user hash key not loaded") {
			t.Errorf("/readyz with Redis answering, the user hash key not loaded yet: %d %q; want 503 user hash key not loaded", code, got)
		}
		chatJSON(t, url, body)
		if sent := gjson.Parse(up.requests()[0]); sent.Get("user").Exists() {
			t.Errorf("user sent as %s before the hash key loaded; want it dropped", sent.Get("user").Raw)
		}
		close(release)
		awaitCondition(t, "/readyz 200 once the key is loaded", 10*time.Second, func() bool {
			code, _ := readyz(url)
			return code == http.StatusOK
		})
		chatJSON(t, url, body)
		if sent := gjson.Parse(up.requests()[1]); !strings.HasPrefix(sent.Get("user").Str, "u_") {
			t.Errorf("user sent as %s once /readyz said ready; want the user's hash", sent.Get("user").Raw)
		}
	})

	t.Run("back after an outage", func(t *testing.T) {
		srv := redistest.StartServer(t)
		srv.Kill()
		up := newScriptedProvider(t, stateScript)
		logs := newLogSignal("user hash key unavailable")
		url, a := serveConfig(t, src(srv.Addr(), up.URL), logs, withoutStoreWait(), withHashKeyRetry(time.Minute, time.Minute))
		<-a.storeStart.Started()
		<-logs.seen // the loader's first ask failed: its next is a minute away
		if code, got := readyz(url); code != http.StatusServiceUnavailable || got != "store unreachable\n" {
			t.Errorf("/readyz with Redis down: %d %q; want 503 store unreachable", code, got)
		}
		srv.Restart()
		awaitCondition(t, "/readyz ready once Redis answers", 10*time.Second, func() bool {
			code, got := readyz(url)
			if code == http.StatusOK {
				// Ready: the key must be loaded by then.
				chatJSON(t, url, body)
				reqs := up.requests()
				if sent := gjson.Parse(reqs[len(reqs)-1]); !strings.HasPrefix(sent.Get("user").Str, "u_") {
					t.Errorf("/readyz %d %q, yet user sent as %s; want the user's hash", code, got, sent.Get("user").Raw)
				}
			}
			return code == http.StatusOK
		})
	})

	t.Run("back after an outage, asked by a turn", func(t *testing.T) {
		// No /readyz: a turn whose state load finds Redis answering asks
		// for the key, so the next turns carry the user's hash.
		srv := redistest.StartServer(t)
		srv.Kill()
		up := newScriptedProvider(t, stateScript)
		logs := newLogSignal("user hash key unavailable")
		url, a := serveConfig(t, src(srv.Addr(), up.URL), logs, withoutStoreWait(), withHashKeyRetry(time.Minute, time.Minute))
		<-a.storeStart.Started()
		<-logs.seen
		srv.Restart()
		awaitCondition(t, "a turn carrying the user's hash once Redis answers", 10*time.Second, func() bool {
			chatJSON(t, url, body)
			reqs := up.requests()
			return strings.HasPrefix(gjson.Parse(reqs[len(reqs)-1]).Get("user").Str, "u_")
		})
	})
}

// heldSecret holds GetOrCreateSecret until release closes (or its caller
// gives up).
type heldSecret struct {
	store.Store
	release <-chan struct{}
}

func (h heldSecret) GetOrCreateSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.Store.GetOrCreateSecret(ctx, name, gen)
}
