package proxy

import (
	"slices"
	"testing"
)

// TestHarmonyWrappedPaymentNameInPieces: a harmony-wrapped payment tool's
// name (TestHarmonyWrappedPaymentName) from a provider that streams names
// in pieces (TestToolNameSplitAcrossDeltas): "functions." in a call's
// first delta and "create_order" in the next, or "create_ord" then
// "er<|channel|>commentary". paygate read the name whole only from one
// delta: the bot got a call of a tool "functions." it never defined (or
// of "<|channel|>commentary"), and no order was made. The pieces now make
// one name, read as the payment call it wraps; a bot's own tool whose name
// is in the namespace goes to the bot, whole.
func TestHarmonyWrappedPaymentNameInPieces(t *testing.T) {
	const ran = `create_order {"sku":"premium"}`
	const nsTool = `"tools":[{"type":"function","function":{"name":"functions.lookup","parameters":{"type":"object"}}}],`
	const prefixedTool = `"tools":[{"type":"function","function":{"name":"functions.create_order","parameters":{"type":"object"}}}],`
	tests := []struct {
		name, tools string
		deltas      []string
		executed    []string // the payment calls that ran
		bot         []string // the calls the bot got
	}{
		{"namespace, then the name", weatherTool, []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"functions.","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"create_order"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{ran}, nil},
		{"the namespace in pieces", weatherTool, []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"func","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"tions.create_"}}`),
			callDelta(`{"index":0,"function":{"name":"order","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{ran}, nil},
		{"the name, then its control token", weatherTool, []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_ord","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"er<|channel|>commentary"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{ran}, nil},
		{"the whole name, then its control token", weatherTool, []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"<|channel|>commentary"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{ran}, nil},
		{"by id, without an index", weatherTool, []string{
			callDelta(`{"id":"call_c","type":"function","function":{"name":"functions.cre"}}`),
			callDelta(`{"id":"call_c","function":{"name":"ate_order<|constrain|>json","arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{ran}, nil},
		{"the bot's own tool in the namespace", nsTool, []string{
			callDelta(`{"index":0,"id":"call_l","type":"function","function":{"name":"functions.","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"lookup"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"u\":1}"}}`),
		}, nil, []string{`functions.lookup {"u":1}`}},
		{"the bot's own tool named as a wrapped payment tool", prefixedTool, []string{
			callDelta(`{"index":0,"id":"call_p","type":"function","function":{"name":"functions.create_","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"order"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"u\":1}"}}`),
		}, nil, []string{`functions.create_order {"u":1}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			executed, bot, body, fp := streamedCallTurn(t, tc.tools, roundByRound(callRound(tc.deltas...), textRound(true, "Order O1 is waiting for payment.")))
			if !slices.Equal(executed, tc.executed) {
				t.Errorf("executed %q; want %q", executed, tc.executed)
			}
			if !slices.Equal(bot, tc.bot) {
				t.Errorf("the bot got calls %q; want %q:\n%s", bot, tc.bot, body)
			}
			wantRounds := 1
			if len(tc.executed) > 0 {
				wantRounds = 2
			}
			if got := len(fp.requests()); got != wantRounds {
				t.Errorf("%d upstream rounds; want %d", got, wantRounds)
			}
		})
	}
}
