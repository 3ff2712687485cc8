package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/logging/logtest"
)

// TestStateUnavailableLoggedPaced: with the store away, every turn goes on
// without the user's payment state, each counted in
// paygate_state_unavailable_total, and the log says so at most once per
// 10 s, the first at once and the next with how many were left out
// (suppressed), as the Redis client's own lines and the accounting's are
// paced: a warning per turn wrote 200 lines (56 KB) for 200 turns, 279 KB
// per 1,000 turns of the outage, each saying the same thing.
func TestStateUnavailableLoggedPaced(t *testing.T) {
	const turns = 200
	base, first, elapsed, lines := storeAwayTurns(t, "", "hello", "payment state unavailable; the turn goes on without it", turns)
	// One line per 10 s begun, the first at once.
	if most := 1 + int(elapsed/(10*time.Second)); len(lines) < 1 || len(lines) > most {
		t.Fatalf("%d turns with the store away (%v) wrote %d lines saying the state was unavailable; want 1 to %d", turns, elapsed, len(lines), most)
	}
	if got := lines[0]; got["request_id"] != first || got["level"] != "WARN" || got["err"] == nil {
		t.Errorf("the first line %v; want WARN with the first turn's request_id %s and the store's error", got, first)
	}
	if n := metricSum(t, scrape(t, base), "paygate_state_unavailable_total", nil); n != turns {
		t.Errorf("paygate_state_unavailable_total %v after %d turns; want each counted", n, turns)
	}
}

// storeAwayTurns serves turns chat turns saying content with the store
// away (Redis refusing connections), payments the config's payments
// section ("" for none), each answered 200. It returns paygate's address,
// the first turn's request id, how long the turns took, and the log
// lines whose msg is msg.
func storeAwayTurns(t *testing.T, payments, content, msg string, turns int) (base, first string, elapsed time.Duration, lines []map[string]any) {
	t.Helper()
	up := newScriptedProvider(t, stateScript)
	logs := &logtest.Buffer{}
	base, _ = serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {driver: redis, redis: {addrs: ["`+redistest.RefusedAddr+`"]}}
privacy: {hash_key: fixed-key-for-this-test}
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
`+payments, logs)
	body, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": []map[string]string{{"role": "user", "content": content}}})
	start := time.Now()
	for i := range turns {
		resp := postAs(t, base, e2eClientKey, testOpenID, string(body))
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("turn %d: %d; want 200 with the store away", i, resp.StatusCode)
		}
		if i == 0 {
			first = resp.Header.Get("X-Request-Id")
		}
	}
	elapsed = time.Since(start)
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			lines = append(lines, rec)
		}
	}
	return base, first, elapsed, lines
}
