package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonstr"
)

// citedRound answers one round as OpenAI's and OpenRouter's web search
// do: its text, then url_citation annotations placing each of cites (words
// of text) by its offsets in characters of this round's text, its tool
// calls (createOrderCall's shape, "" for none) and its finish; streamed,
// the annotations in a delta of their own, or as a chat.completion.
func citedRound(stream bool, text, calls, finish string, cites ...string) http.HandlerFunc {
	var ann []string
	for _, c := range cites {
		i := utf8.RuneCountInString(text[:strings.Index(text, c)])
		ann = append(ann, fmt.Sprintf(`{"type":"url_citation","url_citation":{"end_index":%d,"start_index":%d,"title":"t","url":"https://example.com/%d"}}`,
			i+utf8.RuneCountInString(c), i, i))
	}
	anns := "[" + strings.Join(ann, ",") + "]"
	q := string(jsonstr.Append(nil, text))
	return endedRound(stream, []string{
		roundChunk + `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n",
		roundChunk + `[{"index":0,"delta":{"content":` + q + `},"finish_reason":null}]}` + "\n\n",
		roundChunk + `[{"index":0,"delta":{"annotations":` + anns + `},"finish_reason":null}]}` + "\n\n",
	}, `{"role":"assistant","content":`+q+`,"refusal":null,"annotations":`+anns, calls, finish)
}

// TestAnnotationsPlacedInTheTurnsText: a citation a later round makes is
// placed, by the provider, in that round's text; the bot reads it in the
// turn's, after the earlier rounds' text and the break between them, and
// took it to another place in its content ("好的" where the round cited
// "plan page"). Each annotation the bot gets spells, in its content, the
// words its round cited, counted in characters (the first round's text is
// Chinese: more bytes than characters). Streamed, they all come in one
// delta, as OpenAI sends them: openai-python's stream helper raises
// "Expected list delta entry to have an `index` key" on a second
// annotations delta, and openai-node's keeps the last one alone.
func TestAnnotationsPlacedInTheTurnsText(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(
				citedRound(stream, "好的，马上为您下单。", createOrderCall, "tool_calls", "下单"),
				citedRound(stream, "Your order is ready: see the plan page.", "", "stop", "plan page", "order"),
			))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			content := []rune(answerText(stream, body))
			var anns []gjson.Result
			if stream {
				deltas := 0
				for _, c := range streamChunks(body) {
					if a := gjson.Get(c, "choices.0.delta.annotations").Array(); len(a) > 0 {
						anns = append(anns, a...)
						deltas++
					}
				}
				if deltas != 1 {
					t.Errorf("the annotations came in %d deltas; want them all in one, as OpenAI sends them", deltas)
				}
			} else {
				anns = gjson.Get(body, "choices.0.message.annotations").Array()
			}
			var cited []string
			for _, a := range anns {
				i, j := int(a.Get("url_citation.start_index").Int()), int(a.Get("url_citation.end_index").Int())
				if i < 0 || i > j || j > len(content) {
					t.Fatalf("annotation %s outside the content %q", a.Raw, string(content))
				}
				cited = append(cited, string(content[i:j]))
			}
			if want := []string{"下单", "plan page", "order"}; fmt.Sprint(cited) != fmt.Sprint(want) {
				t.Errorf("the annotations place %q in %q; want %q", cited, string(content), want)
			}
		})
	}
}

// TestRecoveredAnnotationsPlacedInTheAnswer: a stream cut mid-answer and
// answered afresh by another provider, which repeats the text the client
// already has (skipped) and places its citations in the whole answer:
// they are the client's as they are, not moved by the text of the cut
// attempt. A stream cut after its citations (OpenAI sends them last,
// before its finish chunk) and continued elsewhere from the text the
// client has: the cut attempt's citations, held for the turn's end, still
// reach the client, as they did when they went out where they came. On
// the plain path and on a payment turn.
func TestRecoveredAnnotationsPlacedInTheAnswer(t *testing.T) {
	const c = `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":`
	for _, tc := range []struct {
		name         string
		first, other http.HandlerFunc
		prefill      bool
	}{
		{"answered afresh", sseHandler(c + `[{"index":0,"delta":{"role":"assistant","content":"Your order"},"finish_reason":null}]}` + "\n\n"),
			citedRound(true, "Your order is ready: see the plan page.", "", "stop", "plan page"), false},
		{"continued after its citations", sseHandler(
			c+`[{"index":0,"delta":{"role":"assistant","content":"Your order is ready: see the plan page."},"finish_reason":null}]}`+"\n\n",
			c+`[{"index":0,"delta":{"annotations":[{"type":"url_citation","url_citation":{"end_index":38,"start_index":29,"title":"t","url":"https://example.com/29"}}]},"finish_reason":null}]}`+"\n\n"),
			sseHandler(c+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}`+"\n\n", "data: [DONE]\n\n"), true},
	} {
		for _, turn := range []bool{false, true} {
			t.Run(fmt.Sprint(tc.name, "/payment turn=", turn), func(t *testing.T) {
				// first ends where its events do: its connection closes
				// without a finish_reason.
				first, other := newFakeProvider(t, tc.first), newFakeProvider(t, tc.other)
				url, hdr := afterFinishURL(t, testConfig(t, first.URL, func(cfg *config.Config) {
					withSecondProvider(other.URL)(cfg)
					if tc.prefill {
						cfg.Providers[1].Continuation = "prefill"
					}
				}), turn, queryTools{})
				body := readAll(t, post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr).Body)
				cited, content := streamCitations(t, body)
				if fmt.Sprint(cited) != "[plan page]" {
					t.Errorf("the annotations place %q in %q; want [plan page]:\n%s", cited, content, body)
				}
			})
		}
	}
}

// streamCitations is what each url_citation of a stream's annotation
// deltas places in the stream's text (content), in order; it fails the
// test on one outside it.
func streamCitations(t *testing.T, body string) (cited []string, content string) {
	t.Helper()
	text := []rune(streamText(body))
	for _, ch := range streamChunks(body) {
		for _, a := range gjson.Get(ch, "choices.0.delta.annotations").Array() {
			i, j := int(a.Get("url_citation.start_index").Int()), int(a.Get("url_citation.end_index").Int())
			if i < 0 || i > j || j > len(text) {
				t.Fatalf("annotation %s outside the content %q", a.Raw, string(text))
			}
			cited = append(cited, string(text[i:j]))
		}
	}
	return cited, string(text)
}
