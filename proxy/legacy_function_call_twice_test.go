package proxy

import (
	"strings"
	"testing"
)

// TestLegacyFunctionCallNamedTwice: a legacy function_call that names its
// name or its arguments twice, or in another case, or a message with two
// function_calls, reads one way to paygate (its walkers and gjson take the
// first copy, and only the exact name) and another to the bot's parser
// (JSON.parse, Python's json: the last; Go's encoding/json: the last, in
// any case). paygate ran create_order {"quantity":1} where the bot read
// {"quantity":12}, ran create_order under a name the bot read as its own
// get_weather, and handed the bot a call of create_order it read where
// paygate read get_weather, stream and not. A tool call in the tools
// shape with its arguments twice is refused as a malformed answer (and a
// name twice as a call without a name); the legacy shape now is too: no
// payment call runs, and none reaches the bot.
func TestLegacyFunctionCallNamedTwice(t *testing.T) {
	const (
		pay   = `"arguments":"{\"sku\":\"premium-monthly\",\"quantity\":1}"`
		pay12 = `"arguments":"{\"sku\":\"premium-monthly\",\"quantity\":12}"`
	)
	tests := []struct {
		name, fc string
		message  bool // only a message can hold two function_calls; a delta's are one call's pieces
	}{
		{"name twice, payment first", `"function_call":{"name":"create_order","name":"get_weather",` + pay + `}`, false},
		{"name twice, payment last", `"function_call":{"name":"get_weather","name":"create_order",` + pay + `}`, false},
		{"name in another case", `"function_call":{"name":"create_order","Name":"get_weather",` + pay + `}`, false},
		{"arguments twice", `"function_call":{"name":"create_order",` + pay + `,` + pay12 + `}`, false},
		{"arguments in another case", `"function_call":{"name":"create_order",` + pay + `,"Arguments":"{\"sku\":\"premium-monthly\",\"quantity\":12}"}`, false},
		{"two calls, payment first", `"function_call":{"name":"create_order",` + pay + `},"function_call":{"name":"get_weather","arguments":"{}"}`, true},
		{"two calls, payment last", `"function_call":{"name":"get_weather","arguments":"{}"},"function_call":{"name":"create_order",` + pay + `}`, true},
		{"two payment calls", `"function_call":{"name":"create_order",` + pay + `},"function_call":{"name":"create_order",` + pay12 + `}`, true},
		{"a call in another case", `"function_call":{"name":"create_order",` + pay + `},"Function_call":{"name":"get_weather","arguments":"{}"}`, true},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			if stream && tc.message {
				continue
			}
			t.Run(tc.name+map[bool]string{false: "", true: ", stream"}[stream], func(t *testing.T) {
				first := jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"m0","choices":[{"index":0,"message":{"role":"assistant","content":null,`+tc.fc+`},"finish_reason":"function_call"}]}`)
				if stream {
					first = sseHandler(
						roundChunk+`[{"index":0,"delta":{"role":"assistant","content":null,`+tc.fc+`},"finish_reason":null}]}`+"\n\n",
						roundChunk+`[{"index":0,"delta":{},"finish_reason":"function_call"}]}`+"\n\n", "data: [DONE]\n\n")
				}
				body, tools := weatherBotTurn(t, roundByRound(first, textRound(stream, "Which one did you want?"), textRound(stream, "Which one did you want?")), stream)
				if got := tools.executed(); len(got) != 0 {
					t.Errorf("executed %q; want nothing run of a call read two ways\n%s", got, body)
				}
				t.Logf("%s", body)
				if strings.Contains(body, "create_order") {
					t.Errorf("the bot got a payment call:\n%s", body)
				}
			})
		}
	}
}
