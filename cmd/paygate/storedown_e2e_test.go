package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/redistest"
)

// TestStoreDown: with the store unreachable, chat still works (without
// payment state), payment tools fail closed with a clear tool result, and
// /readyz says not ready.
func TestStoreDown(t *testing.T) {
	dead := redistest.RefusedAddr // every dial is refused

	up := newScriptedProvider(t, stateScript)
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {driver: redis, redis: {addrs: ["` + dead + `"]}}
privacy: {hash_key: fixed-key-for-this-test}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
	base, a := serveConfig(t, src, io.Discard)

	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with the store down; want 503", resp.StatusCode)
	}

	ans := chatJSON(t, base, `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`)
	if ans.Get("choices.0.message.content").Str != "Noted." {
		t.Errorf("chat without payment state: %s", ans.Raw)
	}
	chatJSON(t, base, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	reqs := up.requests()
	last := reqs[len(reqs)-1]
	result := gjson.Get(last, `messages.#(role=="tool").content`).Str
	if !strings.Contains(result, `"status":"failed"`) || !strings.Contains(result, "temporarily unavailable") {
		t.Errorf("tool result with the store down: %q; want a clear fail-closed answer", result)
	}
	if a.sim.OrderCount() != 0 {
		t.Errorf("an order reached WeChat Pay with the store down")
	}
	// SPEC 6: a metric says so, once per turn served without the state.
	if n := metricSum(t, scrape(t, base), "paygate_state_unavailable_total", nil); n != 2 {
		t.Errorf("paygate_state_unavailable_total %v after two turns with the store down; want 2", n)
	}
}

// TestStoreDownUserHashKey: with privacy.hash_key left to the store (the
// default) and the store unreachable at startup, paygate starts and chat
// works (SPEC 6), two replicas alike. Until the store answers, providers
// get none of the end user's identifiers (neither the OpenID nor a hash
// under a key of the replica's own), each such request counted; once it
// answers, each replica loads the one stored key in the background and
// later requests carry the user's hash under it, the same from both.
// Under drop and keep the key is never used, so the store is not asked.
func TestStoreDownUserHashKey(t *testing.T) {
	body := `{"model":"gpt-4o","user":"` + testOpenID + `","safety_identifier":"` + testOpenID + `","metadata":{"uid":"` + testOpenID + `"},"messages":[{"role":"user","content":"hello"}]}`
	config := func(addr, forward, upstream string) string {
		return `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {driver: redis, redis: {addrs: ["` + addr + `"]}}
privacy: {forward_user: ` + forward + `}
providers: [{name: fake, base_url: "` + upstream + `/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
`
	}
	srv := redistest.StartServer(t)
	srv.Kill() // its port refuses every dial until Restart

	t.Run("hash", func(t *testing.T) {
		up := newScriptedProvider(t, stateScript)
		src := config(srv.Addr(), "hash", up.URL)
		var urls []string
		var loaded []<-chan struct{}
		var apps []*app
		for range 2 {
			logs := newLogSignal("user hash key loaded")
			url, a := serveConfig(t, src, logs, withHashKeyRetry(10*time.Millisecond, 50*time.Millisecond))
			urls, loaded, apps = append(urls, url), append(loaded, logs.seen), append(apps, a)
		}
		for _, url := range urls {
			chatJSON(t, url, body)
			sent := gjson.Parse(up.requests()[len(up.requests())-1])
			if strings.Contains(sent.Raw, testOpenID) {
				t.Errorf("the OpenID reached the provider with the hash key unavailable: %s", sent.Raw)
			}
			for _, f := range []string{"user", "safety_identifier", "metadata.uid"} {
				if v := sent.Get(f); v.Exists() {
					t.Errorf("%s sent as %s with the hash key unavailable; want it dropped", f, v.Raw)
				}
			}
			if n := metricSum(t, scrape(t, url), "paygate_user_hash_key_pending_total", nil); n != 1 {
				t.Errorf("paygate_user_hash_key_pending_total %v after one request without the key; want 1", n)
			}
		}

		srv.Restart()
		for i, ch := range loaded {
			select {
			case <-ch:
			case <-time.After(30 * time.Second):
				t.Fatalf("replica %d did not load the hash key within 30s of the store coming up", i)
			}
		}
		key, err := apps[0].store.GetOrCreateSecret(context.Background(), "privacy.hash_key", func() ([]byte, error) {
			return nil, errors.New("the replicas should have created the key")
		})
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte("bot\x00" + testOpenID))
		want := "u_" + hex.EncodeToString(m.Sum(nil)[:16])
		for i, url := range urls {
			chatJSON(t, url, body)
			sent := gjson.Parse(up.requests()[len(up.requests())-1])
			for _, f := range []string{"user", "safety_identifier", "metadata.uid"} {
				if got := sent.Get(f).Str; got != want {
					t.Errorf("replica %d: %s = %q once the store answered; want the hash under the stored key %q", i, f, got, want)
				}
			}
			if n := metricSum(t, scrape(t, url), "paygate_user_hash_key_pending_total", nil); n != 1 {
				t.Errorf("replica %d: paygate_user_hash_key_pending_total %v after the key loaded; want still 1", i, n)
			}
		}
	})

	srv.Kill()
	for _, mode := range []string{"drop", "keep"} {
		t.Run(mode, func(t *testing.T) {
			up := newScriptedProvider(t, stateScript)
			logs := newLogSignal("hash key")
			url, _ := serveConfig(t, config(srv.Addr(), mode, up.URL), logs)
			chatJSON(t, url, body)
			sent := gjson.Parse(up.requests()[0])
			if got, want := sent.Get("user").Str, map[string]string{"drop": "", "keep": testOpenID}[mode]; got != want {
				t.Errorf("user %q under %s; want %q", got, mode, want)
			}
			select {
			case <-logs.seen:
				t.Errorf("forward_user %s never uses the hash key, yet paygate logged about it", mode)
			default:
			}
		})
	}
}

// logSignal is a log writer whose seen closes once a line containing want
// is written.
type logSignal struct {
	want string
	seen chan struct{}
	once sync.Once
}

func newLogSignal(want string) *logSignal {
	return &logSignal{want: want, seen: make(chan struct{})}
}

func (l *logSignal) Write(p []byte) (int, error) {
	if strings.Contains(string(p), l.want) {
		l.once.Do(func() { close(l.seen) })
	}
	return len(p), nil
}
