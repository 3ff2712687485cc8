package proxy

import "testing"

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
	tests := []callTurnCase{
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
			_, fp := tc.run(t)
			tc.checkRounds(t, fp)
		})
	}
}

// TestHarmonyWrappedPaymentNameInMorePieces: the control token after a
// payment tool's name in pieces of its own ("create_order", then
// "<|channel|>", then "commentary") left the name "create_order": the
// channel word went to the bot as a call of a tool "commentary" with the
// payment call's arguments, and create_order ran without them. A
// payment call without arguments, followed under its index by another
// call (a provider that gives every call index 0 and no id), took that
// call's name for the rest of its wrapping: the bot's call ran as
// create_order, with its arguments, and the bot never got it. And the
// bot's own create_order_v2 wrapped in the namespace, in pieces, ran as
// create_order, the bot getting a call "_v2": held while a tool of the
// bot's extends it, as the bare name is.
func TestHarmonyWrappedPaymentNameInMorePieces(t *testing.T) {
	const ran = `create_order {"sku":"premium"}`
	const v2Tool = `"tools":[{"type":"function","function":{"name":"create_order_v2","parameters":{"type":"object"}}}],`
	tests := []callTurnCase{
		{"the name, its control token, then its channel", weatherTool, []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"<|channel|>"}}`),
			callDelta(`{"index":0,"function":{"name":"commentary"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{ran}, nil},
		{"the name and its control token, then its channel", weatherTool, []string{
			callDelta(`{"index":0,"id":"call_c","type":"function","function":{"name":"create_order<|channel|>","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"commentary"}}`),
			callDelta(`{"index":0,"function":{"arguments":"{\"sku\":\"premium\"}"}}`),
		}, []string{ran}, nil},
		{"a wrapped payment call without arguments, then the bot's call under its index", weatherTool, []string{
			callDelta(`{"index":0,"type":"function","function":{"name":"create_order<|channel|>commentary","arguments":""}}`),
			callDelta(`{"index":0,"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`),
		}, []string{`create_order `}, []string{`get_weather {"city":"Paris"}`}},
		{"a payment call ending in a control token, then the bot's call under its index", weatherTool, []string{
			callDelta(`{"index":0,"type":"function","function":{"name":"create_order<|channel|>","arguments":""}}`),
			callDelta(`{"index":0,"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`),
		}, []string{`create_order `}, []string{`get_weather {"city":"Paris"}`}},
		{"the bot's tool extending a payment tool's name, in the namespace, in pieces", v2Tool, []string{
			callDelta(`{"index":0,"id":"call_v","type":"function","function":{"name":"functions.","arguments":""}}`),
			callDelta(`{"index":0,"function":{"name":"create_order"}}`),
			callDelta(`{"index":0,"function":{"name":"_v2","arguments":"{\"sku\":\"premium\"}"}}`),
		}, nil, []string{`functions.create_order_v2 {"sku":"premium"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t)
		})
	}
}
