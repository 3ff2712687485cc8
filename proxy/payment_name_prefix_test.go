package proxy

import (
	"slices"
	"testing"
)

// TestBotToolExtendingAPaymentNameInPieces: a bot's own tool whose name
// starts with a payment tool's whole name (query_order_history beside
// query_order), from a provider that streams a name in pieces
// ("query_order" in a call's first delta, "_history" in a later one of the
// same index, as Gemini's compatible endpoint is reported to). The first
// piece was taken at once for the payment tool: query_order ran without
// its arguments (the model was told the order number was missing, and the
// turn asked the user to clarify), and the bot got a call of a tool
// "_history", which it does not have, with the arguments. A payment tool's
// whole name that a tool of the bot's extends now waits, as the start of a
// payment tool's name does, until its arguments start or its name is said
// whole: the bot gets query_order_history, and nothing of it runs. The
// payment tool's own call, its name whole and its arguments after, still
// runs.
func TestBotToolExtendingAPaymentNameInPieces(t *testing.T) {
	const historyTool = `"tools":[{"type":"function","function":{"name":"query_order_history","parameters":{"type":"object"}}}],`
	tests := []struct {
		name     string
		deltas   []string
		executed []string
		bot      []string
	}{
		{"the bot's tool, its name in pieces", []string{
			callDelta(`{"index":0,"id":"call_h","type":"function","function":{"name":"query_order","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"_history"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"days\":7}"}}`),
		}, nil, []string{`query_order_history {"days":7}`}},
		{"the bot's tool, its name in three pieces", []string{
			callDelta(`{"index":0,"id":"call_h","type":"function","function":{"name":"query_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"order"}}`),
			callDelta(`{"index":0,"function":{"name":"_history"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"days\":7}"}}`),
		}, nil, []string{`query_order_history {"days":7}`}},
		{"the payment tool beside it, its name in pieces", []string{
			callDelta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"order"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"order_no\":\"O1\"}"}}`),
		}, []string{`query_order {"order_no":"O1"}`}, nil},
		{"the payment tool beside it, its arguments after its name", []string{
			callDelta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":""}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"order_no\":"}}`),
			callDelta(`{"index":0,"function":{"arguments":"\"O1\"}"}}`),
		}, []string{`query_order {"order_no":"O1"}`}, nil},
		{"the payment tool beside it, its name repeated whole", []string{
			callDelta(`{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":""}}`),
			callDelta(`{"index":0,"id":"","function":{"name":"query_order","arguments":"{\"order_no\":\"O1\"}"}}`),
		}, []string{`query_order {"order_no":"O1"}`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			executed, bot, body, _ := streamedCallTurn(t, historyTool, roundByRound(callRound(tc.deltas...), textRound(true, "Order O1 is waiting for payment.")))
			if !slices.Equal(executed, tc.executed) {
				t.Errorf("executed %q; want %q", executed, tc.executed)
			}
			if !slices.Equal(bot, tc.bot) {
				t.Errorf("the bot got calls %q; want %q:\n%s", bot, tc.bot, body)
			}
		})
	}
}
