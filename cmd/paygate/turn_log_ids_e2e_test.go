package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestTroubledTurnLinesCarryTheirRequestID: the turns an operator is paged
// about write lines in failover (an attempt that failed, a stream cut), in
// the stream's recovery, in the payment tools and the order's creation, in
// the accounting of its rounds: each carries the X-Request-Id its bot was
// answered with, whichever package wrote it. Only the background's lines
// (the webhook relay, the audit worker) carry none.
func TestTroubledTurnLinesCarryTheirRequestID(t *testing.T) {
	rounds := func(body string) (int, canonRound) {
		if strings.Contains(body, `"role":"tool"`) {
			return 1, payRound1
		}
		return 0, payRound0
	}
	primary := newRecoveryProvider(t, "chatcmpl-P", rounds, &fault{kind: "cut", round: 0, at: 4}, "none")
	fallback := newRecoveryProvider(t, "chatcmpl-F", rounds, nil, "prefill")
	logs := &logtest.Buffer{}
	url, _ := recoveryApp(t, primary.URL, fallback.URL, "prefill", logs)
	ids := map[string]bool{}
	for _, body := range []string{
		// the primary's stream cut inside the held payment call: recovered
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"I want premium for a month"}]}`,
		// a turn the primary's cut answers first: failed over
		`{"model":"gpt-4o","messages":[{"role":"user","content":"premium again, please"}]}`,
	} {
		resp := postAs(t, url, e2eClientKey, testOpenID, body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != 200 || !strings.Contains(string(b), "to finish.") || id == "" {
			t.Fatalf("%d (X-Request-Id %q): %s", resp.StatusCode, id, b)
		}
		ids[id] = true
	}
	var recovered, failed bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["component"] == "webhook" || rec["component"] == "audit" || rec["msg"] == "config" || rec["msg"] == "paygate starting" {
			continue // background work, and the start's lines (the config's warnings, what runs)
		}
		recovered = recovered || rec["msg"] == "stream recovery"
		failed = failed || rec["msg"] == "upstream attempt failed"
		if id, _ := rec["request_id"].(string); !ids[id] {
			t.Errorf("a line of the turns without one of their request ids %v: %s", ids, line)
		}
	}
	if !recovered || !failed {
		t.Errorf("recovered %v, failed over %v; want both:\n%s", recovered, failed, logs.String())
	}
}
