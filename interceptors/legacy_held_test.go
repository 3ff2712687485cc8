package interceptors

import (
	"strings"
	"testing"
)

// TestHeldCountsLegacyArguments: the arguments of a legacy function_call
// naming a payment tool, held back as a tool call's are, count in Held as
// a tool call's do: the relay ends a round whose held text passes its
// bound (the proxy's maxRoundText), and arguments a provider streams
// without end (each event within the event bound) were held uncounted, so
// a round of a legacy create_order grew without bound, where the same
// arguments in a tool call ended the round at 32 MiB. The bot's own call
// goes out as it comes and is held by nobody.
func TestHeldCountsLegacyArguments(t *testing.T) {
	const chunk = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	piece := strings.Repeat("a", 1000)
	for _, tc := range []struct {
		name, first, next string
		want              int
	}{
		{"tool call", `{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"create_order","arguments":""}}]}`,
			`{"tool_calls":[{"index":0,"function":{"arguments":"` + piece + `"}}]}`, 10 * len(piece)},
		{"legacy payment call", `{"function_call":{"name":"create_order","arguments":""}}`,
			`{"function_call":{"arguments":"` + piece + `"}}`, 10 * len(piece)},
		{"legacy call of the bot's", `{"function_call":{"name":"get_weather","arguments":""}}`,
			`{"function_call":{"arguments":"` + piece + `"}}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.StartRound(0, "fallback", 0)
			if _, err := c.Process([]byte(chunk + tc.first + `,"finish_reason":null}]}`)); err != nil {
				t.Fatal(err)
			}
			for range 10 {
				if _, err := c.Process([]byte(chunk + tc.next + `,"finish_reason":null}]}`)); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.Held(); got < tc.want || got > tc.want+len(piece) {
				t.Errorf("Held() %d after %d bytes of arguments; want %d", got, 10*len(piece), tc.want)
			}
		})
	}
}
