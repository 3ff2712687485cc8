package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/jsonstr"
)

// answerRefusal is the refusal the bot read of a turn's answer: the
// message's, or the stream's refusal deltas joined.
func answerRefusal(stream bool, body string) string {
	if !stream {
		return gjson.Get(body, "choices.0.message.refusal").Str
	}
	var b strings.Builder
	for _, c := range streamChunks(body) {
		b.WriteString(gjson.Get(c, "choices.0.delta.refusal").Str)
	}
	return b.String()
}

// TestJSONModeClarificationIsJSON: a bot that asked for a JSON object
// (response_format json_object) gets the clarification that ends a turn
// whose rounds are spent as a JSON object, {"clarification": "<sentence>"}:
// the content it parses is JSON, streamed or not. A bot that asked for a
// json_schema, whose SDK parses the content against the schema, gets it as
// the message's refusal, as OpenAI refuses to fill a schema, and no content
// of paygate's. Where the rounds said something before it, their text comes
// first in a stream, as paragraphs, as in a turn without JSON mode: a
// streaming bot already read it. Not streamed, the content is one JSON
// document (TestJSONModeNonStreamAnswerIsOneDocument): the clarification
// alone, or null beside the refusal.
func TestJSONModeClarificationIsJSON(t *testing.T) {
	clar := `{"clarification":` + string(jsonstr.Append(nil, config.DefaultClarification)) + `}`
	const schema = `{"type":"json_schema","json_schema":{"name":"reply","strict":true,"schema":{"type":"object","properties":{"reply":{"type":"string"}},"required":["reply"],"additionalProperties":false}}}`
	for _, tc := range []struct {
		name, format             string
		round                    func(stream bool) http.HandlerFunc
		want, nonStream, refusal string // nonStream: the content not streamed
	}{
		{"json_object", `{"type":"json_object"}`, func(stream bool) http.HandlerFunc { return callsRound(stream, createOrderCall) }, clar, clar, ""},
		{"json_schema", schema,
			func(stream bool) http.HandlerFunc { return callsRound(stream, createOrderCall) }, "", "", config.DefaultClarification},
		{"json_object after the rounds' text", `{"type":"json_object"}`,
			func(stream bool) http.HandlerFunc { return wordsRound(stream, "On it.", createOrderCall, "tool_calls") },
			"On it.\n\nOn it.\n\nOn it.\n\n" + clar, clar, ""},
		{"json_schema after the rounds' text", schema,
			func(stream bool) http.HandlerFunc { return wordsRound(stream, "On it.", createOrderCall, "tool_calls") },
			"On it.\n\nOn it.\n\nOn it.", "", config.DefaultClarification},
		// Each round's refusal, the last payment round's too, before the
		// clarification, as a streaming bot's SDK joins the deltas.
		{"json_schema after the rounds' refusals", schema,
			func(stream bool) http.HandlerFunc {
				return memberRound(stream, `"refusal":"No. "`, createOrderCall, "tool_calls")
			},
			"", "", "No. No. No. " + config.DefaultClarification},
	} {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				fp := newFakeProvider(t, tc.round(stream)) // every round calls create_order
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, `"response_format":`+tc.format+`,`), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				got, want := answerText(stream, body), tc.want
				if !stream {
					want = tc.nonStream
				}
				if got != want {
					t.Errorf("the bot read %q; want %q", got, want)
				}
				if r := answerRefusal(stream, body); r != tc.refusal {
					t.Errorf("the bot read the refusal %q; want %q", r, tc.refusal)
				}
				if !stream && want == "" && gjson.Get(body, "choices.0.message.content").Type != gjson.Null {
					t.Errorf("content %s; want null beside the refusal", gjson.Get(body, "choices.0.message.content").Raw)
				}
				if want == clar {
					var v map[string]string
					if err := json.Unmarshal([]byte(got), &v); err != nil || v["clarification"] != config.DefaultClarification {
						t.Errorf("content %q is not the clarification as a JSON object: %v", got, err)
					}
				}
			})
		}
	}
}

// docRound answers one non-stream round whose text is doc ("" for none),
// with logprobs that spell it, and the tool calls calls (createOrderCall's
// shape, "" for none).
func docRound(doc, calls, finish string) http.HandlerFunc {
	content, lp := "null", "null"
	if doc != "" {
		content = string(jsonstr.Append(nil, doc))
		lp = `{"content":[{"token":` + content + `,"logprob":-0.1,"bytes":null,"top_logprobs":[]}],"refusal":null}`
	}
	msg := `{"role":"assistant","content":` + content
	if calls != "" {
		msg += `,"tool_calls":` + calls
	}
	return jsonHandler(200, `{"id":"r","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":`+msg+`}`+
		`,"logprobs":`+lp+`,"finish_reason":"`+finish+`"}]}`)
}

// TestJSONModeNonStreamAnswerIsOneDocument: a bot that asked for JSON
// (response_format json_object or json_schema) parses the content of a
// non-streamed answer as one JSON document, and a model in JSON mode
// writes one in each round, the payment round too. The answer joined every
// round's text, as a stream carries it (SPEC 3.5: there each round's text
// reaches the bot as it comes), so the bot got two documents and a break,
// which JSON.parse and the SDKs' parse() refuse ("Unexpected non-whitespace
// character after JSON"). Non-streamed, the content is the last round's
// text that is not empty, with its logprobs and citations alone; a turn
// whose rounds are spent ends with the clarification alone (json_object)
// or as the refusal, content null (json_schema). Streamed, every round's
// text, as it came.
func TestJSONModeNonStreamAnswerIsOneDocument(t *testing.T) {
	const (
		first  = `{"reply":"Let me order it."}`
		second = `{"reply":"Your order is ready."}`
		schema = `{"type":"json_schema","json_schema":{"name":"reply","strict":true,"schema":{"type":"object","properties":{"reply":{"type":"string"}},"required":["reply"],"additionalProperties":false}}}`
	)
	clar := `{"clarification":` + string(jsonstr.Append(nil, config.DefaultClarification)) + `}`
	for _, format := range []string{`{"type":"json_object"}`, schema} {
		isSchema := format == schema
		spent, spentRefusal := clar, ""
		if isSchema {
			spent, spentRefusal = "", config.DefaultClarification
		}
		for _, tc := range []struct {
			name          string
			rounds        []http.HandlerFunc
			want, refusal string
			cited         []string // the words the answer's citations place
		}{
			{"two rounds' documents", []http.HandlerFunc{docRound(first, createOrderCall, "tool_calls"), docRound(second, "", "stop")}, second, "", nil},
			{"the last round silent", []http.HandlerFunc{docRound(first, createOrderCall, "tool_calls"), docRound("", "", "stop")}, first, "", nil},
			{"rounds spent", []http.HandlerFunc{docRound(first, createOrderCall, "tool_calls")}, spent, spentRefusal, nil},
			// A Mistral reasoning model's rounds, each a thinking part and
			// its document: the clarification alone still, not the
			// rounds' parts with it after their documents.
			{"rounds spent, content parts", []http.HandlerFunc{jsonHandler(200, `{"id":"r","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant",`+
				`"content":[{"type":"thinking","thinking":[{"type":"text","text":"Order it."}]},{"type":"text","text":`+string(jsonstr.Append(nil, first))+`}],`+
				`"tool_calls":`+createOrderCall+`},"finish_reason":"tool_calls"}]}`)}, spent, spentRefusal, nil},
			{"citations", []http.HandlerFunc{citedRound(false, first, createOrderCall, "tool_calls", "order"), citedRound(false, second, "", "stop", "ready")},
				second, "", []string{"ready"}},
		} {
			t.Run(fmt.Sprintf("%s, schema %v", tc.name, isSchema), func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(tc.rounds...))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(false, `"logprobs":true,"response_format":`+format+`,`),
					map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
				msg := gjson.Get(body, "choices.0.message")
				if got := msg.Get("content"); got.Str != tc.want || tc.want == "" && got.Type != gjson.Null {
					t.Fatalf("the bot read the content %s; want %q", got.Raw, tc.want)
				}
				if tc.want != "" && !json.Valid([]byte(tc.want)) {
					t.Fatalf("content %q is not one JSON document", tc.want)
				}
				if r := msg.Get("refusal").Str; r != tc.refusal {
					t.Errorf("refusal %q; want %q", r, tc.refusal)
				}
				var toks strings.Builder
				for _, tok := range gjson.Get(body, "choices.0.logprobs.content.#.token").Array() {
					toks.WriteString(tok.Str)
				}
				if tc.cited == nil && toks.String() != strings.TrimPrefix(tc.want, clar) {
					t.Errorf("logprobs spell %q; want the content's %q", toks.String(), tc.want)
				}
				content := []rune(msg.Get("content").Str)
				var cited []string
				for _, a := range msg.Get("annotations").Array() {
					i, j := int(a.Get("url_citation.start_index").Int()), int(a.Get("url_citation.end_index").Int())
					if i < 0 || i > j || j > len(content) {
						t.Fatalf("annotation %s outside the content %q", a.Raw, string(content))
					}
					cited = append(cited, string(content[i:j]))
				}
				if fmt.Sprint(cited) != fmt.Sprint(tc.cited) && (len(cited) > 0 || tc.cited != nil) {
					t.Errorf("the citations place %q; want %q", cited, tc.cited)
				}
			})
		}
	}
	t.Run("streamed, every round's text", func(t *testing.T) {
		fp := newFakeProvider(t, roundByRound(wordsRound(true, first, createOrderCall, "tool_calls"), wordsRound(true, second, "", "stop")))
		url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
		body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, `"response_format":{"type":"json_object"},`),
			map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
		if got := answerText(true, body); got != first+"\n\n"+second {
			t.Errorf("the streaming bot read %q; want both rounds' text, as it came", got)
		}
	})
}

// FuzzResponseFormatAsPath holds the turn's read of response_format's type
// (from the member ReadChat located) to gjson's "response_format.type" over
// the body, which it replaced, wherever ReadChat takes the body (a repeat
// or an other-case name it refuses): a copy without a type, an escaped
// name, one nested in a message or a tool.
func FuzzResponseFormatAsPath(f *testing.F) {
	for _, rf := range []string{
		``,
		`"response_format":{"type":"json_object"},`,
		`"response_format":null,"response_format":{"type":"json_object"},`,
		`"response_format":{},"response_format":{"type":"json_schema"},`,
		`"response_format":[{"type":"json_object"}],"response_format":{"type":"json_schema"},`,
		`"response_format":{"type":"text"},"response_format":{"type":"json_object"},`,
		`"response_format":{"type":{"type":"json_object"}},`,
		`"respons\u0065_format":{"typ\u0065":"json_schema"},`,
		`"Response_Format":{"type":"json_object"},`,
		`"metadata":{"response_format":{"type":"json_object"}},`,
		`"tools":[{"type":"function","function":{"name":"response_format","parameters":{"type":"json_object"}}}],`,
	} {
		f.Add(`{` + rf + `"model":"m","messages":[{"role":"user","content":"hi","response_format":{"type":"json_schema"}}]}`)
	}
	f.Fuzz(func(t *testing.T, body string) {
		chat, err := interceptors.ReadChat([]byte(body))
		if err != nil {
			return
		}
		tt := &turn{chat: chat, body: []byte(body)}
		if got, want := tt.responseFormat(), gjson.Get(body, "response_format.type").Str; got != want {
			t.Fatalf("%s: the turn reads response_format's type %q; gjson's path read %q", body, got, want)
		}
	})
}
