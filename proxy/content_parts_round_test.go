package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// mistralPaymentParts is a Mistral reasoning model's content beside a
// payment call: its thinking block and its words.
const mistralPaymentParts = `[{"type":"thinking","thinking":[{"type":"text","text":"The user wants premium."}]},{"type":"text","text":"Let me order that."}]`

// mistralPaymentAnswer is a non-stream Mistral answer of a payment round:
// a create_order call beside mistralPaymentParts.
const mistralPaymentAnswer = `{"id":"m1","object":"chat.completion","created":1,"model":"magistral-medium-2509","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"AbCdE1234","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"},"index":0}],"content":` + mistralPaymentParts + `},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`

// TestPaymentRoundContentPartsKept: Mistral's reasoning models (Magistral;
// Mistral Small and Medium with reasoning_effort) answer a message whose
// content is a list of blocks, a "thinking" block and "text" blocks,
// beside the tool calls (https://docs.mistral.ai/resources/cookbooks/mistral-reasoning).
// A non-stream payment round of such an answer lost both: the bot never
// read the round's text ("Let me order that."), and the next round's
// assistant message went to Mistral with content null, without the
// model's own thinking and words, which Mistral takes back as the blocks
// it sent.
func TestPaymentRoundContentPartsKept(t *testing.T) {
	fp := newFakeProvider(t, roundByRound(
		jsonHandler(200, mistralPaymentAnswer),
		textRound(false, "Your order is ready.")))
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, mistralTarget)
	body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(false, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
	// The last round's text as a part after the payment round's, whose
	// thinking a streaming bot reads too (TestPaymentTurnSameAnswerStreamedOrNot).
	text, thinking := contentParts(gjson.Get(body, "choices.0.message.content"))
	if got := strings.Join(text, ""); got != "Let me order that.\n\nYour order is ready." {
		t.Errorf("the bot read %q; want both rounds' text: %s", got, body)
	}
	if got := strings.Join(thinking, ""); got != "The user wants premium." {
		t.Errorf("the bot read the thinking %q; want the payment round's: %s", got, body)
	}
	reqs := fp.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d upstream requests; want 2", len(reqs))
	}
	asst := gjson.GetBytes(reqs[1].Body, `messages.#(role=="assistant")`)
	if got := asst.Get("content").Raw; got != mistralPaymentParts {
		t.Errorf("the next round's assistant message has content %s; want the blocks Mistral sent, %s", got, mistralPaymentParts)
	}
	// The call under paygate's id (call_pg_1_0), in Mistral's form.
	if id := asst.Get("tool_calls.0.id").Str; len(id) != 9 || !gjson.GetBytes(reqs[1].Body, `messages.#(tool_call_id=="`+id+`")`).Exists() {
		t.Errorf("assistant message %s; want the call, under an id of Mistral's form that its result names", asst.Raw)
	}
}

// TestStreamedPaymentRoundContentPartsKept: streamed, Mistral's reasoning
// models send their thinking as content parts, a piece per delta, and
// their words as text (https://github.com/BerriAI/litellm/issues/16272
// shows magistral-medium-2509's stream). The next round's assistant
// message went back with the words alone, the model's thinking dropped;
// it now carries the round as Mistral's non-stream answer would: one
// thinking block and the text.
func TestStreamedPaymentRoundContentPartsKept(t *testing.T) {
	head := `data: {"id":"c3c7","object":"chat.completion.chunk","created":1762355135,"model":"magistral-medium-2509","choices":[{"index":0,"delta":`
	fp := newFakeProvider(t, roundByRound(
		sseHandler(
			head+`{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n",
			head+`{"content":[{"type":"thinking","thinking":[{"type":"text","text":"The user wants "}]}]},"finish_reason":null}]}`+"\n\n",
			head+`{"content":[{"type":"thinking","thinking":[{"type":"text","text":"premium."}]}]},"finish_reason":null}]}`+"\n\n",
			head+`{"content":"Let me "},"finish_reason":null}]}`+"\n\n",
			head+`{"content":"order that."},"finish_reason":null}]}`+"\n\n",
			head+`{"tool_calls":[{"id":"AbCdE1234","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"},"index":0}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"total_tokens":3,"completion_tokens":2}}`+"\n\n",
			"data: [DONE]\n\n"),
		textRound(true, "Your order is ready.")))
	tools := &recordingTools{}
	url := toolsProxy(t, fp.URL, tools, mistralTarget)
	body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
	if got := streamText(body); got != "Let me order that.\n\nYour order is ready." {
		t.Errorf("the bot read %q", got)
	}
	reqs := fp.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d upstream requests; want 2", len(reqs))
	}
	const want = `[{"type":"thinking","thinking":[{"type":"text","text":"The user wants premium."}]},{"type":"text","text":"Let me order that."}]`
	if got := gjson.GetBytes(reqs[1].Body, `messages.#(role=="assistant").content`).Raw; got != want {
		t.Errorf("the next round's assistant message has content %s; want %s", got, want)
	}
}

// mistralTarget makes gpt-test's target one of Mistral's reasoning models,
// which takes its thinking blocks back (other targets get the text alone:
// TestMistralContentPartsAfterFailover).
func mistralTarget(c *config.Config) { c.Models[0].Targets[0].Model = "magistral-medium-2509" }
