package interceptors

import (
	"strings"
	"testing"
)

// TestResumeBotToolExtendingAPaymentNameInPieces: a recovery attempt that
// answers afresh after the bot received one of its calls, then calls the
// bot's query_order_history (beside the payment tool query_order) with the
// name in pieces ("query_order", then "_history" under the same index), as
// a provider that streams names in pieces does. Resume took the second
// piece for another call, for the first is a payment tool's whole name,
// and gave it the next index: the Capture, which holds such a name while
// a bot tool's name extends it (BotNames), saw two calls, ran query_order
// without arguments and handed the bot a call of a tool "_history".
func TestResumeBotToolExtendingAPaymentNameInPieces(t *testing.T) {
	c := NewCapture(isPaymentName)
	c.PaymentNames(paymentNames...)
	c.BotNames("get_weather", "query_order_history")
	if _, err := c.Process([]byte(callChunk(`{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`))); err != nil {
		t.Fatal(err)
	}
	cut := c.EndRound()
	c.StartRound(1, "chatcmpl-turn", 0)
	c.ContinueCalls(cut.Sent.Calls)
	r := NewResume("", cut.Sent.Text, "", true).WithCalls(cut.Sent.Calls, isPaymentName).WithHeldNames(c.HeldNameGoesOn)
	got := resumeThrough(t, r, c, []string{
		callChunk(`{"index":0,"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`),
		callChunk(`{"index":1,"id":"call_h","type":"function","function":{"name":"query_order","arguments":""}}`),
		callChunk(`{"index":1,"function":{"name":"_history"}}`),
		callChunk(`{"index":1,"function":{"arguments":"{\"days\":7}"}}`),
		rchunk(`{}`, "tool_calls"),
	})
	c.EndNames()
	res := c.EndRound()
	if len(res.PaymentCalls) != 0 {
		t.Errorf("payment calls %+v; want none", res.PaymentCalls)
	}
	checkCalls(t, "client calls", res.ClientCalls, []ToolCall{
		{Index: 0, ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`},
		{Index: 1, ID: "call_h", Name: "query_order_history", Arguments: `{"days":7}`},
	})
	if s := strings.Join(got, "\n"); strings.Contains(s, `"_history"`) && !strings.Contains(s, `query_order_history`) {
		t.Errorf("the bot got a call of a tool \"_history\":\n%s", s)
	}
}
