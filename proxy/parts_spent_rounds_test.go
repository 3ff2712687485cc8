package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestNonStreamPartsTurnSpentKeepsItsParts: a Mistral reasoning model
// answers every round with content parts, a "thinking" block and its
// words; a non-stream turn whose rounds are spent on payment calls ends
// with the clarification after the rounds' text, and its content stays
// parts: every round's thinking, then the text, then the clarification as
// a text part, as the answer of a turn that ends well keeps them
// (TestNonStreamPartsAnswerKeepsEarlierThinking) and a streaming bot
// reads them. The answer's content was made a string of the text parts
// and the clarification, every round's thinking lost.
func TestNonStreamPartsTurnSpentKeepsItsParts(t *testing.T) {
	fp := newFakeProvider(t, jsonHandler(200, mistralPaymentAnswer))
	url := toolsProxy(t, fp.URL, &recordingTools{}, mistralTarget)
	body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(false, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
	rounds := len(fp.requests())
	content := gjson.Get(body, "choices.0.message.content")
	if !content.IsArray() {
		t.Fatalf("the content is %s; want the rounds' parts: %s", content.Raw, body)
	}
	text, thinking := contentParts(content)
	said := strings.Repeat("Let me order that.\n\n", rounds)
	if got, want := strings.Join(text, ""), said+config.DefaultClarification; got != want {
		t.Errorf("the text parts read %q; want %q", got, want)
	}
	if got, want := len(thinking), rounds; got != want {
		t.Errorf("%d thinking parts (%q); want one a round, %d", got, thinking, want)
	}
}
