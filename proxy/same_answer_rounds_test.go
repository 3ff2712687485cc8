package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// botRead is what a bot reads of a turn's answer, streamed or not: the
// text (a string content, or the "text" parts of a content given as
// parts, joined), the "thinking" parts' text, the refusal, and the
// reasoning (reasoning_content, else reasoning, as an SDK that knows
// either reads it), each joined over the stream's deltas.
type botRead struct{ text, thinking, refusal, reasoning string }

func readBot(stream bool, body string) botRead {
	var r botRead
	read := func(m gjson.Result) {
		if c := m.Get("content"); c.IsArray() {
			text, thinking := contentParts(c)
			r.text += strings.Join(text, "")
			r.thinking += strings.Join(thinking, "")
		} else {
			r.text += c.Str
		}
		r.refusal += m.Get("refusal").Str
		if rc := m.Get("reasoning_content").Str; rc != "" {
			r.reasoning += rc
		} else {
			r.reasoning += m.Get("reasoning").Str
		}
	}
	if !stream {
		read(gjson.Get(body, "choices.0.message"))
		return r
	}
	for _, c := range streamChunks(body) {
		read(gjson.Get(c, "choices.0.delta"))
	}
	return r
}

// memberRound answers one round whose message (or the delta after the
// role's, which the capture's text scan reads when it can) holds the
// members (raw JSON members, comma-separated), with the tool calls
// (createOrderCall's shape, "" for none).
func memberRound(stream bool, members, calls, finish string) http.HandlerFunc {
	return endedRound(stream, []string{
		roundChunk + `[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}` + "\n\n",
		roundChunk + `[{"index":0,"delta":{` + members + `},"finish_reason":null}]}` + "\n\n"},
		`{"role":"assistant",`+members, calls, finish)
}

// TestPaymentTurnSameAnswerStreamedOrNot: a turn of a payment round and
// the model's last round reads the same to a bot, streamed or not (SPEC 3):
// the rounds' text with the break between them, every round's thinking,
// refusal and reasoning.
func TestPaymentTurnSameAnswerStreamedOrNot(t *testing.T) {
	const thinking = `{"type":"thinking","thinking":[{"type":"text","text":"The user wants premium."}]}`
	for _, tc := range []struct {
		name, first, last string
		want              botRead
		// sentReasoning: the payment round's reasoning on the assistant
		// message that goes back to the provider ("" to leave unchecked).
		sentReasoning string
	}{
		{"the last round's text as parts", `"content":"好的，马上为您下单。"`, `"content":[{"type":"text","text":"Your order is ready."}]`,
			botRead{text: "好的，马上为您下单。\n\nYour order is ready."}, ""},
		// The break goes before the round's text, not its first part: a
		// "thinking" block first, or an empty text part, leaves it for the
		// text after; text that starts with white space takes none.
		{"the last round's parts, thinking first", `"content":"好的，马上为您下单。"`, `"content":[` + thinking + `,{"type":"text","text":"Your order is ready."}]`,
			botRead{text: "好的，马上为您下单。\n\nYour order is ready.", thinking: "The user wants premium."}, ""},
		{"the last round's parts, an empty text part first", `"content":"Let me order that."`, `"content":[{"type":"text","text":""},{"type":"text","text":"Your order is ready."}]`,
			botRead{text: "Let me order that.\n\nYour order is ready."}, ""},
		{"the last round's parts, white space first", `"content":"Let me order that."`, `"content":[{"type":"text","text":" Your order is ready."}]`,
			botRead{text: "Let me order that. Your order is ready."}, ""},
		{"the last round's parts, an empty text part, then a line break", `"content":"Let me order that."`, `"content":[{"type":"text","text":""},{"type":"text","text":"\nYour order is ready."}]`,
			botRead{text: "Let me order that.\nYour order is ready."}, ""},
		{"the last round's parts, another type's text member first", `"content":"Let me order that."`, `"content":[{"type":"reference","text":" [1]"},{"type":"text","text":"Your order is ready."}]`,
			botRead{text: "Let me order that.\n\nYour order is ready."}, ""},
		// A payment round of thinking alone said no text: no break after it.
		{"the payment round's thinking alone", `"content":[` + thinking + `]`, `"content":"Your order is ready."`,
			botRead{text: "Your order is ready.", thinking: "The user wants premium."}, ""},
		{"a refusal in the payment round", `"content":"Let me order that.","refusal":"I cannot show the card number."`, `"content":"Your order is ready."`,
			botRead{text: "Let me order that.\n\nYour order is ready.", refusal: "I cannot show the card number."}, ""},
		{"the payment round's thinking, the last round's text a string", `"content":[` + thinking + `,{"type":"text","text":"Let me order that."}]`, `"content":"Your order is ready."`,
			botRead{text: "Let me order that.\n\nYour order is ready.", thinking: "The user wants premium."}, ""},
		{"reasoning beside an empty reasoning_content", `"content":"Let me order that.","reasoning_content":"","reasoning":"Premium it is. "`,
			`"content":"Your order is ready.","reasoning_content":"","reasoning":"Ordered."`,
			botRead{text: "Let me order that.\n\nYour order is ready.", reasoning: "Premium it is. Ordered."}, "Premium it is. "},
		// A number in the delta: the text scan leaves it to the full walk.
		{"reasoning beside an empty reasoning_content, in a delta of the full walk", `"seq":1,"content":"Let me order that.","reasoning_content":"","reasoning":"Premium it is. "`,
			`"seq":2,"content":"Your order is ready.","reasoning_content":"","reasoning":"Ordered."`,
			botRead{text: "Let me order that.\n\nYour order is ready.", reasoning: "Premium it is. Ordered."}, "Premium it is. "},
	} {
		for _, stream := range []bool{false, true} {
			name := tc.name + map[bool]string{false: ", non-stream", true: ", stream"}[stream]
			t.Run(name, func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(memberRound(stream, tc.first, createOrderCall, "tool_calls"), memberRound(stream, tc.last, "", "stop")))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
				if got := readBot(stream, body); got != tc.want {
					t.Errorf("the bot read %+v; want %+v:\n%s", got, tc.want, body)
				}
				if reqs := fp.requests(); tc.sentReasoning != "" && len(reqs) == 2 {
					asst := gjson.Parse(assistantToolMessage(reqs[1].Body))
					if got := asst.Get("reasoning").Str + asst.Get("reasoning_content").Str; got != tc.sentReasoning {
						t.Errorf("the payment round went back with reasoning %q; want %q: %s", got, tc.sentReasoning, asst.Raw)
					}
				}
			})
		}
	}
}
