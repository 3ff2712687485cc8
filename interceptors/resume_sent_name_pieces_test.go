package interceptors

import "testing"

// TestResumeRepeatsASentCallNamedInPieces: a recovery attempt that answers
// afresh after the bot received one of its calls must repeat that call; a
// provider that streams names in pieces names it "get_", then "weather"
// under the same index. Resume compared the first piece with the sent
// call's whole name and took the answer for another one (ErrDiverged), so
// every such recovery ended the stream with an error although the answer
// repeated the call. The pieces now match the sent name, nothing of them
// goes to the client (it has the name), and the arguments go on beyond
// the sent ones. A piece that leaves the sent name, or arguments before
// the name is whole, still diverge.
func TestResumeRepeatsASentCallNamedInPieces(t *testing.T) {
	sent := func(t *testing.T) (*Capture, *Resume) {
		c := NewCapture(isPaymentName)
		c.PaymentNames(paymentNames...)
		if _, err := c.Process([]byte(callChunk(`{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`))); err != nil {
			t.Fatal(err)
		}
		cut := c.EndRound()
		c.StartRound(1, "chatcmpl-turn", 0)
		c.ContinueCalls(cut.Sent.Calls)
		return c, NewResume("", cut.Sent.Text, "", true).WithCalls(cut.Sent.Calls, isPaymentName).WithHeldNames(c.HeldNameGoesOn)
	}
	t.Run("repeated", func(t *testing.T) {
		c, r := sent(t)
		resumeThrough(t, r, c, []string{
			callChunk(`{"index":0,"id":"call_b","type":"function","function":{"name":"get_","arguments":""}}`),
			callChunk(`{"index":0,"function":{"name":"weather"}}`),
			callChunk(`{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}`),
			rchunk(`{}`, "tool_calls"),
		})
		c.EndNames()
		checkCalls(t, "client calls", c.EndRound().ClientCalls, []ToolCall{
			{Index: 0, ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`},
		})
	})
	for _, tc := range []struct{ name, second string }{
		{"another name", callChunk(`{"index":0,"function":{"name":"time"}}`)},
		{"arguments before the name is whole", callChunk(`{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}`)},
		{"an end before the name is whole", rchunk(`{}`, "tool_calls")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := sent(t)
			if _, err := r.Filter([]byte(callChunk(`{"index":0,"id":"call_b","type":"function","function":{"name":"get_","arguments":""}}`))); err != nil {
				t.Fatalf("first piece: %v", err)
			}
			if _, err := r.Filter([]byte(tc.second)); err != ErrDiverged {
				t.Fatalf("err %v; want ErrDiverged", err)
			}
		})
	}
}
