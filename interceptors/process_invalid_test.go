package interceptors

import (
	"errors"
	"strings"
	"testing"
)

// TestProcessRefusesAnInvalidObject: a chunk that opens as an object but
// is no JSON (cut, garbage after it, a bad number, escape or control
// character) is refused by Process before its slow path reads it, and
// the round's payment calls are Damaged, because gjson reads what it can
// of such text: a cut chunk that names create_order read as a call. Only
// ProcessValid, for an event failover's Next validated, skips the check.
func TestProcessRefusesAnInvalidObject(t *testing.T) {
	fin := `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}`
	for name, bad := range map[string]string{
		"cut":                    strings.TrimSuffix(benchPaymentStart, "}]}"),
		"garbage after it":       benchPaymentStart + `x`,
		"two objects":            benchPaymentStart + ` {}`,
		"a number 01":            strings.Replace(benchPaymentStart, `"index":0,"id"`, `"index":01,"id"`, 1),
		"a short escape":         strings.Replace(benchPaymentStart, `"arguments":""`, `"arguments":"\u12"`, 1),
		"a control character":    strings.Replace(benchPaymentStart, `"arguments":""`, "\"arguments\":\"\x01\"", 1),
		"a member with no value": strings.Replace(benchPaymentStart, `"arguments":""`, `"arguments":`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.StartRound(0, "chatcmpl-turn", benchCreated)
			if out, err := c.Process([]byte(bad)); !errors.Is(err, ErrMalformedChunk) || out != nil {
				t.Fatalf("Process(%q) = %q, %v; want nil, ErrMalformedChunk", bad, out, err)
			}
			for _, ch := range []string{benchPaymentStart, benchPaymentDelta, fin} {
				if _, err := c.Process([]byte(ch)); err != nil {
					t.Fatalf("Process(%q): %v", ch, err)
				}
			}
			res := c.EndRound()
			if !res.Lost || len(res.PaymentCalls) != 1 || !res.PaymentCalls[0].Damaged {
				t.Fatalf("lost %v, payment calls %+v; want the round lost and its one call Damaged", res.Lost, res.PaymentCalls)
			}
		})
	}
}
