package interceptors

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// TestPaymentArgumentsSplitAtEveryCut: a payment call's arguments read
// the same wherever a provider cuts them between two deltas, in the tools
// shape and the legacy function_call: inside a multi-byte character, between
// the halves of a surrogate pair written as \u escapes, beside an escaped
// quote or backslash. The pieces are joined as sent and decoded once, as a
// client joining the decoded pieces in UTF-16 (JavaScript) reads them;
// decoded one by one, each half of a split character was U+FFFD, and a
// refund's reason reached WeChat Pay so. A cut inside an escape makes a
// delta that is no JSON string, which no provider sends.
func TestPaymentArgumentsSplitAtEveryCut(t *testing.T) {
	const chunk = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	args := `{"order_no":"PG1","reason":"退款 \u00e9 \ud83d\ude00 \"q\" \\ é😀","amount":"1.00"}`
	whole := strconv.Quote(args) // escaped text as a provider sends it
	whole = whole[1 : len(whole)-1]
	variants := []string{whole, `{\"order_no\":\"PG1\",\"reason\":\"a\ud83d\ude00b\",\"amount\":\"1.00\"}`, `{\"order_no\":\"PG1\",\"reason\":\"\u9000\\ud83d\\ude00\u00e9\",\"amount\":\"1.00\"}`}
	for vi, w := range variants {
		// The whole arguments as sent, decoded once: what every cut must
		// read, not merely what the first cut read (an off-by-one in the
		// join or the decoding, the same at every cut, read as agreement).
		want := gjson.Parse(`"` + w + `"`).Str
		if !gjson.Valid(want) {
			t.Fatalf("variant %d: %q is no JSON", vi, want)
		}
		skipped, checked := 0, 0
		for cut := 0; cut <= len(w); cut++ {
			a, b := w[:cut], w[cut:]
			if !gjson.Valid(`"`+a+`"`) || !gjson.Valid(`"`+b+`"`) {
				skipped++
				continue
			}
			for _, legacy := range []bool{false, true} {
				c := NewCapture(isPaymentName)
				c.StartRound(0, "fb", 0)
				var first, next string
				if legacy {
					first = `{"function_call":{"name":"request_refund","arguments":"` + a + `"}}`
					next = `{"function_call":{"arguments":"` + b + `"}}`
				} else {
					first = `{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"request_refund","arguments":"` + a + `"}}]}`
					next = `{"tool_calls":[{"index":0,"function":{"arguments":"` + b + `"}}]}`
				}
				for _, d := range []string{first, next, `{}`} {
					fin := "null"
					if d == `{}` {
						fin = `"tool_calls"`
					}
					if _, err := c.Process([]byte(chunk + d + `,"finish_reason":` + fin + `}]}`)); err != nil {
						t.Fatalf("cut %d: %v", cut, err)
					}
				}
				r := c.EndRound()
				if len(r.PaymentCalls) != 1 {
					t.Fatalf("variant %d cut %d legacy %v: %d calls", vi, cut, legacy, len(r.PaymentCalls))
				}
				if got := r.PaymentCalls[0].Arguments; got != want {
					t.Errorf("variant %d cut %d legacy %v: %q; want %q", vi, cut, legacy, got, want)
				}
				checked++
			}
		}
		if checked < 100 || skipped == 0 {
			t.Errorf("variant %d: %d cuts checked, %d inside an escape skipped; want every cut", vi, checked, skipped)
		}
		if r := gjson.Get(want, "reason").Str; !strings.Contains(r, "😀") || strings.ContainsRune(r, utf8.RuneError) {
			t.Errorf("variant %d: reason %q; want its characters whole", vi, r)
		}
	}
}
