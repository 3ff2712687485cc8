package proxy

import (
	"net/http"
	"testing"
)

// TestStreamAnnotationsBesideTheirTextPlacedInTheTurnsText: a later
// round's citations that come in the delta that carries its text (the
// one delta of a whole chat.completion a provider that ignored "stream":
// true answered with, failover's completionEvents; a provider that sends
// its message in one delta) are placed in the turn's text as those in a
// delta of their own are: after the earlier rounds' text and the break
// before this round's. The break was counted only once the delta's text
// was read, after its annotations had been moved, and each citation
// reached the bot two characters early ("e plan pa" for "plan page"); so
// did those of a delta of their own that came before the round's text.
func TestStreamAnnotationsBesideTheirTextPlacedInTheTurnsText(t *testing.T) {
	const text = "Your order is ready: see the plan page."
	q := `"Your order is ready: see the plan page."`
	const anns = `[{"type":"url_citation","url_citation":{"end_index":38,"start_index":29,"title":"t","url":"https://example.com/29"}}]`
	// The same citation in the text with a space before it.
	const spacedAnns = `[{"type":"url_citation","url_citation":{"end_index":39,"start_index":30,"title":"t","url":"https://example.com/30"}}]`
	for _, tc := range []struct {
		name  string
		later http.HandlerFunc
	}{
		{"a whole completion answering the stream", citedRound(false, text, "", "stop", "plan page")},
		{"text and annotations in one delta", sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","content":`+q+`,"annotations":`+anns+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")},
		{"annotations before the text in one delta", sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","annotations":`+anns+`,"content":`+q+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")},
		{"a second choice after the first in the chunk", sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","content":`+q+`,"annotations":`+anns+`},"finish_reason":null},{"index":1,"delta":{"role":"assistant","content":"Other."},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")},
		// The break is counted where the round's text starts, which a
		// delta of annotations alone may come before, and once only.
		{"annotations in a delta of their own before the text", sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","annotations":`+anns+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{"content":`+q+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")},
		{"annotations beside the text's second piece", sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"Your order is ready: "},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{"content":"see the plan page.","annotations":`+anns+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")},
		// A text that starts with white space gets no break.
		{"a text that starts with a space, its annotations beside it", sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","content":" `+q[1:]+`,"annotations":`+spacedAnns+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")},
		{"a text that starts with a space, its annotations before it", sseHandler(
			roundChunk+`[{"index":0,"delta":{"role":"assistant","annotations":`+spacedAnns+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{"content":" `+q[1:]+`},"finish_reason":null}]}`+"\n\n",
			roundChunk+`[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(citedRound(true, "好的，马上为您下单。", createOrderCall, "tool_calls"), tc.later))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			if cited, content := streamCitations(t, body); len(cited) != 1 || cited[0] != "plan page" {
				t.Errorf("the annotations place %q in %q; want [\"plan page\"]", cited, content)
			}
		})
	}
}
