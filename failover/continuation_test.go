package failover

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestContinuationRequest covers a recovery round: the provider that broke
// the stream is excluded, and each target gets the already-sent text the way
// its continuation mode says; a target that refuses the prefill is asked
// again for a fresh answer, and the refusal is not the round's failure.
func TestContinuationRequest(t *testing.T) {
	t.Parallel()
	refusePrefill := func(c *fconn, n int) {
		if gjson.Get(c.lastBody, "messages.#(role==\"assistant\")").Exists() {
			c.status(400, errBody("invalid_request_error", "", "assistant prefill is not supported"))
			return
		}
		okStream(c, "fresh")
	}
	tests := []struct {
		name          string
		mode          string // b's continuation mode
		b             func(c *fconn, n int)
		exclude       []string
		cont          string
		wantProvider  string
		wantContinued bool
		wantLast      string // b's last request: the last message, "" none
		wantBHits     int
	}{
		{name: "prefill appends an assistant message", mode: "prefill", exclude: []string{"a"}, cont: "Hello, \"wor",
			wantProvider: "b", wantContinued: true, wantLast: `{"role":"assistant","content":"Hello, \"wor"}`, wantBHits: 1},
		{name: "prefix_flag marks it", mode: "prefix_flag", exclude: []string{"a"}, cont: "Hel",
			wantProvider: "b", wantContinued: true, wantLast: `{"role":"assistant","content":"Hel","prefix":true}`, wantBHits: 1},
		// Qwen (DashScope) and Kimi document "partial": true instead.
		{name: "partial_flag marks it as partial", mode: "partial_flag", exclude: []string{"a"}, cont: "Hel",
			wantProvider: "b", wantContinued: true, wantLast: `{"role":"assistant","content":"Hel","partial":true}`, wantBHits: 1},
		{name: "none sends the body unchanged", mode: "none", exclude: []string{"a"}, cont: "Hel",
			wantProvider: "b", wantContinued: false, wantLast: `{"role":"user","content":"hi"}`, wantBHits: 1},
		{name: "nothing sent yet: no prefill", mode: "prefill", exclude: []string{"a"}, cont: "",
			wantProvider: "b", wantContinued: false, wantLast: `{"role":"user","content":"hi"}`, wantBHits: 1},
		{name: "a refused prefill is asked again fresh", mode: "prefill", b: refusePrefill, exclude: []string{"a"}, cont: "Hel",
			wantProvider: "b", wantContinued: false, wantLast: `{"role":"user","content":"hi"}`, wantBHits: 2},
		{name: "without exclusion the first target answers", mode: "prefill", cont: "Hel",
			wantProvider: "a", wantContinued: false, wantBHits: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"b": tc.b}, []string{"a", "b"}, func(cfg *config.Config) {
				cfg.Providers[1].Continuation = tc.mode
			})
			var cont *Continuation
			if tc.cont != "" || tc.name == "nothing sent yet: no prefill" {
				cont = &Continuation{Text: tc.cont}
			}
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true),
				Stream: true, ContentType: "application/json", ExcludeProviders: tc.exclude, Continuation: cont})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			if resp.Provider != tc.wantProvider || resp.Continued != tc.wantContinued {
				t.Errorf("got provider %s continued %v; want %s %v", resp.Provider, resp.Continued, tc.wantProvider, tc.wantContinued)
			}
			if got := len(e.fakes["a"].hits()); tc.wantProvider == "b" && got != 0 {
				t.Errorf("excluded provider a saw %d requests; want 0", got)
			}
			hits := e.fakes["b"].hits()
			if len(hits) != tc.wantBHits {
				t.Fatalf("b saw %d requests; want %d", len(hits), tc.wantBHits)
			}
			if tc.wantLast != "" {
				last := gjson.Get(hits[len(hits)-1].body, "messages.@reverse.0").Raw
				if last != tc.wantLast {
					t.Errorf("last message %s; want %s", last, tc.wantLast)
				}
				if m := gjson.Get(hits[len(hits)-1].body, "model").String(); m != "up-b" {
					t.Errorf("model %q; want up-b", m)
				}
			}
			if tc.wantBHits == 2 && !strings.Contains(e.logs.String(), "refused the continuation") {
				t.Errorf("no log line for the refused continuation")
			}
		})
	}
}

// TestExcludeAllProviders: a recovery with no other provider fails the round
// at once, without touching the excluded one.
func TestExcludeAllProviders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, []string{"a"}, nil)
	got := e.openReq(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true,
		ExcludeProviders: []string{"a"}, Continuation: &Continuation{Text: "x"}})
	if got.openErr == nil {
		t.Fatalf("Open answered from %s; want an error", got.provider)
	}
	if n := len(e.fakes["a"].hits()); n != 0 {
		t.Errorf("a saw %d requests; want 0", n)
	}
}

// TestExcludeTargets: a round skips the targets it is told to (a turn's
// target that refused an earlier round for its context length), by
// provider and upstream model; one that would be left with none asks them
// all the same, so the client hears their own reason, not a 503 for no
// target.
func TestExcludeTargets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		exclude []TargetName
		want    string // the provider that answers
	}{
		{"the refusing target is skipped", []TargetName{{Provider: "a", Model: "up-a"}}, "b"},
		{"a name of another model skips nothing", []TargetName{{Provider: "a", Model: "up-b"}}, "a"},
		{"none would be left: all asked", []TargetName{{Provider: "a", Model: "up-a"}, {Provider: "b", Model: "up-b"}}, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, []string{"a", "b"}, nil)
			got := e.openReq(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(false), ExcludeTargets: tc.exclude})
			if got.openErr != nil || got.provider != tc.want {
				t.Fatalf("answered by %q (err %v); want %q", got.provider, got.openErr, tc.want)
			}
		})
	}
}

// TestContinuationExtendsTheBotsPrefix: a bot that itself ends its messages
// with an assistant message (chat prefix completion: DeepSeek beta, Mistral
// with "prefix": true; or a plain prefill) has the text sent since added to
// that message, its other members kept: providers document one trailing
// assistant prefix, never two. Shapes that cannot be extended in place get
// the continuation as a message of its own, as before.
func TestContinuationExtendsTheBotsPrefix(t *testing.T) {
	t.Parallel()
	const user = `{"role":"user","content":"quick sort"}`
	tests := []struct {
		name, mode string
		last       string // the bot's last message
		wantTail   string // b's messages after the user's, as a JSON array
	}{
		{name: "prefix_flag extends the bot's prefix message", mode: "prefix_flag",
			last:     `{"role":"assistant","content":"` + "```python\\n" + `","prefix":true}`,
			wantTail: `[{"role":"assistant","content":"` + "```python\\ndef qs(a):" + `","prefix":true}]`},
		{name: "its other members are kept", mode: "prefix_flag",
			last:     `{"role":"assistant","reasoning_content":"sort it","content":"x","prefix":true,"name":"n"}`,
			wantTail: `[{"role":"assistant","reasoning_content":"sort it","content":"xdef qs(a):","prefix":true,"name":"n"}]`},
		{name: "prefix_flag flags a prefill the bot sent unflagged", mode: "prefix_flag",
			last:     `{"role":"assistant","content":"x"}`,
			wantTail: `[{"role":"assistant","content":"xdef qs(a):","prefix":true}]`},
		{name: "partial_flag extends the bot's partial message", mode: "partial_flag",
			last:     `{"role":"assistant","content":"x","partial":true}`,
			wantTail: `[{"role":"assistant","content":"xdef qs(a):","partial":true}]`},
		{name: "partial_flag flags a prefill the bot sent unflagged", mode: "partial_flag",
			last:     `{"role":"assistant","content":"x"}`,
			wantTail: `[{"role":"assistant","content":"xdef qs(a):","partial":true}]`},
		{name: "prefill extends without adding a flag", mode: "prefill",
			last:     `{"role":"assistant","content":"x"}`,
			wantTail: `[{"role":"assistant","content":"xdef qs(a):"}]`},
		{name: "content parts ending with text: the last part grows", mode: "prefix_flag",
			last:     `{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"prefix":true}`,
			wantTail: `[{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"bdef qs(a):"}],"prefix":true}]`},
		{name: "content parts ending otherwise: a message of its own", mode: "prefill",
			last:     `{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}`,
			wantTail: `[{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]},{"role":"assistant","content":"def qs(a):"}]`},
		{name: "an assistant message with tool calls is not a prefix", mode: "prefill",
			last:     `{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}`,
			wantTail: `[{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"assistant","content":"def qs(a):"}]`},
		{name: "none leaves the bot's prefix alone", mode: "none",
			last:     `{"role":"assistant","content":"x","prefix":true}`,
			wantTail: `[{"role":"assistant","content":"x","prefix":true}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil, []string{"a", "b"}, func(cfg *config.Config) {
				cfg.Providers[1].Continuation = tc.mode
			})
			body := []byte(`{"model":"gpt","stream":true,"messages":[` + user + `,` + tc.last + `]}`)
			resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: body, Stream: true,
				ContentType: "application/json", ExcludeProviders: []string{"a"}, Continuation: &Continuation{Text: "def qs(a):"}})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer resp.Close()
			hits := e.fakes["b"].hits()
			if len(hits) != 1 {
				t.Fatalf("b saw %d requests; want 1", len(hits))
			}
			msgs := gjson.Get(hits[0].body, "messages").Array()
			if len(msgs) == 0 || msgs[0].Raw != user {
				t.Fatalf("messages %s; want the user's first", gjson.Get(hits[0].body, "messages").Raw)
			}
			tail := "["
			for i, m := range msgs[1:] {
				if i > 0 {
					tail += ","
				}
				tail += m.Raw
			}
			if tail += "]"; tail != tc.wantTail {
				t.Errorf("messages after the user's %s; want %s", tail, tc.wantTail)
			}
		})
	}
}
