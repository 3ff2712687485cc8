package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestNonStreamPartsAnswerBreaksAfterEarlierText: the last round of a
// non-stream turn answers with content parts whose first is not text (a
// Mistral reasoning model's "thinking" block before its words): the
// earlier round's text, put before them as a first text part, is followed
// by the paragraph break a string content gets, as the bot joins the text
// parts into one text. The break was judged against the first part only,
// and a thinking part first left "Let me check order X1.It is paid.".
func TestNonStreamPartsAnswerBreaksAfterEarlierText(t *testing.T) {
	const r0 = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Let me check order X1.","tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	for _, tc := range []struct{ name, parts, want string }{
		{"text first", `[{"type":"text","text":"It is paid."}]`, "Let me check order X1.\n\nIt is paid."},
		{"thinking first", `[{"type":"thinking","thinking":[{"type":"text","text":"Paid."}]},{"type":"text","text":"It is paid."}]`, "Let me check order X1.\n\nIt is paid."},
		{"thinking alone: no break after the earlier text", `[{"type":"thinking","thinking":[{"type":"text","text":"Paid."}]}]`, "Let me check order X1."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, scriptedAnswers(r0, `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":`+tc.parts+`},"finish_reason":"stop"}]}`))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			got := ""
			gjson.Get(body, "choices.0.message.content").ForEach(func(_, p gjson.Result) bool {
				if p.Get("type").Str == "text" {
					got += p.Get("text").Str
				}
				return true
			})
			if got != tc.want {
				t.Errorf("the text parts read %q; want %q: %s", got, tc.want, body)
			}
		})
	}
}

// TestNonStreamPartsAnswerMovesAnnotations: the last round's citations,
// counted in its own text, move past the earlier rounds' text and the
// break before it when its content is parts, as they do when it is a
// string: the bot reads them in the text of the parts joined.
func TestNonStreamPartsAnswerMovesAnnotations(t *testing.T) {
	const r0 = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	const ann = `"annotations":[{"type":"url_citation","url_citation":{"start_index":0,"end_index":3,"url":"https://example.com/a","title":"A"}}]`
	for _, tc := range []struct{ name, content string }{
		{"string", `"See ref."`},
		{"parts", `[{"type":"text","text":"See ref."}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, scriptedAnswers(r0, `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":`+tc.content+`,`+ann+`},"finish_reason":"stop"}]}`))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			// "Let me check." and the break "\n\n": 15 characters before "See".
			c := gjson.Get(body, "choices.0.message.annotations.0.url_citation")
			if c.Get("start_index").Int() != 15 || c.Get("end_index").Int() != 18 {
				t.Errorf("citation %s; want start_index 15, end_index 18: %s", c.Raw, body)
			}
		})
	}
}

// TestNonStreamPartsAnswerKeepsEarlierThinking: a Mistral reasoning model
// gives every round's content as parts, its "thinking" block first; the
// one answer carries the payment round's parts too, before the last
// round's, as a streaming bot reads every round's (the stream relays
// content parts as they come). Only the payment round's text went in, its
// thinking lost; a payment round that gave thinking alone lost it whole.
// The text parts read the rounds' text joined, as before.
func TestNonStreamPartsAnswerKeepsEarlierThinking(t *testing.T) {
	const last = `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"Paid."}]},{"type":"text","text":"It is paid."}]},"finish_reason":"stop"}]}`
	for _, tc := range []struct{ name, parts, wantText string }{
		{"thinking and text", `[{"type":"thinking","thinking":[{"type":"text","text":"Look X1 up."}]},{"type":"text","text":"Let me check order X1."}]`, "Let me check order X1.\n\nIt is paid."},
		{"thinking alone", `[{"type":"thinking","thinking":[{"type":"text","text":"Look X1 up."}]}]`, "It is paid."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r0 := `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` + tc.parts + `,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
			fp := newFakeProvider(t, scriptedAnswers(r0, last))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			text, thinking := contentParts(gjson.Get(body, "choices.0.message.content"))
			if got := strings.Join(text, ""); got != tc.wantText {
				t.Errorf("the text parts read %q; want %q: %s", got, tc.wantText, body)
			}
			if got, want := strings.Join(thinking, "|"), "Look X1 up.|Paid."; got != want {
				t.Errorf("the thinking parts read %q; want %q: %s", got, want, body)
			}
		})
	}
}

// contentParts is the text of each "text" part and of each "thinking"
// part's first block of a content given as parts, in order.
func contentParts(content gjson.Result) (text, thinking []string) {
	content.ForEach(func(_, p gjson.Result) bool {
		switch p.Get("type").Str {
		case "text":
			text = append(text, p.Get("text").Str)
		case "thinking":
			thinking = append(thinking, p.Get("thinking.0.text").Str)
		}
		return true
	})
	return text, thinking
}
