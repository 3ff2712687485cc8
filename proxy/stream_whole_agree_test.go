package proxy

import (
	"io"
	"math/rand"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonstr"
)

// FuzzStreamAndWholeAgree holds the two readers of a streamed round to one
// answer: the stream capture, which reads a stream request's chunks as they
// come, and failover's assembler, which reads the whole body a provider
// that ignores "stream": false answers a non-stream request with. Each seed
// makes a provider stream of payment calls and the bot's own calls, as the
// providers send them (OpenAI's name then arguments, Qwen's id and name in
// every delta, Gemini's calls without an index, names in pieces,
// finish_reason on every delta of a call, "stop" for a tool round), their
// deltas interleaved by index, arguments cut at any character, with text,
// reasoning and comment lines between them, CRLF line ends, "data:"
// without its space and a byte order mark. Through the HTTP surface, once
// streamed and once not, the turn runs the same payment calls, each with
// its arguments whole, and hands the bot the same calls of its own, those
// the model made, in its order.
//
// Two things are left out on purpose: a later piece of a bot tool's name
// that starts a payment tool's name is a call of its own (Capture's
// continuesName says why), and calls first seen out of index order go to
// the bot as they come in a stream, which no provider sends.
//
//	go test -run '^$' -fuzz '^FuzzStreamAndWholeAgree$' -fuzztime 30s ./proxy
func FuzzStreamAndWholeAgree(f *testing.F) {
	for seed := range int64(60) {
		f.Add(seed)
	}
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},` +
		`{"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}],`
	f.Fuzz(func(t *testing.T, seed int64) {
		events, calls := agreeStream(rand.New(rand.NewSource(seed)))
		type turn struct {
			status      int
			ran, botGot []string
		}
		var turns [2]turn
		for i, stream := range []bool{true, false} {
			tl := &recordingTools{}
			fp := newFakeProvider(t, eventsThenText(events, stream))
			url := toolsProxy(t, fp.URL, tl, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, tools), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			turns[i] = turn{resp.StatusCode, tl.executed(), botCallsJoined(stream, body)}
		}
		if !slices.Equal(turns[0].ran, turns[1].ran) || !slices.Equal(turns[0].botGot, turns[1].botGot) || turns[0].status != turns[1].status {
			t.Fatalf("streamed: status %d, ran %q, the bot got %q\nnot streamed: status %d, ran %q, the bot got %q\nfrom\n%s",
				turns[0].status, turns[0].ran, turns[0].botGot, turns[1].status, turns[1].ran, turns[1].botGot, events)
		}
		var pay, bot []string
		for _, c := range calls {
			if (&recordingTools{}).IsPayment(c.name) {
				pay = append(pay, c.name+" "+c.args)
			} else {
				bot = append(bot, c.name+" "+c.args)
			}
		}
		for _, ran := range turns[0].ran {
			if !slices.Contains(pay, ran) {
				t.Errorf("ran %q; the model's payment calls are %q\n%s", ran, pay, events)
			}
		}
		if len(pay) > 0 && len(turns[0].ran) == 0 {
			t.Errorf("ran none of the model's payment calls %q\n%s", pay, events)
		}
		if !slices.Equal(turns[0].botGot, bot) {
			t.Errorf("the bot got %q; the model's calls of its tools are %q\n%s", turns[0].botGot, bot, events)
		}
	})
}

// agreeCall is one tool call of agreeStream's model.
type agreeCall struct{ id, name, args string }

// agreeStream makes a provider's stream of one tool round from r
// (FuzzStreamAndWholeAgree), and returns it with the calls it holds, in
// index order.
func agreeStream(r *rand.Rand) (string, []agreeCall) {
	pool := []agreeCall{
		{name: "create_order", args: `{"sku":"premium-monthly","quantity":2}`},
		{name: "get_weather", args: `{"city":"杭州 \"西湖\" 😀"}`},
		{name: "query_order", args: `{"order_no":"PG123"}`},
		{name: "get_time", args: `{}`},
		{name: "request_refund", args: `{"order_no":"PG1","reason":"坏了 \\ café"}`},
	}
	var calls []agreeCall
	for i, p := range r.Perm(len(pool))[:1+r.Intn(3)] {
		c := pool[p]
		c.id = "call_" + strconv.Itoa(i)
		calls = append(calls, c)
	}
	const head = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	// style: 0 OpenAI's shape, 1 Qwen's (id and name in every delta), 2
	// Gemini's through some relays (no index, the id in every delta).
	style := r.Intn(3)
	deltas := make([][]string, len(calls))
	for i, c := range calls {
		idx := `"index":` + strconv.Itoa(i) + `,`
		for j, piece := range runePieces(r, c.args, 6) {
			a := string(jsonstr.Append(nil, piece))
			var d []string
			switch {
			case style == 1:
				d = []string{`{` + idx + `"id":"` + c.id + `","type":"function","function":{"name":"` + c.name + `","arguments":` + a + `}}`}
			case style == 2 && j == 0:
				d = []string{`{"id":"` + c.id + `","type":"function","function":{"name":"` + c.name + `","arguments":` + a + `}}`}
			case style == 2:
				d = []string{`{"id":"` + c.id + `","function":{"arguments":` + a + `}}`}
			case j == 0 && r.Intn(3) == 0:
				// The name in two pieces, the second no start of a
				// payment tool's name, then the arguments.
				cut := 1 + r.Intn(len(c.name)-1)
				for startsPaymentName(c.name[cut:]) {
					cut = 1 + r.Intn(len(c.name)-1)
				}
				d = []string{`{` + idx + `"id":"` + c.id + `","type":"function","function":{"name":"` + c.name[:cut] + `"}}`,
					`{` + idx + `"function":{"name":"` + c.name[cut:] + `"}}`, `{` + idx + `"function":{"arguments":` + a + `}}`}
			case j == 0:
				d = []string{`{` + idx + `"id":"` + c.id + `","type":"function","function":{"name":"` + c.name + `","arguments":` + a + `}}`}
			default:
				d = []string{`{` + idx + `"function":{"arguments":` + a + `}}`}
			}
			deltas[i] = append(deltas[i], d...)
		}
	}
	var b strings.Builder
	event := func(data string) { b.WriteString("data: " + data + "\n\n") }
	if r.Intn(2) == 0 {
		b.WriteString(": OPENROUTER PROCESSING\n\n")
	}
	event(head + `{"role":"assistant","content":""},"finish_reason":null}]}`)
	if r.Intn(2) == 0 {
		event(head + `{"content":"Sure."},"finish_reason":null}]}`)
	}
	everyFinish := r.Intn(4) == 0 // LiteLLM's Gemini: finish_reason on every delta of a call
	var entries []string
	flush := func() {
		if len(entries) == 0 {
			return
		}
		finish := "null"
		if everyFinish {
			finish = `"tool_calls"`
		}
		event(head + `{"tool_calls":[` + strings.Join(entries, ",") + `]},"finish_reason":` + finish + `}]}`)
		entries = entries[:0]
	}
	next, left, last := make([]int, len(calls)), 0, -1
	for _, d := range deltas {
		left += len(d)
	}
	for left > 0 {
		i := r.Intn(len(calls))
		if next[i] == len(deltas[i]) || i > 0 && next[i-1] == 0 {
			continue // a call's deltas are over, or it would start before the one at the index below
		}
		if i == last || r.Intn(3) == 0 {
			flush()
		}
		switch r.Intn(12) {
		case 0:
			flush()
			event(head + `{"content":" more"},"finish_reason":null}]}`)
		case 1:
			flush()
			event(head + `{"reasoning_content":"think"},"finish_reason":null}]}`)
		case 2:
			flush()
			b.WriteString(": keep-alive\n\n")
		}
		entries, last = append(entries, deltas[i][next[i]]), i
		next[i]++
		left--
	}
	flush()
	event(head + `{},"finish_reason":` + []string{`"tool_calls"`, `"stop"`}[r.Intn(2)] + `}]}`)
	event(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	b.WriteString("data: [DONE]\n\n")
	s := b.String()
	if r.Intn(3) == 0 {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	if r.Intn(3) == 0 {
		s = strings.ReplaceAll(s, "data: ", "data:")
	}
	if r.Intn(4) == 0 {
		s = "\ufeff" + s
	}
	return s, calls
}

// runePieces cuts s into pieces of 1 to max characters.
func runePieces(r *rand.Rand, s string, max int) []string {
	var out []string
	for s != "" {
		i := 0
		for n := 1 + r.Intn(max); n > 0 && i < len(s); n-- {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		out, s = append(out, s[:i]), s[i:]
	}
	return out
}

// startsPaymentName reports whether s is the start of a payment tool's
// name, not the whole of it.
func startsPaymentName(s string) bool {
	for _, p := range []string{"create_order", "query_order", "request_refund"} {
		if len(s) < len(p) && strings.HasPrefix(p, s) {
			return true
		}
	}
	return false
}

// botCallsJoined is botCalls with a streamed call's name joined from its
// pieces, as openai-python joins them, a piece that repeats the whole name
// so far taken for the same name (Qwen sends it in every delta).
func botCallsJoined(stream bool, body string) []string {
	if !stream {
		return botCalls(false, body)
	}
	var names, args []string
	for _, c := range streamChunks(body) {
		gjson.Get(c, "choices.0.delta.tool_calls").ForEach(func(_, e gjson.Result) bool {
			i := int(e.Get("index").Int())
			for len(names) <= i {
				names, args = append(names, ""), append(args, "")
			}
			if n := e.Get("function.name").Str; n != names[i] {
				names[i] += n
			}
			args[i] += e.Get("function.arguments").Str
			return true
		})
	}
	out := make([]string, len(names))
	for i := range names {
		out[i] = names[i] + " " + args[i]
	}
	return out
}

// eventsThenText answers a turn's first round with events, whatever the
// request's stream mode (a provider that ignores "stream": false), and the
// round after its payment calls' results with text, streamed or not.
func eventsThenText(events string, stream bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"role":"tool"`) {
			textRound(stream, "Your order is ready.")(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, events)
	}
}
