package proxy

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"
)

// scriptedAnswers answers the n-th request with bodies[n] (the last one
// again after that).
func scriptedAnswers(bodies ...string) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(bodies)-1)
		jsonHandler(200, bodies[i])(w, r)
	}
}

// TestNonStreamAnswerCarriesEveryRoundsText: the one chat.completion of a
// multi-round turn says what a streaming client reads: the text the model
// wrote before its payment call, then the rest (a content of parts keeps
// its parts, after a text part with the earlier text); and with the bot's
// own tool call, finish_reason "tool_calls" when the provider (Gemini) ends
// the round with "stop", but "length" as it came: the call may be cut.
// Its paygate object holds "actions" even when empty.
func TestNonStreamAnswerCarriesEveryRoundsText(t *testing.T) {
	const r0 = `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Let me check order X1. ","tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	tests := []struct {
		name, last, wantContent, wantFinish string
	}{
		{"words", `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"It is paid."},"finish_reason":"stop"}]}`,
			"Let me check order X1. It is paid.", "stop"},
		{"the bot's own call, ended with stop", `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"And the weather:","tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]},"finish_reason":"stop"}]}`,
			"Let me check order X1. And the weather:", "tool_calls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, scriptedAnswers(r0, tc.last))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`+
				`"messages":[{"role":"user","content":"is X1 paid?"}]}`, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if got := gjson.Get(body, "choices.0.message.content").Str; got != tc.wantContent {
				t.Errorf("content %q; want %q", got, tc.wantContent)
			}
			if got := gjson.Get(body, "choices.0.finish_reason").Str; got != tc.wantFinish {
				t.Errorf("finish_reason %q; want %q", got, tc.wantFinish)
			}
			// Two rounds and no payment action: paygate names the rounds,
			// and its actions are there, empty, for a bot that walks them.
			if got := gjson.Get(body, "paygate.actions").Raw; got != "[]" || gjson.Get(body, "paygate.rounds.#").Int() != 2 {
				t.Errorf("paygate %s; want actions [] and 2 rounds", gjson.Get(body, "paygate").Raw)
			}
		})
	}
	t.Run("the last round's content as parts", func(t *testing.T) {
		fp := newFakeProvider(t, scriptedAnswers(r0, `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"It is paid."}]},"finish_reason":"stop"}]}`))
		url := statefulProxy(t, fp.URL)
		resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
			map[string]string{"X-WeChat-OpenID": "o-user-1"})
		body := readAll(t, resp.Body)
		want := `[{"type":"text","text":"Let me check order X1. "},{"type":"text","text":"It is paid."}]`
		if got := gjson.Get(body, "choices.0.message.content").Raw; got != want {
			t.Errorf("content %s; want %s", got, want)
		}
	})
	for _, tc := range []struct{ name, args, reason, want string }{
		{"one round ending with stop on the bot's call", `{\"city\":\"SH\"}`, "stop", "tool_calls"},
		{"one round cut by max_tokens in the bot's call", `{\"city\":\"Shang`, "length", "length"},
		{"one round stopped by a content filter", `{}`, "content_filter", "content_filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, scriptedAnswers(`{"id":"c1","object":"chat.completion","created":1,"model":"gemini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"`+tc.args+`"}}]},"finish_reason":"`+tc.reason+`"}]}`))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`+
				`"messages":[{"role":"user","content":"weather?"}]}`, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if got := gjson.Get(body, "choices.0.finish_reason").Str; got != tc.want {
				t.Errorf("finish_reason %q; want %q: %s", got, tc.want, body)
			}
			if got := gjson.Get(body, "choices.0.message.content").Raw; got != "null" {
				t.Errorf("content %s; want the provider's null", got)
			}
		})
	}
}

// TestNonStreamAnswerCarriesEveryRoundsReasoning: the reasoning of the
// rounds before a payment call reaches a non-stream bot as a streaming one
// reads it, before the last round's own, under the provider's name for it.
// The answer kept only the last round's.
func TestNonStreamAnswerCarriesEveryRoundsReasoning(t *testing.T) {
	round0 := func(key string) string {
		return `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","` + key + `":"The user asks about X1. ","content":"","tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	}
	tests := []struct{ name, r0, last, key, want string }{
		{"both rounds reason", round0("reasoning_content"),
			`{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":"It is paid.","content":"Yes."},"finish_reason":"stop"}]}`,
			"reasoning_content", "The user asks about X1. It is paid."},
		{"only the payment round reasons", round0("reasoning"),
			`{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Yes."},"finish_reason":"stop"}]}`,
			"reasoning", "The user asks about X1. "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, scriptedAnswers(tc.r0, tc.last))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if got := gjson.Get(body, "choices.0.message."+tc.key).Str; got != tc.want {
				t.Errorf("%s %q; want %q: %s", tc.key, got, tc.want, body)
			}
		})
	}
}

// TestStreamKeepsLengthOnTheBotsCall: a streamed round that ends with the
// bot's own call cut by max_tokens says "length" as the provider did; only
// "stop" (Gemini's end of a tool round) becomes "tool_calls".
func TestStreamKeepsLengthOnTheBotsCall(t *testing.T) {
	for _, tc := range []struct{ reason, want string }{{"stop", "tool_calls"}, {"length", "length"}} {
		t.Run(tc.reason, func(t *testing.T) {
			const c = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":`
			fp := newFakeProvider(t, sseHandler(
				c+`[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Sh"}}]},"finish_reason":null}]}`+"\n\n",
				c+`[{"index":0,"delta":{},"finish_reason":"`+tc.reason+`"}]}`+"\n\n",
				"data: [DONE]\n\n"))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],`+
				`"messages":[{"role":"user","content":"weather?"}]}`, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			got := ""
			for _, line := range strings.Split(readAll(t, resp.Body), "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					if f := gjson.Get(d, "choices.0.finish_reason").Str; f != "" {
						got = f
					}
				}
			}
			if got != tc.want {
				t.Errorf("finish_reason %q; want %q", got, tc.want)
			}
		})
	}
}

// TestNonStreamTurnIdentity: the one chat.completion of a multi-round turn
// goes out under the first round's id and created, as a streaming client
// reads them, and under paygate's fallback id when the first round had
// none: it went out as "" before, an id that SDKs read as none, and with
// the last round's created.
func TestNonStreamTurnIdentity(t *testing.T) {
	const call = `"tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"finish_reason":"tool_calls"}]}`
	const last = `{"id":"c2","object":"chat.completion","created":1700000009,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"It is paid."},"finish_reason":"stop"}]}`
	tests := []struct {
		name, first string
		wantID      func(string) bool
	}{
		{"the first round's id", `{"id":"c1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Checking. ",` + call,
			func(id string) bool { return id == "c1" }},
		{"no id in the first round", `{"object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Checking. ",` + call,
			func(id string) bool { return strings.HasPrefix(id, "chatcmpl-paygate-req_") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, scriptedAnswers(tc.first, last))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if id := gjson.Get(body, "id").Str; !tc.wantID(id) {
				t.Errorf("id %q: %s", id, body)
			}
			if created := gjson.Get(body, "created").Int(); created != 1700000000 {
				t.Errorf("created %d; want the first round's, 1700000000", created)
			}
		})
	}
}

// TestNonStreamAnswerCarriesEveryRoundsArrays: the one chat.completion of a
// multi-round turn carries the logprobs and reasoning_details of every
// round, the earlier rounds' first, as a streaming client reads them (its
// SDK appends each chunk's): it joined every round's text and reasoning but
// kept the last round's arrays, so its logprobs no longer spelled its
// content. A later round's reasoning_details blocks are numbered after
// the earlier rounds', as a streaming client gets them: each round
// numbers its blocks from 0, and two blocks of one index read as one.
func TestNonStreamAnswerCarriesEveryRoundsArrays(t *testing.T) {
	lp := func(toks ...string) string {
		var es []string
		for _, tok := range toks {
			es = append(es, `{"token":"`+tok+`","logprob":-0.5,"bytes":null,"top_logprobs":[]}`)
		}
		return `[` + strings.Join(es, ",") + `]`
	}
	details := func(text string) string { return `[{"type":"reasoning.text","text":"` + text + `","index":0}]` }
	round0 := func(logprobs, message string) string {
		return `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Let me check. "` + message +
			`,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"X1\"}"}}]},"logprobs":` + logprobs + `,"finish_reason":"tool_calls"}]}`
	}
	last := func(logprobs, message string) string {
		return `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"It is paid."` + message + `},"logprobs":` + logprobs + `,"finish_reason":"stop"}]}`
	}
	tests := []struct {
		name, r0, last      string
		wantTokens, refusal string
		wantDetails         string
	}{
		{"logprobs of both rounds",
			round0(`{"content":`+lp("Let", " me", " check. ")+`,"refusal":null}`, ""),
			last(`{"content":`+lp("It", " is", " paid.")+`,"refusal":null}`, ""),
			"Let| me| check. |It| is| paid.", "", ""},
		{"the last round without logprobs",
			round0(`{"content":`+lp("Let", " me", " check. ")+`,"refusal":null}`, ""),
			last(`null`, ""),
			"Let| me| check. ", "", ""},
		{"a refusal after words",
			round0(`{"content":`+lp("Let", " me", " check. ")+`,"refusal":null}`, ""),
			last(`{"content":null,"refusal":`+lp("I", " can't.")+`}`, ""),
			"Let| me| check. ", "I| can't.", ""},
		{"reasoning_details of both rounds",
			round0(`null`, `,"reasoning":"Buy it. ","reasoning_details":`+details("Buy it. ")),
			last(`null`, `,"reasoning":"Tell them.","reasoning_details":`+details("Tell them.")),
			"", "", "0 Buy it. |1 Tell them."},
	}
	join := func(r gjson.Result) string {
		var s []string
		for _, v := range r.Array() {
			s = append(s, v.Str)
		}
		return strings.Join(s, "|")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, scriptedAnswers(tc.r0, tc.last))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","logprobs":true,"messages":[{"role":"user","content":"is X1 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if got := join(gjson.Get(body, "choices.0.logprobs.content.#.token")); got != tc.wantTokens {
				t.Errorf("logprobs.content tokens %q; want %q: %s", got, tc.wantTokens, body)
			}
			if got := join(gjson.Get(body, "choices.0.logprobs.refusal.#.token")); got != tc.refusal {
				t.Errorf("logprobs.refusal tokens %q; want %q", got, tc.refusal)
			}
			var details []string
			for _, d := range gjson.Get(body, "choices.0.message.reasoning_details").Array() {
				details = append(details, d.Get("index").Raw+" "+d.Get("text").Str)
			}
			if got := strings.Join(details, "|"); got != tc.wantDetails {
				t.Errorf("reasoning_details (index and text) %q; want %q", got, tc.wantDetails)
			}
		})
	}
}

// TestPaymentCallIDsMadeUnique: a model that gives two payment calls of
// one round the same id got two tool results of one tool_call_id in the
// next round's request, which strict providers refuse (400), ending the
// turn after its payment steps ran; one that gives none got an assistant
// message naming "" while the results named paygate's ids (a non-stream
// round built the message before the ids were given). Each call's id is
// unique in the round, the same in the assistant message and its result.
func TestPaymentCallIDsMadeUnique(t *testing.T) {
	call := func(id, no string) string {
		return `{"id":"` + id + `","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"` + no + `\"}"}}`
	}
	const r1 = `{"id":"c2","object":"chat.completion","created":2,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Both checked."},"finish_reason":"stop"}]}`
	for _, tc := range []struct{ name, a, b string }{
		{"one id twice", "call_same", "call_same"},
		{"no ids", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r0 := `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
				call(tc.a, "X1") + `,` + call(tc.b, "X2") + `]},"finish_reason":"tool_calls"}]}`
			fp := newFakeProvider(t, scriptedAnswers(r0, r1))
			url := statefulProxy(t, fp.URL)
			resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"are X1 and X2 paid?"}]}`,
				map[string]string{"X-WeChat-OpenID": "o-user-1"})
			if body := readAll(t, resp.Body); gjson.Get(body, "choices.0.message.content").Str != "Both checked." {
				t.Fatalf("answer %s", body)
			}
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream requests; want 2", len(reqs))
			}
			next := reqs[1].Body
			var called, answered []string
			gjson.Get(assistantToolMessage(next), "tool_calls.#.id").ForEach(func(_, v gjson.Result) bool { called = append(called, v.Str); return true })
			gjson.GetBytes(next, `messages.#(role=="tool")#.tool_call_id`).ForEach(func(_, v gjson.Result) bool { answered = append(answered, v.Str); return true })
			if len(called) != 2 || called[0] == "" || called[0] == called[1] || strings.Join(called, ",") != strings.Join(answered, ",") {
				t.Errorf("the next round's calls %q and tool results %q; want two distinct ids, each answered once in order", called, answered)
			}
		})
	}
}
