package interceptors

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestCaptureRoundZeroRepeatedRole: OpenRouter, Gemini's OpenAI endpoint
// and GLM put "role":"assistant" in the delta of every chunk. openai-python's
// stream helper (lib/streaming/_deltas.py accumulate_delta) joins every
// string member of the deltas it gets, so the bot's message said
// "assistantassistant…" (BerriAI/litellm#9986 fixed the same in LiteLLM).
// Later rounds dropped the repeats; round 0 passed them as sent. Now every
// chunk after the first role's goes out without its role member, on each
// path a chunk takes (text, first tool-call chunk, call path), every other
// byte as sent; a role-only delta is left {} and still goes out. A later
// role other than "assistant" (no provider sends one: one choice is one
// message) is removed as well: openai-python would read "assistanttool",
// openai-node would take the message for a tool's.
func TestCaptureRoundZeroRepeatedRole(t *testing.T) {
	shapes := []struct {
		name  string
		steps []roleStep
	}{
		{"OpenRouter: role first", orSteps()},
		{"Gemini: role last", []roleStep{
			{gm(`{"content":"Let me","role":"assistant"}`, ``), gm(`{"content":"Let me","role":"assistant"}`, ``)},
			{gm(`{"content":" check.","role":"assistant"}`, ``), gm(`{"content":" check."}`, ``)},
			{gm(`{"role":"assistant"}`, ``), gm(`{}`, ``)},
			{gm(`{"content":" Now.","role":"tool"}`, ``), gm(`{"content":" Now."}`, ``)},
			{gm(`{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Hangzhou\"}","name":"get_weather"},"id":"g1","type":"function","extra_content":{"google":{"thought_signature":"c2ln"}}}]}`, ``),
				gm(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Hangzhou\"}","name":"get_weather"},"id":"g1","type":"function","extra_content":{"google":{"thought_signature":"c2ln"}}}]}`, ``)},
			{gm(`{"role":"assistant"}`, `,"finish_reason":"tool_calls"`), ""},
		}},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			var ins, wants []string
			for _, s := range sh.steps {
				ins = append(ins, s.in)
				if s.want != "" {
					wants = append(wants, s.want)
				}
			}
			outs, results := runTurn(t, "", 0, ins)
			roles := 0
			for _, out := range outs[0] {
				gjson.Get(out, "choices.#.delta").ForEach(func(_, d gjson.Result) bool {
					if d.Get("role").Exists() {
						roles++
					}
					return true
				})
			}
			if roles != 1 {
				t.Errorf("%d role members went out; want 1:\n%s", roles, strings.Join(outs[0], "\n"))
			}
			if len(outs[0]) != len(wants) {
				t.Fatalf("%d chunks went out; want %d:\n%s", len(outs[0]), len(wants), strings.Join(outs[0], "\n"))
			}
			for i := range wants {
				if outs[0][i] != wants[i] {
					t.Errorf("chunk %d:\n got %s\nwant %s", i, outs[0][i], wants[i])
				}
			}
			if !results[0].Sent.Role {
				t.Errorf("Sent.Role false; the round's first role went out")
			}
		})
	}
}

// roleStep is a chunk the provider sends and the one the bot gets ("":
// none).
type roleStep struct{ in, want string }

// orSteps is an OpenRouter stream whose deltas all carry the role: text,
// an empty role-only delta, a call of the bot's own tool and its arguments
// (the call path), a later "tool" role, the finish and the usage chunk.
func orSteps() []roleStep {
	const head = `{"id":"gen-1","provider":"Google","model":"google/gemini-2.5-pro","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":`
	ch := func(delta, tail string) string {
		return head + delta + `,"finish_reason":` + tail + `,"native_finish_reason":null,"logprobs":null}],"x_trace":{"k":[1,2]}}`
	}
	arg := func(role, a string) string {
		return ch(`{`+role+`"content":null,"tool_calls":[{"index":0,"function":{"arguments":"`+a+`"}}]}`, `null`)
	}
	return []roleStep{
		{ch(`{"role":"assistant","content":"Let me","reasoning":null,"reasoning_details":[]}`, `null`),
			ch(`{"role":"assistant","content":"Let me","reasoning":null,"reasoning_details":[]}`, `null`)},
		{ch(`{"role":"assistant","content":" check.","reasoning":null,"reasoning_details":[]}`, `null`),
			ch(`{"content":" check.","reasoning":null,"reasoning_details":[]}`, `null`)},
		{ch(`{"role":"assistant"}`, `null`), ch(`{}`, `null`)},
		{ch(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":""}}]}`, `null`),
			ch(`{"content":null,"tool_calls":[{"index":0,"id":"call_w","type":"function","function":{"name":"get_weather","arguments":""}}]}`, `null`)},
		{arg(`"role":"assistant",`, `{\"city\":`), arg(``, `{\"city\":`)},
		{arg(`"role":"tool",`, `\"Hangzhou\"`), arg(``, `\"Hangzhou\"`)},
		{arg(`"role":"assistant",`, `}`), arg(``, `}`)},
		{ch(`{"role":"assistant","content":""}`, `"tool_calls"`), ""},
		{head + `{"role":"assistant","content":""},"finish_reason":null}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`, ""},
	}
}

// gm is a chunk of Gemini's OpenAI endpoint with the delta and members
// after it (each with its leading comma).
func gm(delta, after string) string {
	return `{"choices":[{"delta":` + delta + after + `,"index":0}],"created":1752019800,"id":"kT5taJjQ","model":"gemini-2.5-flash","object":"chat.completion.chunk"}`
}

// TestCaptureRoleNamedTwice: a text chunk whose delta names its role twice,
// or spells it "Role", reads as that role to the bot's parser (Go's
// encoding/json and Python's json keep a key's last copy; encoding/json,
// go-openai's, reads "Role" as role), and the slow path refuses it
// (ambiguousChunk). The fast path took it and removed only the copy it
// read: after the turn's role went out, the bot got another.
func TestCaptureRoleNamedTwice(t *testing.T) {
	const head = `{"id":"gen-2","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":`
	const tail = `,"finish_reason":null}]}`
	for _, delta := range []string{
		`{"role":"assistant","content":" b","role":"assistant"}`,
		`{"content":" b","Role":"assistant"}`,
		`{"Role":"assistant","content":" b"}`,
	} {
		t.Run(delta, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.StartRound(0, "", 0)
			// The first: the turn's role; the second teaches the fast
			// path the chunks' prefix and template.
			for _, d := range []string{`{"role":"assistant","content":"a"}`, `{"content":" a"}`} {
				if _, err := c.Process([]byte(head + d + tail)); err != nil {
					t.Fatal(err)
				}
			}
			out, err := c.Process([]byte(head + delta + tail))
			roles := 0
			gjson.GetBytes(out, "choices.0.delta").ForEach(func(k, _ gjson.Result) bool {
				if strings.EqualFold(k.Str, "role") {
					roles++
				}
				return true
			})
			if roles != 0 {
				t.Errorf("a second role went out (err %v): %s", err, out)
			}
		})
	}
}
