package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// canonRound is one upstream round of a canonical answer: its text deltas
// and what follows them (tool-call deltas, the finish chunk, usage).
type canonRound struct {
	text []string
	tail []string // chunk JSON without the id (see withID)
}

// withID renders a chunk body with id.
func withID(id, chunk string) string {
	return `{"id":"` + id + `","object":"chat.completion.chunk","created":1700000000,"model":"up-model",` + chunk + `}`
}

func deltaChunk(delta, finish string) string {
	f := "null"
	if finish != "" {
		f = `"` + finish + `"`
	}
	return `"choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + f + `}]`
}

const recUsage = `"choices":[],"usage":{"prompt_tokens":50,"completion_tokens":10,"total_tokens":60}`

// The canonical answers. A payment turn: round 0 says a few words and calls
// create_order (held back from the client); round 1, after the tool result,
// confirms. A text answer. A round with the client's own tool call.
var (
	payRound0 = canonRound{
		text: []string{"Let me ", "set that up. "},
		tail: []string{
			deltaChunk(`{"tool_calls":[{"index":0,"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":""}}]}`, ""),
			deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"sku\":\"premium-monthly\","}}]}`, ""),
			deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"quantity\":1}"}}]}`, ""),
			deltaChunk(`{}`, "tool_calls"),
			recUsage,
		},
	}
	payRound1 = canonRound{
		text: []string{"Your order is ready: ", "tap Pay ", "to finish."},
		tail: []string{deltaChunk(`{}`, "stop"), recUsage},
	}
	recTextRound = canonRound{
		text: []string{"The answer ", "is forty", "-two, as ", "always."},
		tail: []string{deltaChunk(`{}`, "stop"), recUsage},
	}
	recToolRound = canonRound{
		text: []string{"Checking. "},
		tail: []string{
			deltaChunk(`{"tool_calls":[{"index":0,"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":""}}]}`, ""),
			deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`, ""),
			deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`, ""),
			deltaChunk(`{}`, "tool_calls"),
			recUsage,
		},
	}
	divergentText = []string{"Sure thing, ", "one moment. "}
)

// toolRoundAs is recToolRound as another provider answers it: its call has
// its own id, and args (when not nil) replace the argument fragments.
func toolRoundAs(id string, args []string) canonRound {
	r := canonRound{text: recToolRound.text, tail: append([]string(nil), recToolRound.tail...)}
	r.tail[0] = strings.Replace(r.tail[0], "call_w1", id, 1)
	if args != nil {
		r.tail[1] = deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"`+args[0]+`"}}]}`, "")
		r.tail[2] = deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"`+args[1]+`"}}]}`, "")
	}
	return r
}

const payAnswer = "Let me set that up. Your order is ready: tap Pay to finish."

// fault is how and where the primary breaks a round: after `at` events of
// round `round`.
type fault struct {
	kind  string // cut, stall, error, malformed
	round int
	at    int
}

// recoveryProvider is a fake provider answering the canonical rounds; the
// primary breaks as its fault says, the fallback continues an assistant
// prefill as its mode says (prefill, prefix_flag, none; "refuse": it
// answers 400 to a prefill; "diverge": that, and its fresh answer's text
// differs).
type recoveryProvider struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func (p *recoveryProvider) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.bodies...)
}

func newRecoveryProvider(t *testing.T, id string, rounds func(body string) (int, canonRound), f *fault, mode string) *recoveryProvider {
	t.Helper()
	p := &recoveryProvider{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		p.mu.Lock()
		p.bodies = append(p.bodies, body)
		p.mu.Unlock()
		n, cr := rounds(body)
		last := gjson.Get(body, "messages.@reverse.0")
		prefill := ""
		if last.Get("role").String() == "assistant" && !last.Get("tool_calls").Exists() {
			switch {
			case mode == "refuse" || mode == "diverge" || mode == "none",
				mode == "prefix_flag" && !last.Get("prefix").Bool():
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":{"message":"assistant prefill is not supported","type":"invalid_request_error"}}`)
				return
			}
			prefill = last.Get("content").String()
		}
		text := cr.text
		if mode == "diverge" {
			text = divergentText
		}
		full := strings.Join(text, "")
		if !strings.HasPrefix(full, prefill) {
			t.Errorf("%s: prefill %q is not the beginning of %q", id, prefill, full)
		}
		var events []string
		if rest := full[len(prefill):]; prefill == "" {
			for _, s := range text {
				events = append(events, deltaChunk(`{"content":"`+s+`"}`, ""))
			}
		} else if rest != "" {
			h := len(rest) / 2
			events = append(events, deltaChunk(`{"content":"`+rest[:h]+`"}`, ""), deltaChunk(`{"content":"`+rest[h:]+`"}`, ""))
		}
		events = append([]string{deltaChunk(`{"role":"assistant","content":""}`, "")}, events...)
		events = append(events, cr.tail...)
		w.Header().Set("Content-Type", "text/event-stream")
		flush := w.(http.Flusher).Flush
		for i, e := range events {
			if f != nil && f.round == n && i == f.at+1 { // +1: the role chunk
				switch f.kind {
				case "cut":
					if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
						conn.Close()
					}
					return
				case "stall":
					<-r.Context().Done()
				case "error":
					_, _ = io.WriteString(w, `data: {"error":{"message":"overloaded mid-stream","code":502}}`+"\n\n")
				case "malformed":
					for range 3 {
						_, _ = io.WriteString(w, `data: {"choices":[{"delta":{"content":"bro`+"\n\n")
					}
				}
				flush()
				return
			}
			_, _ = io.WriteString(w, "data: "+withID(id, e)+"\n\n")
			flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(p.Close)
	return p
}

// recoveryApp serves the binary's handler: gpt-4o → primary, then fallback
// with the given continuation mode; the primary's idle timeout is short,
// for the stall cases, yet 1s: the primary's healthy events, written back
// to back, had to reach paygate within 300ms, and on a loaded two-core CI
// machine under -race a stall of that size took a healthy round for a
// stalled one (another cause, a second recovery). Each stall case waits
// it out, so it is no longer than that. The log goes to logOut, if given.
func recoveryApp(t *testing.T, primary, fallback, continuation string, logOut ...io.Writer) (string, *app) {
	t.Helper()
	if continuation == "refuse" || continuation == "diverge" {
		continuation = "prefill" // configured so, refused by the provider
	}
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: primary, base_url: "` + primary + `/v1", api_key: k1, timeouts: {connect: 1s, first_byte: 2s, first_token: 2s, idle: 1s, total: 10s}}
  - {name: fallback, base_url: "` + fallback + `/v1", api_key: k2, continuation: ` + continuation + `}
models:
  - {name: gpt-4o, targets: [{provider: primary, model: p-model}, {provider: fallback, model: f-model}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
	out := io.Writer(io.Discard)
	if len(logOut) > 0 {
		out = logOut[0]
	}
	return serveConfig(t, src, out)
}

// clientStream is what a go-openai streaming client got.
type clientStream struct {
	text     string
	ids      map[string]bool
	roles    int
	finishes []string
	calls    []string   // the client's tool calls' argument fragments, joined per index
	callIDs  [][]string // per index, every id the client was sent
	callName [][]string // per index, every name the client was sent
	usage    int        // total_tokens of the usage chunk, 0: none
	err      error
}

func readStream(t *testing.T, c *openai.Client, req openai.ChatCompletionRequest) clientStream {
	t.Helper()
	req.Model, req.Stream = "gpt-4o", true
	stream, err := c.CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		return clientStream{err: err}
	}
	defer stream.Close()
	got := clientStream{ids: map[string]bool{}}
	var text strings.Builder
	for {
		ch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			got.err = err
			break
		}
		got.ids[ch.ID] = true
		if ch.Usage != nil {
			got.usage += ch.Usage.TotalTokens
		}
		if len(ch.Choices) == 0 {
			continue
		}
		d := ch.Choices[0].Delta
		if d.Role != "" {
			got.roles++
		}
		text.WriteString(d.Content)
		for _, tc := range d.ToolCalls {
			i := 0
			if tc.Index != nil {
				i = *tc.Index
			}
			for len(got.calls) <= i {
				got.calls = append(got.calls, "")
				got.callIDs = append(got.callIDs, nil)
				got.callName = append(got.callName, nil)
			}
			got.calls[i] += tc.Function.Arguments
			if tc.ID != "" {
				got.callIDs[i] = append(got.callIDs[i], tc.ID)
			}
			if tc.Function.Name != "" {
				got.callName[i] = append(got.callName[i], tc.Function.Name)
			}
		}
		if f := ch.Choices[0].FinishReason; f != "" {
			got.finishes = append(got.finishes, string(f))
		}
	}
	got.text = text.String()
	return got
}

var (
	faultKinds = []string{"cut", "stall", "error", "malformed"}
	kindCause  = map[string]string{
		"cut": "upstream_connection_lost", "stall": "upstream_idle_timeout",
		"error": "upstream_stream_error", "malformed": "upstream_malformed_response",
	}
	fallbackModes = []string{"prefill", "prefix_flag", "none", "refuse", "diverge"}
)

// TestStreamRecoveryPaymentTurn: a payment turn whose stream breaks after
// bytes reached the client, for each failure kind, at each cut point, with
// each kind of fallback: the client's answer is the whole canonical answer
// with nothing repeated, one id, one role, one finish (or, when the
// fallback's fresh answer diverges, an error naming the original cut and
// never the prefill refusal); the payment runs exactly once; the providers
// see a bounded number of attempts.
func TestStreamRecoveryPaymentTurn(t *testing.T) {
	t.Parallel()
	rounds := func(body string) (int, canonRound) {
		if strings.Contains(body, `"role":"tool"`) {
			return 1, payRound1
		}
		return 0, payRound0
	}
	cuts := []struct {
		name  string
		round int
		at    int
	}{
		{"inside text", 0, 1},
		{"inside a held-back payment call", 0, 4},
		{"right before the finish chunk", 0, 5},
		{"after the payment, inside text", 1, 2},
		{"after the payment, right before the finish chunk", 1, 3},
	}
	for _, kind := range faultKinds {
		for _, cut := range cuts {
			for _, mode := range fallbackModes {
				t.Run(kind+"/"+cut.name+"/"+mode, func(t *testing.T) {
					t.Parallel()
					primary := newRecoveryProvider(t, "chatcmpl-P", rounds, &fault{kind: kind, round: cut.round, at: cut.at}, "none")
					fallback := newRecoveryProvider(t, "chatcmpl-F", rounds, nil, mode)
					url, a := recoveryApp(t, primary.URL, fallback.URL, mode)
					got := readStream(t, userClient(url), openai.ChatCompletionRequest{
						Messages:      []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "I want premium for a month"}},
						StreamOptions: &openai.StreamOptions{IncludeUsage: true},
					})
					wantOrders := 1
					if mode == "diverge" {
						if got.err == nil || !strings.Contains(got.err.Error(), kindCause[kind]) ||
							!strings.Contains(got.err.Error(), "diverges") {
							t.Errorf("got %q, %v; want an error naming %s and the divergence", got.text, got.err, kindCause[kind])
						}
						if got.err != nil && (strings.Contains(got.err.Error(), "prefill") || strings.Contains(got.err.Error(), "400")) {
							t.Errorf("error %v names the prefill refusal; want the original cut only", got.err)
						}
						if !strings.HasPrefix(payAnswer, got.text) {
							t.Errorf("client text %q is not a beginning of the canonical answer", got.text)
						}
						if cut.round == 0 {
							wantOrders = 0
						}
					} else {
						if got.err != nil || got.text != payAnswer {
							t.Errorf("got %q, %v; want %q and no error", got.text, got.err, payAnswer)
						}
						if len(got.ids) != 1 || !got.ids["chatcmpl-P"] || got.roles != 1 || len(got.finishes) != 1 || got.finishes[0] != "stop" {
							t.Errorf("ids %v roles %d finishes %v; want the first id only, one role, one stop", got.ids, got.roles, got.finishes)
						}
						if got.usage != 120 {
							t.Errorf("usage total %d; want 120, the two rounds that made the answer", got.usage)
						}
					}
					if n := a.sim.OrderCount(); n != wantOrders {
						t.Errorf("simulator has %d orders; want %d", n, wantOrders)
					}
					p, f := len(primary.requests()), len(fallback.requests())
					maxF := 1
					if mode == "refuse" || mode == "diverge" {
						maxF = 2 // the refused prefill, then the fresh answer
					}
					if p > 2 || f > maxF || f < 1 {
						t.Errorf("primary saw %d requests, fallback %d; want at most 2 and 1..%d", p, f, maxF)
					}
				})
			}
		}
	}
}

// TestStreamRecoveryPlain: the same for a request without a user (the
// plain relay, no payment tools) and with one (the turn loop), including a
// cut inside a client tool call's arguments: the client's reassembled
// answer is the text and the call with the id, name and arguments it first
// received, nothing twice. When the fallback's fresh call has other
// arguments or another name than what the client already has, the client
// gets an error naming the original cut.
func TestStreamRecoveryPlain(t *testing.T) {
	t.Parallel()
	textRounds := func(string) (int, canonRound) { return 0, recTextRound }
	toolRounds := func(string) (int, canonRound) { return 0, recToolRound }
	// The fallback splits the same arguments elsewhere: the part the client
	// has ends inside a fragment of the fresh answer.
	fbTool := toolRoundAs("call_f1", []string{`{\"ci`, `ty\":\"Paris\"}`})
	fbToolRounds := func(string) (int, canonRound) { return 0, fbTool }
	fbArgs := toolRoundAs("call_f1", []string{`{\"town\":`, `\"Paris\"}`})
	fbArgsRounds := func(string) (int, canonRound) { return 0, fbArgs }
	fbName := toolRoundAs("call_f1", nil)
	fbName.tail[0] = strings.Replace(fbName.tail[0], "get_weather", "get_forecast", 1)
	fbNameRounds := func(string) (int, canonRound) { return 0, fbName }
	const textAnswer = "The answer is forty-two, as always."
	const toolText, toolArgs = "Checking. ", `{"city":"Paris"}`
	weather := []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
		Name: "get_weather", Parameters: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}}}
	type tcase struct {
		name     string
		user     bool
		rounds   func(string) (int, canonRound) // the primary's answer
		fbRounds func(string) (int, canonRound) // the fallback's; nil: rounds
		at       int
		tools    []openai.Tool
		wantCall bool // the whole answer has the client's get_weather call
		diverges bool // the fallback's answer contradicts what the client has
	}
	var cases []tcase
	for _, user := range []bool{false, true} {
		path := "plain"
		if user {
			path = "turn"
		}
		cases = append(cases,
			tcase{name: path + "/inside text", user: user, rounds: textRounds, at: 2},
			tcase{name: path + "/right before the finish chunk", user: user, rounds: textRounds, at: 4},
			tcase{name: path + "/inside a client tool call's arguments", user: user, rounds: toolRounds, fbRounds: fbToolRounds,
				at: 3, tools: weather, wantCall: true},
			tcase{name: path + "/right after a client tool call's name", user: user, rounds: toolRounds, fbRounds: fbToolRounds,
				at: 2, tools: weather, wantCall: true},
			tcase{name: path + "/inside a client tool call's arguments, other arguments", user: user, rounds: toolRounds, fbRounds: fbArgsRounds,
				at: 3, tools: weather, diverges: true},
			tcase{name: path + "/inside a client tool call's arguments, another tool", user: user, rounds: toolRounds, fbRounds: fbNameRounds,
				at: 3, tools: weather, diverges: true},
		)
	}
	for _, kind := range faultKinds {
		for _, tc := range cases {
			for _, mode := range fallbackModes {
				t.Run(kind+"/"+tc.name+"/"+mode, func(t *testing.T) {
					t.Parallel()
					fbRounds := tc.fbRounds
					if fbRounds == nil {
						fbRounds = tc.rounds
					}
					primary := newRecoveryProvider(t, "chatcmpl-P", tc.rounds, &fault{kind: kind, at: tc.at}, "none")
					fallback := newRecoveryProvider(t, "chatcmpl-F", fbRounds, nil, mode)
					url, _ := recoveryApp(t, primary.URL, fallback.URL, mode)
					c := goClient(url)
					if tc.user {
						c = userClient(url)
					}
					got := readStream(t, c, openai.ChatCompletionRequest{
						Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "hi"}},
						Tools:    tc.tools,
					})
					p, f := len(primary.requests()), len(fallback.requests())
					if tc.diverges || mode == "diverge" {
						if got.err == nil || !strings.Contains(got.err.Error(), kindCause[kind]) ||
							!strings.Contains(got.err.Error(), "provider primary") || !strings.Contains(got.err.Error(), "diverges") {
							t.Errorf("got %q, %v; want an error naming primary's %s and the divergence", got.text, got.err, kindCause[kind])
						}
						if got.err != nil && (strings.Contains(got.err.Error(), "prefill") || strings.Contains(got.err.Error(), "400")) {
							t.Errorf("error %v names the prefill refusal; want the original cut only", got.err)
						}
						if p != 1 || f < 1 || f > 2 {
							t.Errorf("primary saw %d requests, fallback %d; want 1 and 1..2", p, f)
						}
						return
					}
					want := textAnswer
					if tc.wantCall {
						want = toolText
					}
					if got.err != nil || got.text != want {
						t.Errorf("got %q, %v; want %q and no error", got.text, got.err, want)
					}
					if len(got.ids) != 1 || !got.ids["chatcmpl-P"] || got.roles != 1 || len(got.finishes) != 1 {
						t.Errorf("ids %v roles %d finishes %v; want the first id only, one role, one finish", got.ids, got.roles, got.finishes)
					}
					if tc.wantCall {
						if len(got.calls) != 1 || got.calls[0] != toolArgs ||
							len(got.callIDs[0]) != 1 || got.callIDs[0][0] != "call_w1" ||
							len(got.callName[0]) != 1 || got.callName[0][0] != "get_weather" {
							t.Errorf("client calls: args %q ids %v names %v; want one call call_w1 get_weather %s, its id and name sent once",
								got.calls, got.callIDs, got.callName, toolArgs)
						}
						if len(got.finishes) == 1 && got.finishes[0] != "tool_calls" {
							t.Errorf("finish %q; want tool_calls", got.finishes[0])
						}
					} else if len(got.calls) != 0 {
						t.Errorf("client got tool calls %q; want none", got.calls)
					}
					if p != 1 || f < 1 || f > 2 {
						t.Errorf("primary saw %d requests, fallback %d; want 1 and 1..2", p, f)
					}
					if tc.wantCall {
						// A tool call cannot be prefilled: the fallback is asked
						// once, for a fresh answer.
						for _, b := range fallback.requests() {
							if gjson.Get(b, "messages.@reverse.0.role").String() == "assistant" {
								t.Errorf("fallback got a prefill %s; want the original request", gjson.Get(b, "messages.@reverse.0").Raw)
							}
						}
						if f != 1 {
							t.Errorf("fallback saw %d requests; want 1", f)
						}
					}
				})
			}
		}
	}
}

// TestStreamRecoveryBudget: four providers that each cut after one chunk.
// The turn recovers as many times as failover.recovery.max_attempts allows
// (2 by default), each provider continuing the last one's text, then ends
// with an error naming the first cut; with -1 the first cut is the end. The
// providers past the budget are never asked, and
// paygate_stream_recoveries_total counts the broken stream once.
func TestStreamRecoveryBudget(t *testing.T) {
	t.Parallel()
	textRounds := func(string) (int, canonRound) { return 0, recTextRound }
	tests := []struct {
		name     string
		user     bool
		recovery string // failover.recovery, "" for the defaults
		asked    int    // providers asked, in order
		why      string // in the error event; "" when the answer is whole
		outcome  string
		healthy  int // index of the first provider that does not cut; 0: none
	}{
		{"plain, recovered", false, "", 2, "", "recovered", 1},
		{"turn, recovered", true, "", 2, "", "recovered", 1},
		{"plain", false, "", 3, "recovery budget", "budget_spent", 0},
		{"turn", true, "", 3, "recovery budget", "budget_spent", 0},
		{"plain, one recovery", false, "{max_attempts: 1}", 2, "recovery budget spent (1 attempts)", "budget_spent", 0},
		{"turn, three recoveries", true, "{max_attempts: 3}", 4, "recovery budget spent (3 attempts)", "budget_spent", 0},
		{"plain, off", false, "{max_attempts: -1}", 1, "stream recovery is off", "off", 0},
		{"turn, off", true, "{max_attempts: -1}", 1, "stream recovery is off", "off", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ps []*recoveryProvider
			src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
providers:
`
			targets := ""
			for i, name := range []string{"p0", "p1", "p2", "p3"} {
				f := &fault{kind: "cut", at: 1}
				if tc.healthy > 0 && i >= tc.healthy {
					f = nil
				}
				p := newRecoveryProvider(t, "chatcmpl-"+name, textRounds, f, "prefill")
				ps = append(ps, p)
				src += `  - {name: ` + name + `, base_url: "` + p.URL + `/v1", api_key: k, continuation: prefill}` + "\n"
				targets += `{provider: ` + name + `, model: m-` + name + `},`
			}
			src += "models:\n  - {name: gpt-4o, targets: [" + strings.TrimSuffix(targets, ",") + "]}\n"
			if tc.recovery != "" {
				src += "failover: {recovery: " + tc.recovery + "}\n"
			}
			cfg, err := config.Parse([]byte(src), "budget.yaml", func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			a, err := newApp(cfg, io.Discard, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.close)
			srv := h1test.NewServer(a.server.Handler())
			t.Cleanup(srv.Close)
			c := goClient(srv.URL)
			if tc.user {
				c = userClient(srv.URL)
			}
			got := readStream(t, c, openai.ChatCompletionRequest{
				Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "hi"}},
			})
			full := strings.Join(recTextRound.text, "")
			if tc.why == "" {
				if got.err != nil || got.text != full {
					t.Errorf("got %q, %v; want the whole answer %q", got.text, got.err, full)
				}
			} else {
				if got.err == nil || !strings.Contains(got.err.Error(), "provider p0: upstream_connection_lost") ||
					!strings.Contains(got.err.Error(), tc.why) {
					t.Errorf("got %q, %v; want an error naming p0's cut and %q", got.text, got.err, tc.why)
				}
				// Each provider continued the last one's text and cut after
				// one chunk: the client has a beginning of the answer,
				// nothing twice.
				if !strings.HasPrefix(full, got.text) || got.text == full || (tc.asked > 1 && len(got.text) <= len("The answer ")) {
					t.Errorf("client text %q; want a beginning of %q, longer than the first chunk when recovered", got.text, full)
				}
			}
			for i, p := range ps {
				want := 0
				if i < tc.asked {
					want = 1
				}
				if n := len(p.requests()); n != want {
					t.Errorf("p%d saw %d requests; want %d", i, n, want)
				}
			}
			m := scrape(t, srv.URL)
			if n := metricSum(t, m, "paygate_stream_recoveries_total", map[string]string{"cause": "upstream_connection_lost", "outcome": tc.outcome}); n != 1 {
				t.Errorf("paygate_stream_recoveries_total{outcome=%q} = %v; want 1", tc.outcome, n)
			}
			if n := metricSum(t, m, "paygate_stream_recoveries_total", nil); n != 1 {
				t.Errorf("paygate_stream_recoveries_total sums to %v; want 1 (one broken stream)", n)
			}
		})
	}
}

// TestStreamRecoveryMixedRound: a round with a payment call (held back,
// upstream index 0) and the client's own call (upstream index 1, index 0 for
// the client) breaks after the client received part of its call. The
// recovered stream gives the client the whole text and its one call under
// index 0 with the id, name and arguments it first received, nothing twice;
// the payment runs exactly once; the providers see a bounded number of
// attempts. A fallback whose text diverges ends with the error naming the
// original cut and no payment.
func TestStreamRecoveryMixedRound(t *testing.T) {
	t.Parallel()
	mixed := func(weatherID string) canonRound {
		return canonRound{
			text: []string{"Ordering, ", "and checking. "},
			tail: []string{
				deltaChunk(`{"tool_calls":[{"index":0,"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":""}}]}`, ""),
				deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"sku\":\"premium-monthly\",\"quantity\":1}"}}]}`, ""),
				deltaChunk(`{"tool_calls":[{"index":1,"id":"`+weatherID+`","type":"function","function":{"name":"get_weather","arguments":""}}]}`, ""),
				deltaChunk(`{"tool_calls":[{"index":1,"function":{"arguments":"{\"city\":"}}]}`, ""),
				deltaChunk(`{"tool_calls":[{"index":1,"function":{"arguments":"\"Paris\"}"}}]}`, ""),
				deltaChunk(`{}`, "tool_calls"),
				recUsage,
			},
		}
	}
	primaryRound, fallbackRound := mixed("call_w1"), mixed("call_f1")
	const wantText, wantArgs = "Ordering, and checking. ", `{"city":"Paris"}`
	weather := []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
		Name: "get_weather", Parameters: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}}}
	cuts := []struct {
		name string
		at   int
	}{
		{"right after the client call's name", 5},
		{"inside the client call's arguments", 6},
		{"right before the finish chunk", 7},
	}
	for _, kind := range faultKinds {
		for _, cut := range cuts {
			for _, mode := range fallbackModes {
				t.Run(kind+"/"+cut.name+"/"+mode, func(t *testing.T) {
					t.Parallel()
					primary := newRecoveryProvider(t, "chatcmpl-P", func(string) (int, canonRound) { return 0, primaryRound },
						&fault{kind: kind, at: cut.at}, "none")
					fallback := newRecoveryProvider(t, "chatcmpl-F", func(string) (int, canonRound) { return 0, fallbackRound }, nil, mode)
					url, a := recoveryApp(t, primary.URL, fallback.URL, mode)
					got := readStream(t, userClient(url), openai.ChatCompletionRequest{
						Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "premium for a month, and the weather"}},
						Tools:    weather,
					})
					p, f := len(primary.requests()), len(fallback.requests())
					if p != 1 || f != 1 {
						t.Errorf("primary saw %d requests, fallback %d; want 1 and 1 (no prefill for a tool call)", p, f)
					}
					if mode == "diverge" {
						if got.err == nil || !strings.Contains(got.err.Error(), "provider primary: "+kindCause[kind]) ||
							!strings.Contains(got.err.Error(), "diverges") {
							t.Errorf("got %q, %v; want an error naming primary's %s and the divergence", got.text, got.err, kindCause[kind])
						}
						if n := a.sim.OrderCount(); n != 0 {
							t.Errorf("simulator has %d orders; want 0", n)
						}
						return
					}
					if got.err != nil || got.text != wantText {
						t.Errorf("got %q, %v; want %q and no error", got.text, got.err, wantText)
					}
					if len(got.calls) != 1 || got.calls[0] != wantArgs ||
						len(got.callIDs[0]) != 1 || got.callIDs[0][0] != "call_w1" ||
						len(got.callName[0]) != 1 || got.callName[0][0] != "get_weather" {
						t.Errorf("client calls: args %q ids %v names %v; want index 0 only: call_w1 get_weather %s, id and name once",
							got.calls, got.callIDs, got.callName, wantArgs)
					}
					if len(got.ids) != 1 || !got.ids["chatcmpl-P"] || got.roles != 1 || len(got.finishes) != 1 || got.finishes[0] != "tool_calls" {
						t.Errorf("ids %v roles %d finishes %v; want the first id only, one role, one tool_calls", got.ids, got.roles, got.finishes)
					}
					if n := a.sim.OrderCount(); n != 1 {
						t.Errorf("simulator has %d orders; want 1", n)
					}
				})
			}
		}
	}
}

// TestStreamRecoveryRefusedForSeveralChoices: a plain stream with n above 1
// that breaks is not recovered: what the client has is several choices'
// deltas, which a prefill would mix into one text. The client gets the
// error naming the original cut, and the fallback is never asked.
func TestStreamRecoveryRefusedForSeveralChoices(t *testing.T) {
	textRounds := func(string) (int, canonRound) { return 0, recTextRound }
	primary := newRecoveryProvider(t, "chatcmpl-P", textRounds, &fault{kind: "cut", at: 2}, "none")
	fallback := newRecoveryProvider(t, "chatcmpl-F", textRounds, nil, "prefill")
	url, _ := recoveryApp(t, primary.URL, fallback.URL, "prefill")
	got := readStream(t, goClient(url), openai.ChatCompletionRequest{
		N:        2,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "hi"}},
	})
	if got.err == nil || !strings.Contains(got.err.Error(), "several choices") || !strings.Contains(got.err.Error(), "provider primary") {
		t.Errorf("got %q, %v; want an error naming primary's cut and the several choices", got.text, got.err)
	}
	if f := len(fallback.requests()); f != 0 {
		t.Errorf("fallback saw %d requests; want none", f)
	}
}

// TestStreamRecoverySurrogatePairPrefill: a provider that writes non-ASCII
// text as \u escapes (Python's json.dumps default) splits an emoji's UTF-16
// surrogate pair between two deltas, then is cut. The bot has "A😀" (its
// JSON reader joins the halves), and the fallback (continuation: prefill)
// is asked to continue exactly that, on the plain path (no user: the sent
// events are read back) as on the turn path: never the halves decoded one
// by one, two U+FFFD.
func TestStreamRecoverySurrogatePairPrefill(t *testing.T) {
	for _, path := range []string{"plain", "turn"} {
		t.Run(path, func(t *testing.T) {
			primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				for _, d := range []string{`{"role":"assistant","content":""}`, `{"content":"A\ud83d"}`, `{"content":"\ude00"}`} {
					_, _ = io.WriteString(w, "data: "+withID("chatcmpl-P", deltaChunk(d, ""))+"\n\n")
					w.(http.Flusher).Flush()
				}
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close() // cut: no finish reason, no [DONE]
				}
			}))
			t.Cleanup(primary.Close)
			var mu sync.Mutex
			var prefills []string
			fallback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if last := gjson.GetBytes(b, "messages.@reverse.0"); last.Get("role").String() == "assistant" {
					mu.Lock()
					prefills = append(prefills, last.Get("content").String())
					mu.Unlock()
				}
				w.Header().Set("Content-Type", "text/event-stream")
				for _, e := range []string{deltaChunk(`{"role":"assistant","content":""}`, ""), deltaChunk(`{"content":" done"}`, ""), deltaChunk(`{}`, "stop")} {
					_, _ = io.WriteString(w, "data: "+withID("chatcmpl-F", e)+"\n\n")
				}
				_, _ = io.WriteString(w, "data: [DONE]\n\n")
			}))
			t.Cleanup(fallback.Close)
			url, _ := recoveryApp(t, primary.URL, fallback.URL, "prefill")
			c := goClient(url)
			if path == "turn" {
				c = userClient(url)
			}
			got := readStream(t, c, openai.ChatCompletionRequest{
				Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "hi"}},
			})
			if got.err != nil {
				t.Fatalf("stream error %v", got.err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(prefills) != 1 || prefills[0] != "A😀" {
				t.Errorf("fallback prefills %+q; want one, %+q", prefills, "A😀")
			}
		})
	}
}

// TestStreamRecoveryClientGone: the primary cuts the stream after its first
// chunk, and while the fallback is being asked for the rest the bot hangs
// up. Nothing failed for want of a provider: the broken stream is counted
// paygate_stream_recoveries_total{outcome="client_gone"}, never
// "no_provider" (an operator's alert for a model with no healthy second
// provider), nor logged as a recovery that found no provider; and the
// fallback's request is ended with the bot's.
func TestStreamRecoveryClientGone(t *testing.T) {
	for _, path := range []string{"plain", "turn"} {
		t.Run(path, func(t *testing.T) {
			textRounds := func(string) (int, canonRound) { return 0, recTextRound }
			primary := newRecoveryProvider(t, "chatcmpl-P", textRounds, &fault{kind: "cut", at: 1}, "none")
			arrived := make(chan struct{})
			released := make(chan struct{})
			fallback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				close(arrived)
				<-r.Context().Done() // paygate gives up on it when the bot leaves
				close(released)
			}))
			t.Cleanup(fallback.Close)
			logs := &logtest.Buffer{}
			url, a := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: primary, base_url: "`+primary.URL+`/v1", api_key: k1}
  - {name: fallback, base_url: "`+fallback.URL+`/v1", api_key: k2, continuation: prefill}
models:
  - {name: gpt-4o, targets: [{provider: primary, model: p-model}, {provider: fallback, model: f-model}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, logs)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { <-arrived; cancel() }()
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
				strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)).WithContext(ctx)
			req.Header.Set("Authorization", "Bearer "+e2eClientKey)
			req.Header.Set("Content-Type", "application/json")
			if path == "turn" {
				req.Header.Set("X-WeChat-OpenID", testOpenID)
			}
			a.server.Handler().ServeHTTP(httptest.NewRecorder(), req)
			<-released // the fallback's request was ended: no connection left behind
			m := scrape(t, url)
			if n := metricSum(t, m, "paygate_stream_recoveries_total", map[string]string{"outcome": "no_provider"}); n != 0 {
				t.Errorf("paygate_stream_recoveries_total{outcome=no_provider} = %v after the bot hung up mid-recovery; want 0", n)
			}
			if n := metricSum(t, m, "paygate_stream_recoveries_total", map[string]string{"outcome": "client_gone"}); n != 1 {
				t.Errorf("paygate_stream_recoveries_total{outcome=client_gone} = %v; want 1", n)
			}
			if strings.Contains(logs.String(), "stream recovery found no provider") {
				t.Errorf("log says the recovery found no provider; the bot hung up:\n%s", logs.String())
			}
		})
	}
}
