package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestExtraArgumentsLineBounded: a payment call's arguments outside the
// schema are ignored and logged by name, and the names are the model's
// words, which a user can steer: the line names at most ten, each cut to
// 32 bytes, and counts them all. Named whole, 51 names (a 3,000-byte one,
// and fifty that quote what the user said) made a line of 4,962 bytes.
func TestExtraArgumentsLineBounded(t *testing.T) {
	keys := []string{`\"amount\":1`, `\"` + strings.Repeat("k", 3000) + `\":1`}
	for i := range 49 {
		keys = append(keys, fmt.Sprintf(`\"my phone is 13800138000 field %02d\":1`, i))
	}
	args := `{\"sku\":\"premium-monthly\",` + strings.Join(keys, ",") + `}`
	up := newScriptedProvider(t, func(body string) scriptRound {
		if !strings.Contains(body, `"role":"tool"`) {
			return scriptRound{whole: `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok","tool_calls":[{"id":"call_1","type":"function","function":{"name":"create_order","arguments":"` + args + `"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`}
		}
		return purchaseScript(body)
	})
	logs := &logtest.Buffer{}
	url, a := serveFake(t, up.URL, `
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, logs)
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","messages":[{"role":"user","content":"premium"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || a.sim.OrderCount() != 1 {
		t.Fatalf("%d, %d orders: %s", resp.StatusCode, a.sim.OrderCount(), b)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg    string `json:"msg"`
			Fields string `json:"fields"`
			Count  int    `json:"count"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "payment tool arguments outside the schema ignored" {
			continue
		}
		found = true
		names := strings.Split(rec.Fields, ",")
		long := slicesMaxLen(names)
		if len(line) > 1024 || len(names) > 10 || long > 32 || rec.Count != 51 || names[0] != "amount" {
			t.Errorf("the line (%d bytes) names %d fields, the longest %d bytes, count %d, first %q; want at most 10 of at most 32 bytes, count 51, first amount: %.400s",
				len(line), len(names), long, rec.Count, names[0], line)
		}
	}
	if !found {
		t.Errorf("no line says arguments outside the schema were ignored:\n%s", logs.String())
	}
}

func slicesMaxLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s))
	}
	return n
}
