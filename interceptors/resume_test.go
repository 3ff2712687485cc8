package interceptors

import (
	"errors"
	"strings"
	"testing"
)

func rchunk(delta, finish string) string {
	if finish == "" {
		finish = "null"
	} else {
		finish = `"` + finish + `"`
	}
	return `{"id":"chatcmpl-new","object":"chat.completion.chunk","model":"m2","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}]}`
}

// TestResumeFilter: a fresh answer's repeat of the sent prefix is dropped,
// a straddling chunk is cut to its suffix, a departure is ErrDiverged, and
// the client's id is kept with no second role delta.
func TestResumeFilter(t *testing.T) {
	tests := []struct {
		name      string
		id        string
		text      string
		reasoning string
		skip      bool
		in        []string
		want      []string // "" : dropped
		wantErrAt int      // index of the chunk that diverges; -1 none
	}{
		{
			name: "prefix repeated across chunks, straddling chunk cut",
			text: "Hello, wor", skip: true,
			in: []string{
				rchunk(`{"role":"assistant","content":""}`, ""),
				rchunk(`{"content":"Hello"}`, ""),
				rchunk(`{"content":", w"}`, ""),
				rchunk(`{"content":"orld!"}`, ""),
				rchunk(`{"content":" Bye"}`, ""),
				rchunk(`{}`, "stop"),
			},
			want: []string{
				rchunk(`{"role":"assistant","content":""}`, ""),
				"",
				"",
				rchunk(`{"content":"ld!"}`, ""),
				rchunk(`{"content":" Bye"}`, ""),
				rchunk(`{}`, "stop"),
			},
			wantErrAt: -1,
		},
		{
			name: "same id kept and role removed",
			id:   "chatcmpl-first", text: "Hi", skip: true,
			in: []string{
				rchunk(`{"role":"assistant","content":"Hi"}`, ""),
				rchunk(`{"content":" there"}`, ""),
			},
			want: []string{
				"",
				strings.Replace(rchunk(`{"content":" there"}`, ""), "chatcmpl-new", "chatcmpl-first", 1),
			},
			wantErrAt: -1,
		},
		{
			name: "a continued stream only gets the id and loses its role",
			id:   "chatcmpl-first", text: "Hi", skip: false,
			in: []string{
				rchunk(`{"role":"assistant","content":" there"}`, ""),
			},
			want: []string{
				strings.Replace(rchunk(`{"content":" there"}`, ""), "chatcmpl-new", "chatcmpl-first", 1),
			},
			wantErrAt: -1,
		},
		{
			name: "multi-byte text straddling the end",
			text: "价格是", skip: true,
			in:        []string{rchunk(`{"content":"价格"}`, ""), rchunk(`{"content":"是49元"}`, "")},
			want:      []string{"", rchunk(`{"content":"49元"}`, "")},
			wantErrAt: -1,
		},
		{
			name: "reasoning then text",
			text: "An", reasoning: "think", skip: true,
			in: []string{
				rchunk(`{"reasoning_content":"thi"}`, ""),
				rchunk(`{"reasoning_content":"nk"}`, ""),
				rchunk(`{"content":"Answer"}`, ""),
			},
			want:      []string{"", "", rchunk(`{"content":"swer"}`, "")},
			wantErrAt: -1,
		},
		{
			name: "different text diverges",
			text: "Hello, wor", skip: true,
			in:        []string{rchunk(`{"content":"Hello"}`, ""), rchunk(`{"content":", there"}`, "")},
			want:      []string{""},
			wantErrAt: 1,
		},
		{
			name: "shorter answer diverges at its finish",
			text: "Hello, wor", skip: true,
			in:        []string{rchunk(`{"content":"Hello"}`, ""), rchunk(`{}`, "stop")},
			want:      []string{""},
			wantErrAt: 1,
		},
		{
			name: "a tool call before the prefix is matched diverges",
			text: "Hello", skip: true,
			in:        []string{rchunk(`{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}`, "")},
			wantErrAt: 0,
		},
		{
			name: "a tool call after the prefix passes",
			text: "Hello", skip: true,
			in: []string{
				rchunk(`{"content":"Hello"}`, ""),
				rchunk(`{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}`, ""),
			},
			want:      []string{"", rchunk(`{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}`, "")},
			wantErrAt: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewResume(tc.id, tc.text, tc.reasoning, tc.skip)
			checkResume(t, r, tc.in, tc.want, tc.wantErrAt)
		})
	}
}

// TestResumeReasoningMembers: a fresh answer's reasoning the client already
// has is dropped from every member a provider sends it under at once
// (reasoning_content with reasoning; OpenRouter's reasoning with
// reasoning_details), and a chunk straddling the end of the sent reasoning
// is cut the same way in each. What cannot be cut plainly (the two members
// disagree, reasoning_details holds more than the one text) diverges: the
// client is never sent its reasoning twice.
func TestResumeReasoningMembers(t *testing.T) {
	const text, reasoning = "An", "think"
	tests := []struct {
		name      string
		in        []string
		want      []string // "" : dropped
		wantErrAt int
	}{
		{
			name: "reasoning_content and reasoning inside the prefix",
			in: []string{
				rchunk(`{"reasoning_content":"think","reasoning":"think"}`, ""),
				rchunk(`{"content":"Answer"}`, ""),
			},
			want:      []string{"", rchunk(`{"content":"swer"}`, "")},
			wantErrAt: -1,
		},
		{
			name: "reasoning and reasoning_details inside the prefix",
			in: []string{
				rchunk(`{"reasoning":"thi","reasoning_details":[{"type":"reasoning.text","text":"thi","index":0}]}`, ""),
				rchunk(`{"reasoning":"nk","reasoning_details":[{"type":"reasoning.text","text":"nk","index":0}]}`, ""),
				rchunk(`{"content":"Answer"}`, ""),
			},
			want:      []string{"", "", rchunk(`{"content":"swer"}`, "")},
			wantErrAt: -1,
		},
		{
			name: "a straddling chunk is cut in every member",
			in: []string{
				rchunk(`{"reasoning_content":"thinking","reasoning":"thinking","reasoning_details":[{"type":"reasoning.text","text":"thinking","index":0}]}`, ""),
				rchunk(`{"content":"Answer"}`, ""),
			},
			want: []string{
				rchunk(`{"reasoning_content":"ing","reasoning":"ing","reasoning_details":[{"type":"reasoning.text","text":"ing","index":0}]}`, ""),
				rchunk(`{"content":"swer"}`, ""),
			},
			wantErrAt: -1,
		},
		{
			name: "a signature inside the prefix is kept, its text emptied",
			in: []string{
				rchunk(`{"reasoning":"think","reasoning_details":[{"type":"reasoning.text","text":"think","signature":"sig","index":0}]}`, ""),
				rchunk(`{"content":"An"}`, ""),
			},
			want:      []string{rchunk(`{"reasoning_details":[{"type":"reasoning.text","text":"","signature":"sig","index":0}]}`, ""), ""},
			wantErrAt: -1,
		},
		{
			name: "reasoning after the prefix passes whole",
			in: []string{
				rchunk(`{"reasoning":"think"}`, ""),
				rchunk(`{"content":"An"}`, ""),
				rchunk(`{"reasoning":"more","reasoning_details":[{"type":"reasoning.text","text":"more","index":0}]}`, ""),
			},
			want:      []string{"", "", rchunk(`{"reasoning":"more","reasoning_details":[{"type":"reasoning.text","text":"more","index":0}]}`, "")},
			wantErrAt: -1,
		},
		{
			name:      "members that disagree diverge",
			in:        []string{rchunk(`{"reasoning_content":"think","reasoning":"other"}`, "")},
			wantErrAt: 0,
		},
		{
			name:      "reasoning_details that is not the one text diverges",
			in:        []string{rchunk(`{"reasoning":"think","reasoning_details":[{"type":"reasoning.text","text":"th","index":0},{"type":"reasoning.text","text":"ink","index":0}]}`, "")},
			wantErrAt: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkResume(t, NewResume("", text, reasoning, true), tc.in, tc.want, tc.wantErrAt)
		})
	}
}

func callChunk(entries string) string { return rchunk(`{"tool_calls":[`+entries+`]}`, "") }

// TestResumeCalls: a fresh answer repeating tool calls the client already
// (partly) received reaches the client as the rest of those calls, under
// the client's indexes, without a second id or name; its new calls are
// numbered after them; any departure is ErrDiverged.
func TestResumeCalls(t *testing.T) {
	weather := ToolCall{Index: 0, ID: "call_w1", Name: "get_weather", Arguments: `{"city":`}
	isPay := func(n string) bool { return n == "create_order" }
	tests := []struct {
		name      string
		text      string
		calls     []ToolCall
		in        []string
		want      []string // "" : dropped
		wantErrAt int
	}{
		{
			name: "arguments straddling the sent part, split elsewhere",
			text: "Checking. ", calls: []ToolCall{weather},
			in: []string{
				rchunk(`{"role":"assistant","content":"Checking. "}`, ""),
				callChunk(`{"index":0,"id":"call_f9","type":"function","function":{"name":"get_weather","arguments":""}}`),
				callChunk(`{"index":0,"function":{"arguments":"{\"ci"}}`),
				callChunk(`{"index":0,"function":{"arguments":"ty\":\"Par"}}`),
				callChunk(`{"index":0,"function":{"arguments":"is\"}"}}`),
				rchunk(`{}`, "tool_calls"),
			},
			want: []string{
				"", // the role and the repeated text: nothing left
				"",
				"",
				strings.Replace(callChunk(`{"index":0,"function":{"arguments":"\"Par"}}`), "chatcmpl-new", "chatcmpl-first", 1),
				strings.Replace(callChunk(`{"index":0,"function":{"arguments":"is\"}"}}`), "chatcmpl-new", "chatcmpl-first", 1),
				strings.Replace(rchunk(`{}`, "tool_calls"), "chatcmpl-new", "chatcmpl-first", 1),
			},
			wantErrAt: -1,
		},
		{
			name:  "escapes and a surrogate pair split across fragments",
			calls: []ToolCall{{Index: 2, ID: "c", Name: "note", Arguments: "{\"t\":\"a\\\"\n😀"}},
			in: []string{
				callChunk(`{"index":0,"id":"x","type":"function","function":{"name":"note","arguments":"{\"t\":\"a\\\"\n\ud83d"}}`),
				callChunk(`{"index":0,"function":{"arguments":"\ude00b\"}"}}`),
			},
			want:      []string{"", strings.Replace(callChunk(`{"index":2,"function":{"arguments":"b\"}"}}`), "chatcmpl-new", "chatcmpl-first", 1)},
			wantErrAt: -1,
		},
		{
			name:  "a new call after the sent ones gets the next index, a payment call is numbered aside",
			calls: []ToolCall{{Index: 0, ID: "c0", Name: "get_weather", Arguments: `{"city":"Paris"}`}},
			in: []string{
				callChunk(`{"index":0,"id":"p","type":"function","function":{"name":"create_order","arguments":"{}"}}`),
				callChunk(`{"index":1,"id":"x","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`),
				callChunk(`{"index":2,"id":"y","type":"function","function":{"name":"get_time","arguments":"{}"}}`),
			},
			want: []string{
				strings.Replace(callChunk(`{"index":1,"id":"p","type":"function","function":{"name":"create_order","arguments":"{}"}}`), "chatcmpl-new", "chatcmpl-first", 1),
				"",
				strings.Replace(callChunk(`{"index":2,"id":"y","type":"function","function":{"name":"get_time","arguments":"{}"}}`), "chatcmpl-new", "chatcmpl-first", 1),
			},
			wantErrAt: -1,
		},
		{
			name: "another tool diverges", calls: []ToolCall{weather},
			in:        []string{callChunk(`{"index":0,"id":"x","type":"function","function":{"name":"get_forecast","arguments":""}}`)},
			wantErrAt: 0,
		},
		{
			name: "other arguments diverge", calls: []ToolCall{weather},
			in: []string{
				callChunk(`{"index":0,"id":"x","type":"function","function":{"name":"get_weather","arguments":"{\"c"}}`),
				callChunk(`{"index":0,"function":{"arguments":"ountry\":"}}`),
			},
			want:      []string{""},
			wantErrAt: 1,
		},
		{
			name: "shorter arguments then a finish diverge", calls: []ToolCall{weather},
			in: []string{
				callChunk(`{"index":0,"id":"x","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}`),
				rchunk(`{}`, "tool_calls"),
			},
			want:      []string{""},
			wantErrAt: 1,
		},
		{
			name: "shorter arguments then another call diverge", calls: []ToolCall{weather},
			in: []string{
				callChunk(`{"index":0,"id":"x","type":"function","function":{"name":"get_weather","arguments":"{}"}}`),
			},
			wantErrAt: 0,
		},
		{
			name: "text beyond the sent text diverges", text: "Checking. ", calls: []ToolCall{weather},
			in:        []string{rchunk(`{"content":"Checking. Wait."}`, "")},
			wantErrAt: 0,
		},
		{
			name: "a call not named in its first entry cannot be matched", calls: []ToolCall{weather},
			in:        []string{callChunk(`{"index":0,"function":{"arguments":"{"}}`)},
			wantErrAt: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewResume("chatcmpl-first", tc.text, "", true).WithCalls(tc.calls, isPay)
			checkResume(t, r, tc.in, tc.want, tc.wantErrAt)
		})
	}
}

// TestCaptureContinueCalls: after ContinueCalls, a recovery attempt's rest
// of a sent client call (as Resume passes it: the client's index, no id or
// name) reaches the client under that index, a new client call gets the
// next index, and the round reports each whole under the first id.
func TestCaptureContinueCalls(t *testing.T) {
	c := NewCapture(isPaymentName)
	first := []string{
		rchunk(`{"role":"assistant","content":"Hi. "}`, ""),
		callChunk(`{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}`),
	}
	for _, ch := range first {
		if _, err := c.Process([]byte(ch)); err != nil {
			t.Fatal(err)
		}
	}
	cut := c.EndRound()
	if len(cut.Sent.Calls) != 1 || cut.Sent.Calls[0].Arguments != `{"city":` {
		t.Fatalf("sent calls %+v; want get_weather with {\"city\":", cut.Sent.Calls)
	}
	c.StartRound(1, "chatcmpl-turn", 0)
	c.ContinueCalls(cut.Sent.Calls)
	r := NewResume("", cut.Sent.Text, "", true).WithCalls(cut.Sent.Calls, isPaymentName)
	fresh := []string{
		rchunk(`{"role":"assistant","content":"Hi. "}`, ""),
		callChunk(`{"index":0,"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`),
		callChunk(`{"index":1,"id":"call_c","type":"function","function":{"name":"get_time","arguments":"{}"}}`),
		rchunk(`{}`, "tool_calls"),
	}
	got := resumeThrough(t, r, c, fresh)
	want := []string{
		strings.Replace(callChunk(`{"index":0,"function":{"arguments":"\"Paris\"}"}}`), "chatcmpl-new", "chatcmpl-turn", 1),
		strings.Replace(callChunk(`{"index":1,"id":"call_c","type":"function","function":{"name":"get_time","arguments":"{}"}}`), "chatcmpl-new", "chatcmpl-turn", 1),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("client got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	res := c.EndRound()
	wantCalls := []ToolCall{
		{Index: 0, ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`},
		{Index: 1, ID: "call_c", Name: "get_time", Arguments: "{}"},
	}
	checkCalls(t, "client calls", res.ClientCalls, wantCalls)
}

// resumeThrough feeds a recovery attempt's chunks through r and then c, as
// a turn does, and returns what reaches the client; a chunk r finds
// diverging fails the test.
func resumeThrough(t *testing.T, r *Resume, c *Capture, chunks []string) []string {
	t.Helper()
	var got []string
	for _, ch := range chunks {
		data, err := r.Filter([]byte(ch))
		if err != nil {
			t.Fatalf("filter %s: %v; want it resumed", ch, err)
		}
		if data == nil {
			continue
		}
		out, err := c.Process(data)
		if err != nil {
			t.Fatal(err)
		}
		if out != nil {
			got = append(got, string(out))
		}
	}
	return got
}

// checkResume feeds the chunks in through r: each output must be the
// matching want, and the chunk at wantErrAt (-1: none) must diverge.
func checkResume(t *testing.T, r *Resume, in, want []string, wantErrAt int) {
	t.Helper()
	for i, c := range in {
		out, err := r.Filter([]byte(c))
		if i == wantErrAt {
			if !errors.Is(err, ErrDiverged) {
				t.Fatalf("chunk %d: got %s, %v; want ErrDiverged", i, out, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if i < len(want) && string(out) != want[i] {
			t.Errorf("chunk %d: got %s; want %s", i, out, want[i])
		}
	}
	if wantErrAt >= 0 {
		t.Errorf("no divergence; want one at chunk %d", wantErrAt)
	}
	if r.Matching() {
		t.Errorf("still matching after the stream")
	}
}

// TestCaptureContinueCustomCall: a stream cut after the bot received part
// of a call to one of its custom tools is resumed as a function call is:
// the fresh answer's repeat of the call is matched by its custom name, and
// the rest of its input reaches the bot under the sent index, in "custom".
// It gave up as diverged, ending the bot's stream with an error.
func TestCaptureContinueCustomCall(t *testing.T) {
	c := NewCapture(isPaymentName)
	if _, err := c.Process([]byte(callChunk(`{"index":0,"id":"call_a","type":"custom","custom":{"name":"run_sql","input":"SELECT"}}`))); err != nil {
		t.Fatal(err)
	}
	cut := c.EndRound()
	c.StartRound(1, "chatcmpl-turn", 0)
	c.ContinueCalls(cut.Sent.Calls)
	r := NewResume("", cut.Sent.Text, "", true).WithCalls(cut.Sent.Calls, isPaymentName)
	got := resumeThrough(t, r, c, []string{
		callChunk(`{"index":0,"id":"call_b","type":"custom","custom":{"name":"run_sql","input":"SELECT 1"}}`),
		rchunk(`{}`, "tool_calls"),
	})
	want := strings.Replace(callChunk(`{"index":0,"custom":{"input":" 1"}}`), "chatcmpl-new", "chatcmpl-turn", 1)
	if len(got) == 0 || got[0] != want {
		t.Errorf("client got\n%s\nwant first\n%s", strings.Join(got, "\n"), want)
	}
	res := c.EndRound()
	checkCalls(t, "client calls", res.ClientCalls, []ToolCall{{Index: 0, ID: "call_a", Name: "run_sql", Arguments: "SELECT 1", Custom: true}})
}

// TestResumeRefusal: a refusal the client already received (delta.refusal)
// is matched as the text is: its repeat is dropped, a chunk straddling its
// end is cut to the rest, and another refusal, or text beyond the sent text
// while the sent refusal is not yet repeated (and the other way round),
// diverges: the client never reads its refusal twice.
func TestResumeRefusal(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		in        []string
		want      []string // "" : dropped
		wantErrAt int
	}{
		{
			name: "refusal repeated, the rest passed",
			in: []string{
				rchunk(`{"refusal":"I can"}`, ""),
				rchunk(`{"refusal":"'t do that. Sorry."}`, ""),
				rchunk(`{}`, "stop"),
			},
			want:      []string{"", rchunk(`{"refusal":" Sorry."}`, ""), rchunk(`{}`, "stop")},
			wantErrAt: -1,
		},
		{
			name: "text then refusal",
			text: "Well. ",
			in: []string{
				rchunk(`{"content":"Well. "}`, ""),
				rchunk(`{"refusal":"I can't do that. No."}`, ""),
			},
			want:      []string{"", rchunk(`{"refusal":" No."}`, "")},
			wantErrAt: -1,
		},
		{
			name:      "another refusal",
			in:        []string{rchunk(`{"refusal":"I won't"}`, "")},
			wantErrAt: 0,
		},
		{
			name:      "an answer where the client has a refusal",
			in:        []string{rchunk(`{"content":"Sure!"}`, "")},
			wantErrAt: 0,
		},
		{
			name:      "finished before repeating the refusal",
			in:        []string{rchunk(`{"refusal":"I can"}`, ""), rchunk(`{}`, "stop")},
			want:      []string{""},
			wantErrAt: 1,
		},
		{
			name:      "more refusal before the sent text",
			text:      "Well. ",
			in:        []string{rchunk(`{"refusal":"I can't do that. No."}`, "")},
			wantErrAt: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewResume("", tc.text, "", true).WithRefusal("I can't do that.")
			checkResume(t, r, tc.in, tc.want, tc.wantErrAt)
		})
	}
}
