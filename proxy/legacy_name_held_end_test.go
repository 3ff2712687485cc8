package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestLegacyBotCallHeldToTheRoundsEnd: a legacy function_call of the bot's
// own whose name starts a payment tool's ("create", beside create_order) and
// whose arguments never start is held while its name may grow; the round's
// end makes the name whole, and the call goes to the bot, as a tool call so
// held does (EndNames). Held for good, it was refused as a payment call
// without a name and the bot never got it.
func TestLegacyBotCallHeldToTheRoundsEnd(t *testing.T) {
	for _, stream := range []bool{true, false} {
		name := "non-stream answered with events"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			events := []string{
				roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n",
				roundChunk + `[{"index":0,"delta":{"function_call":{"name":"create","arguments":""}},"finish_reason":null}]}` + "\n\n",
				roundChunk + `[{"index":0,"delta":{},"finish_reason":"function_call"}]}` + "\n\n",
				"data: [DONE]\n\n",
			}
			body, tools := weatherBotTurn(t, roundByRound(sseHandler(events...), textRound(stream, "Done.")), stream)
			if got := tools.executed(); len(got) != 0 {
				t.Errorf("executed %q; want nothing\n%s", got, body)
			}
			var got string
			if stream {
				var n strings.Builder
				for _, line := range strings.Split(body, "\n") {
					if data, ok := strings.CutPrefix(line, "data: "); ok {
						n.WriteString(gjson.Get(data, "choices.0.delta.function_call.name").Str)
					}
				}
				got = n.String()
			} else {
				got = gjson.Get(body, "choices.0.message.function_call.name").Str
			}
			if got != "create" {
				t.Errorf("the bot read a function_call named %q; want \"create\":\n%s", got, body)
			}
			if strings.Contains(body, "Done.") {
				t.Errorf("the turn went on past the bot's call:\n%s", body)
			}
		})
	}
}
