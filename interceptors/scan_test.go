package interceptors

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestScanText: the byte-search path accepts text chunks and refuses every
// chunk that needs a change, whether it reads the whole chunk (scanText) or
// only what follows a prefix learnt from an accepted chunk (scanTextAfter).
func TestScanText(t *testing.T) {
	yes := true
	const pre = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	tests := []struct {
		name          string
		chunk         string
		want          bool
		content, reas string
		role          bool
		// afterOK, when set, is scanTextAfter's answer where it differs:
		// it reads delta values exactly and refuses nothing in them.
		afterOK *bool
	}{
		{name: "text", chunk: pre + `{"content":"hi \"there\" {x}"},"logprobs":null,"finish_reason":null}],"usage":null}`, want: true, content: `hi \"there\" {x}`},
		{name: "role and empty content in round 0", chunk: pre + `{"role":"assistant","content":"","refusal":null},"finish_reason":null}]}`, want: true, role: true},
		{name: "role with text (the caller removes it after round 0)", chunk: pre + `{"role":"assistant","content":"x"},"finish_reason":null}]}`, want: true, content: "x", role: true},
		{name: "role null", chunk: pre + `{"content":"x","role":null},"finish_reason":null}]}`, want: true, content: "x"},
		{name: "reasoning", chunk: pre + `{"content":null,"reasoning_content":"think"},"finish_reason":null}]}`, want: true, reas: "think"},
		{name: "finish", chunk: pre + `{"content":"x"},"finish_reason":"stop"}]}`},
		{name: "empty finish string is none", chunk: pre + `{"content":"x"},"finish_reason":""}]}`, want: true, content: "x"},
		{name: "native finish", chunk: pre + `{"content":"x"},"finish_reason":null,"native_finish_reason":"stop"}]}`},
		{name: "tool calls", chunk: pre + `{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":null}]}`},
		{name: "tool calls null", chunk: pre + `{"content":"x","tool_calls":null},"finish_reason":null}]}`, want: true, content: "x"},
		{name: "usage object", chunk: pre + `{"content":"x"},"finish_reason":null}],"usage":{"prompt_tokens":1}}`},
		{name: "usage object with spaces", chunk: pre + `{"content":"x"},"finish_reason":null}],"usage" : {"prompt_tokens":1}}`},
		{name: "error object", chunk: pre + `{"content":""},"finish_reason":null}],"error":{"message":"x"}}`},
		{name: "second choice", chunk: pre + `{"content":"x"},"finish_reason":null},{"index":1,"delta":{"tool_calls":[]},"finish_reason":null}]}`},
		{name: "OpenRouter's empty reasoning_details", chunk: pre + `{"role":"assistant","content":" is","reasoning":null,"reasoning_details":[]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`, want: true, content: " is", role: true},
		{name: "empty reasoning_details spaced", chunk: pre + `{"content":"x","reasoning_details":[ ]},"finish_reason":null}]}`, want: true, content: "x"},
		{name: "reasoning_details with a detail", chunk: pre + `{"content":"","reasoning_details":[{"type":"reasoning.text","text":"t"}]},"finish_reason":null}]}`},
		{name: "reasoning_details unclosed", chunk: pre + `{"content":"x","reasoning_details":[,"finish_reason":null}]}`},
		{name: "another empty array", chunk: pre + `{"content":"x","annotations":[]},"finish_reason":null}]}`},
		{name: "empty tool_calls", chunk: pre + `{"content":"x","tool_calls":[]},"finish_reason":null}]}`},
		{name: "nested value in delta", chunk: pre + `{"content":"x","extra_content":{"google":{}}},"finish_reason":null}]}`},
		{name: "escaped key", chunk: pre + `{"content":"x"},"finish\u005freason":"stop"}]}`},
		{name: "escaped letter in text: scanText refuses it (cheaply conservative)", chunk: pre + `{"content":"\u0041"},"finish_reason":null}]}`,
			afterOK: &yes, content: `\u0041`},
		{name: "missing comma", chunk: pre + `{"role":"assistant" "content":"x"},"finish_reason":null}]}`},
		{name: "trailing comma", chunk: pre + `{"content":"x",},"finish_reason":null}]}`},
		{name: "empty delta", chunk: pre + `{ },"finish_reason":null}]}`, want: true},
		{name: "escaped non-ASCII in text", chunk: pre + `{"content":"caf\u00e9 \u4e2d"},"finish_reason":null}]}`, want: true, content: `caf\u00e9 \u4e2d`},
		{name: "an index but 0 after the delta", chunk: pre + `{"content":"x"},"finish_reason":null,"index":1}]}`},
		// The choice's index named twice: the slow path refuses it
		// (ambiguousChunk), so the text path must not take it.
		{name: "index 0 again after the delta", chunk: pre + `{"content":"x"},"finish_reason":null,"index" : 0}]}`},
		{name: "the word index in text", chunk: pre + `{"content":"\"index\": 1, index"},"finish_reason":null}]}`, want: true, content: `\"index\": 1, index`},
		{name: "the string index in text", chunk: pre + `{"content":"index"},"finish_reason":null}]}`, want: true, content: "index"},
	}
	base := pre + `{"content":"base"},"logprobs":null,"finish_reason":null}],"usage":null}`
	btc, ok := scanText(base)
	if !ok {
		t.Fatal("base chunk refused")
	}
	n := btc.delta
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, got textChunk, ok bool) {
				want := tc.want
				if strings.HasPrefix(how, "scanTextAfter") && tc.afterOK != nil {
					want = *tc.afterOK
				}
				if ok != want {
					t.Fatalf("%s: ok = %v; want %v", how, ok, want)
				}
				if ok && (got.content != tc.content || got.reasoning != tc.reas || got.role != tc.role) {
					t.Errorf("%s: got %+v; want content %q reasoning %q role %v", how, got, tc.content, tc.reas, tc.role)
				}
			}
			got, ok := scanText(tc.chunk)
			check("scanText", got, ok)
			if !strings.HasPrefix(tc.chunk, base[:n]) {
				t.Fatal("test chunk does not share the prefix")
			}
			got, ok = scanTextAfter(tc.chunk, n, nil)
			check("scanTextAfter", got, ok)
			// With the base chunk's template learnt, the answer is the same.
			var tail template
			tail.learn(base[btc.deltaEnd:])
			got, ok = scanTextAfter(tc.chunk, n, &tail)
			check("scanTextAfter with a template", got, ok)
		})
	}
}

func TestTemplate(t *testing.T) {
	const learnt = `,"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k3J9"}`
	tests := []struct {
		name string
		rest string
		want bool
	}{
		{"same", learnt, true},
		{"another obfuscation", `,"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Qz7\"LmW2pX"}`, true},
		{"empty obfuscation", `,"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":""}`, true},
		{"finish", `,"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"k3J9"}`, false},
		{"usage", `,"logprobs":null,"finish_reason":null}],"usage":{"total_tokens":1},"obfuscation":"k3J9"}`, false},
		{"extra member after the hole", `,"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k3J9","usage":{}}`, false},
		{"string where null was", `,"logprobs":"x","finish_reason":null}],"usage":null,"obfuscation":"k3J9"}`, false},
		{"truncated", `,"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k3`, false},
		{"trailing bytes", learnt + " ", false},
	}
	var tmpl template
	tmpl.learn(learnt)
	if len(tmpl.holes) != 1 {
		t.Fatalf("holes = %v; want one, for the obfuscation value", tmpl.holes)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tmpl.match(tc.rest); got != tc.want {
				t.Errorf("match(%s) = %v; want %v", tc.rest, got, tc.want)
			}
		})
	}
	// A finish_reason's value is never a hole, even when a string was learnt.
	tmpl.learn(`,"finish_reason":"stop","error":"x","model":"m"}`)
	if len(tmpl.holes) != 1 || tmpl.match(`,"finish_reason":"fine","error":"x","model":"m"}`) || tmpl.match(`,"finish_reason":"stop","error":"y","model":"m"}`) {
		t.Errorf("finish_reason or error values became holes: %q %v", tmpl.lits, tmpl.holes)
	}
}

// TestTextPathMatchesSlowPath holds the text path to the slow one on
// providers' streams (OpenRouter's "reasoning_details":[] in every delta
// among them): each chunk once as it comes, once with a member appended
// that sends it down the slow path (an escaped letter, hasEscapedLetter)
// and is taken out of what comes back. The outputs, the round's result
// and the chunks' path must agree.
func TestTextPathMatchesSlowPath(t *testing.T) {
	const poison = `,"zz":"\u0041"`
	const or = `{"id":"gen-1759420128-LjBsuYJf6lKeyy66nQs9","provider":"DeepInfra","model":"z-ai/glm-4.5","object":"chat.completion.chunk","created":1759420128,"choices":[{"index":0,"delta":`
	streams := map[string]string{"openrouter_text (inline)": "data: " + or + `{"role":"assistant","content":"","reasoning":null,"reasoning_details":[]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}` + "\n\n" +
		"data: " + or + `{"role":"assistant","content":"","reasoning":"Think","reasoning_details":[{"type":"reasoning.text","text":"Think","format":"unknown","index":0}]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}` + "\n\n" +
		"data: " + or + `{"role":"assistant","content":" is","reasoning":null,"reasoning_details":[]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}` + "\n\n" +
		"data: " + or + `{"role":"assistant","content":" it","reasoning":null,"reasoning_details":[ ]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}` + "\n\n" +
		"data: " + or + `{"role":"assistant","content":"","reasoning":null,"reasoning_details":[]},"finish_reason":"stop","native_finish_reason":"stop","logprobs":null}]}` + "\n\n" +
		"data: " + or + `{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}` + "\n\n"}
	for _, name := range fixtureNames(t) {
		streams[name] = string(readFixture(t, name))
	}
	for name, stream := range streams {
		t.Run(name, func(t *testing.T) {
			var events []string
			for _, ev := range strings.Split(stream, "\n\n") {
				ev = strings.TrimSpace(ev)
				if d, ok := strings.CutPrefix(ev, "data: "); ok && strings.HasPrefix(d, "{") {
					events = append(events, d)
				}
			}
			fast, slow := NewCapture(isPaymentName), NewCapture(isPaymentName)
			for round := range 2 {
				fast.StartRound(round, "turn-1", 1700000000)
				slow.StartRound(round, "turn-1", 1700000000)
				for _, ev := range events {
					out, err := fast.Process([]byte(ev))
					sout, serr := slow.Process([]byte(ev[:len(ev)-1] + poison + "}"))
					sout = []byte(strings.Replace(string(sout), poison, "", 1))
					if (err == nil) != (serr == nil) || string(out) != string(sout) {
						t.Fatalf("round %d, %s:\ntext path %s (%v)\nslow path %s (%v)", round, ev, out, err, sout, serr)
					}
				}
				// The slow side's finish chunk is kept with the member.
				fr, sr := fast.EndRound(), slow.EndRound()
				sr.FinishChunk = []byte(strings.Replace(string(sr.FinishChunk), poison, "", 1))
				if !reflect.DeepEqual(fr, sr) {
					t.Fatalf("round %d: text path's result %+v\nslow path's %+v", round, fr, sr)
				}
			}
		})
	}
}

// TestScanTextRefusesAnotherChoice: a text chunk of a choice other than the
// first (a provider's second choice, asked for or not) takes the slow path,
// which reads its index: the text path took its text for the round's.
func TestScanTextRefusesAnotherChoice(t *testing.T) {
	tests := []struct {
		index string
		want  bool
	}{
		{`0`, true},
		{` 0 `, true},
		{`1`, false},
		{`10`, false},
		{`00`, false},
		{`0.0`, false},
		{`"0"`, false},
	}
	for _, tc := range tests {
		chunk := `{"id":"a","choices":[{"index":` + tc.index + `,"delta":{"content":"x"},"finish_reason":null}]}`
		if _, ok := scanText(chunk); ok != tc.want {
			t.Errorf("scanText(%s) = %v; want %v", chunk, ok, tc.want)
		}
	}
}

// TestDeltaField: each member ambiguousChunk checks has its own bit, the
// bit of its index in deltaFields; the same name in another case is -1;
// any other name (a prefix, a longer name, another member) is 0.
func TestDeltaField(t *testing.T) {
	for i, f := range deltaFields {
		if got := deltaField(f); got != 1<<i {
			t.Errorf("deltaField(%q) = %#x; want %#x", f, got, 1<<i)
		}
		for _, v := range []string{strings.ToUpper(f), strings.ToUpper(f[:1]) + f[1:], f[:len(f)-1] + strings.ToUpper(f[len(f)-1:])} {
			if got := deltaField(v); got != -1 {
				t.Errorf("deltaField(%q) = %d; want -1", v, got)
			}
		}
		for _, v := range []string{f[:len(f)-1], f + "s", "x" + f[1:]} {
			if got := deltaField(v); got != 0 {
				t.Errorf("deltaField(%q) = %d; want 0", v, got)
			}
		}
	}
	for _, k := range []string{"", "name", "audio", "annotations", "REASONING_DETAILZ"} {
		if got := deltaField(k); got != 0 {
			t.Errorf("deltaField(%q) = %d; want 0", k, got)
		}
	}
}

// TestErrorBesideTextIsTheRoundsError: a chunk whose top-level "error" is
// not null and not an object (a string, a number, true, an array, "")
// beside a text delta is the round's error, as the slow path reads it
// (any "error" but null): not passed on as text, kept for EndRound. The
// text path looked for an error object only, so after a first chunk such
// a chunk reached the bot as text and the round ended as if no error had
// come.
func TestErrorBesideTextIsTheRoundsError(t *testing.T) {
	const first = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`
	const pre = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"error":`
	for _, v := range []string{`"upstream overloaded"`, `""`, `500`, `true`, `["x"]`, ` "spaced"`} {
		for _, after := range []bool{false, true} {
			c := NewCapture(isPaymentName)
			c.StartRound(0, "turn-1", 0)
			if _, err := c.Process([]byte(first)); err != nil {
				t.Fatal(err)
			}
			if after { // a text chunk the text path learnt its prefix from
				if out, err := c.Process([]byte(pre + `null}`)); err != nil || out == nil {
					t.Fatalf("a text chunk with a null error: %s, %v", out, err)
				}
			}
			out, err := c.Process([]byte(pre + v + `}`))
			res := c.EndRound()
			if err != nil || out != nil || string(res.Error) != strings.TrimSpace(v) {
				t.Errorf("error %s (after a learnt prefix %v): Process returned %s, %v; the round's error %s; want nothing returned and the error kept",
					v, after, out, err, res.Error)
			}
		}
	}
}

// TestTurnIDReplacesAnIDWithAnEscape: a later round's text chunks go out
// under the turn's id, whatever the provider's id holds: one with an
// escaped quote (valid JSON) was cut at that quote, and the rest of it
// left after the turn's id made the chunk the bot got invalid JSON
// ({"id":"turn-1"b",…}).
func TestTurnIDReplacesAnIDWithAnEscape(t *testing.T) {
	c := laterRound(t)
	for _, ev := range []string{
		`{"id":"a\"b","choices":[{"index":0,"delta":{"role":"assistant"}}]}`,
		`{"id":"a\"b","choices":[{"index":0,"delta":{"content":"x"}}]}`,
		`{"id":"a\"b","choices":[{"index":0,"delta":{"content":"y"}}]}`,
		`{"id":"a\\","choices":[{"index":0,"delta":{"content":"z"}}]}`,
	} {
		out, err := c.Process([]byte(ev))
		if err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
		if out != nil && (!gjson.ValidBytes(out) || gjson.GetBytes(out, "id").String() != "turn-1") {
			t.Errorf("%s went out as %s; want valid JSON under the turn's id", ev, out)
		}
	}
}

// TestTurnStampsTheTopLevelIDAndCreated: a later round's text chunks go
// out under the turn's id and created, in their top-level members, as the
// slow path stamps them, not in a member of that name nested in another
// value (a provider's "x_meta":{"id":…}), before the delta or after it.
func TestTurnStampsTheTopLevelIDAndCreated(t *testing.T) {
	for _, ev := range []string{
		`{"id":"a","choices":[{"created":5,"index":0,"delta":{"content":"x"}}],"created":1}`,
		`{"id":"a","x_meta":{"created":5},"choices":[{"index":0,"delta":{"content":"x"}}],"created":1}`,
		`{"choices":[{"index":0,"delta":{"content":"x"}}],"x_meta":{"id":"req_1","created":5},"created":1,"id":"a"}`,
		`{"choices":[{"index":0,"delta":{"content":"x"},"logprobs":{"id":"q"}}],"created":1,"id":"a"}`,
	} {
		c := laterRound(t)
		for range 2 { // as scanText reads it, then as scanTextAfter
			out, err := c.Process([]byte(ev))
			if err != nil || !gjson.ValidBytes(out) || gjson.GetBytes(out, "id").String() != "turn-1" || gjson.GetBytes(out, "created").Int() != 1700000000 ||
				strings.Count(string(out), "turn-1") != 1 || strings.Count(string(out), "1700000000") != 1 {
				t.Errorf("%s went out as %s, %v; want the turn's id and created in the top-level members only", ev, out, err)
			}
		}
	}
}

// TestTurnStampsTheIDTheBotReads: a later round's chunk that names its
// id or created twice at the top level goes out with the turn's in the
// copy the bot's parser reads (the last, as Go's encoding/json and
// JSON.parse take it), as the slow path stamps it: the text path stamped
// the first and the bot read the provider's id in a round that goes out
// under the turn's.
func TestTurnStampsTheIDTheBotReads(t *testing.T) {
	for _, evs := range [][]string{
		{`{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}],"id":"b"}`},
		{`{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}],"x":{"id":"n"},"id":"b"}`},
		{`{"id":"a","created":1,"choices":[{"index":0,"delta":{"content":"x"}}],"created":2}`},
		{`{"created":1,"choices":[{"index":0,"delta":{"content":"x"}}],"id":"a","id":"b"}`},
		{`{"choices":[{"index":0,"delta":{"content":"x"}}],"created":1,"created":2,"id":"a"}`},
		// After a prefix learnt from a chunk without the second copy.
		{`{"id":"a","created":1,"choices":[{"index":0,"delta":{"content":"x"}}]}`,
			`{"id":"a","created":1,"choices":[{"index":0,"delta":{"content":"y"}}],"id":"b","created":2}`},
	} {
		c := laterRound(t)
		for _, ev := range append(evs, evs[len(evs)-1]) { // the last as scanText reads it, then as scanTextAfter
			out, err := c.Process([]byte(ev))
			var got struct {
				ID      string
				Created int64
			}
			if err != nil || json.Unmarshal(out, &got) != nil || got.ID != "turn-1" || strings.Contains(ev, "created") && got.Created != 1700000000 {
				t.Errorf("%s went out as %s, %v; the bot reads id %q, created %d; want the turn's", ev, out, err, got.ID, got.Created)
			}
		}
	}
}

// laterRound is a Capture in round 1 of turn "turn-1" (created
// 1700000000), after a round 0 whose role went out: its chunks go out
// under the turn's id and created.
func laterRound(t *testing.T) *Capture {
	t.Helper()
	c := NewCapture(isPaymentName)
	c.StartRound(0, "turn-1", 1700000000)
	if _, err := c.Process([]byte(`{"id":"a","choices":[{"index":0,"delta":{"role":"assistant"}}]}`)); err != nil {
		t.Fatal(err)
	}
	c.EndRound()
	c.StartRound(1, "turn-1", 1700000000)
	return c
}
