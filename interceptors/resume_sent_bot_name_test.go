package interceptors

import "testing"

// TestResumeRepeatsASentBotCallExtendingAPaymentName: the bot received
// its call of query_order_history (beside the payment tool query_order)
// before the stream was cut; the recovery attempt, from a provider that
// streams names in pieces, repeats it as "query_order", then "_history".
// Resume took the first piece for a payment call, as a payment tool's
// whole name: the bot got the repeated call a second time under a new
// index, and the stream then ended with an error, for the sent call was
// never repeated. The pieces now repeat the sent call. A query_order call
// whose arguments follow, or that another call follows (a payment call
// before the repetition), is still a payment call.
func TestResumeRepeatsASentBotCallExtendingAPaymentName(t *testing.T) {
	sent := func(t *testing.T) (*Capture, *Resume) {
		c := NewCapture(isPaymentName)
		c.PaymentNames(paymentNames...)
		c.BotNames("query_order_history")
		if _, err := c.Process([]byte(callChunk(`{"index":0,"id":"call_a","type":"function","function":{"name":"query_order_history","arguments":"{\"days\":"}}`))); err != nil {
			t.Fatal(err)
		}
		cut := c.EndRound()
		c.StartRound(1, "chatcmpl-turn", 0)
		c.ContinueCalls(cut.Sent.Calls)
		return c, NewResume("", cut.Sent.Text, "", true).WithCalls(cut.Sent.Calls, isPaymentName).WithHeldNames(c.HeldNameGoesOn)
	}
	t.Run("repeated in pieces", func(t *testing.T) {
		c, r := sent(t)
		resumeThrough(t, r, c, []string{
			callChunk(`{"index":0,"id":"call_b","type":"function","function":{"name":"query_order","arguments":""}}`),
			callChunk(`{"index":0,"function":{"name":"_history"}}`),
			callChunk(`{"index":0,"function":{"arguments":"{\"days\":7}"}}`),
			rchunk(`{}`, "tool_calls"),
		})
		c.EndNames()
		res := c.EndRound()
		if len(res.PaymentCalls) != 0 {
			t.Errorf("payment calls %+v; want none", res.PaymentCalls)
		}
		checkCalls(t, "client calls", res.ClientCalls, []ToolCall{
			{Index: 0, ID: "call_a", Name: "query_order_history", Arguments: `{"days":7}`},
		})
	})
	t.Run("a payment call first", func(t *testing.T) {
		c, r := sent(t)
		resumeThrough(t, r, c, []string{
			callChunk(`{"index":0,"id":"call_p","type":"function","function":{"name":"query_order","arguments":""}}`),
			callChunk(`{"index":0,"function":{"arguments":"{\"order_no\":\"PG1\"}"}}`),
			callChunk(`{"index":1,"id":"call_b","type":"function","function":{"name":"query_order_history","arguments":"{\"days\":7}"}}`),
			rchunk(`{}`, "tool_calls"),
		})
		c.EndNames()
		res := c.EndRound()
		checkCalls(t, "payment calls", res.PaymentCalls, []ToolCall{
			{Index: 1, ID: "call_p", Name: "query_order", Arguments: `{"order_no":"PG1"}`},
		})
		checkCalls(t, "client calls", res.ClientCalls, []ToolCall{
			{Index: 0, ID: "call_a", Name: "query_order_history", Arguments: `{"days":7}`},
		})
	})
	t.Run("a payment call without arguments first", func(t *testing.T) {
		c, r := sent(t)
		resumeThrough(t, r, c, []string{
			callChunk(`{"index":0,"id":"call_p","type":"function","function":{"name":"query_order","arguments":""}}`),
			callChunk(`{"index":1,"id":"call_b","type":"function","function":{"name":"query_order_history","arguments":"{\"days\":7}"}}`),
			rchunk(`{}`, "tool_calls"),
		})
		c.EndNames()
		res := c.EndRound()
		checkCalls(t, "payment calls", res.PaymentCalls, []ToolCall{
			{Index: 1, ID: "call_p", Name: "query_order", Arguments: ""},
		})
		checkCalls(t, "client calls", res.ClientCalls, []ToolCall{
			{Index: 0, ID: "call_a", Name: "query_order_history", Arguments: `{"days":7}`},
		})
	})
}
