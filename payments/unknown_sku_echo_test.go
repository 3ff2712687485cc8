package payments_test

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestUnknownSKUEchoIsCut: the clarification for a SKU not sold quotes the
// model's SKU cut to 64 bytes between characters, with "…": quoted whole,
// a 16,000-byte SKU (the most the arguments hold) came back in a tool
// result of 16,167 bytes, sent to the provider again in the turn's next
// round and with the kept exchange. A short SKU is quoted whole.
func TestUnknownSKUEchoIsCut(t *testing.T) {
	e := newEnv(t, envOptions{})
	tools := newTools(e)
	u := caller("oUser-long-sku")
	for _, tc := range []struct {
		name, sku, want string
	}{
		{"ascii", strings.Repeat("a", 16000), `"` + strings.Repeat("a", 64) + `…"`},
		{"chinese, cut between characters", strings.Repeat("高级会员", 1200), `"` + strings.Repeat("高级会员", 5) + `高…"`},
		{"short", "free-money", `"free-money"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tools, u, "create_order", `{"sku":"`+tc.sku+`"}`)
			msg, _ := r.result["error"].(string)
			if r.result["status"] != "needs_clarification" || r.out.Executed {
				t.Fatalf("result %.300s; want a clarification", r.out.Result)
			}
			if len(r.out.Result) > 400 || !strings.Contains(msg, tc.want) || !utf8.ValidString(msg) {
				t.Errorf("result of %d bytes: %.300s; want under 400 bytes quoting %s", len(r.out.Result), r.out.Result, tc.want)
			}
		})
	}
}
