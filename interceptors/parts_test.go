package interceptors

import "testing"

// TestCaptureContentParts: a round whose content came as parts (Mistral's
// thinking) reports them merged as a non-stream answer carries them: a
// delta that continues the trailing part of its type extends it, the text
// streamed as strings takes its place among them as text (escapes kept),
// and a part of another type is kept as it came. A round of string text
// alone reports none.
func TestCaptureContentParts(t *testing.T) {
	const head = `{"id":"m1","object":"chat.completion.chunk","created":1,"model":"magistral","choices":[{"index":0,"delta":`
	think := func(s string) string {
		return head + `{"content":[{"type":"thinking","thinking":[{"type":"text","text":"` + s + `"}]}]},"finish_reason":null}]}`
	}
	text := func(s string) string { return head + `{"content":"` + s + `"},"finish_reason":null}]}` }
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"thinking in pieces, then text", []string{think("A "), think("b."), text("Say \\\"hi\\\""), text(".")},
			`[{"type":"thinking","thinking":[{"type":"text","text":"A b."}]},{"type":"text","text":"Say \"hi\"."}]`},
		{"text before and after the thinking", []string{text("One. "), think("hm"), text("Two.")},
			`[{"type":"text","text":"One. "},{"type":"thinking","thinking":[{"type":"text","text":"hm"}]},{"type":"text","text":"Two."}]`},
		{"text parts join the text", []string{think("x"), head + `{"content":[{"type":"text","text":"a"}]},"finish_reason":null}]}`, text("b")},
			`[{"type":"thinking","thinking":[{"type":"text","text":"x"}]},{"type":"text","text":"ab"}]`},
		{"another part kept as it came", []string{think("x"), head + `{"content":[{"type":"reference","reference_ids":[1]}]},"finish_reason":null}]}`},
			`[{"type":"thinking","thinking":[{"type":"text","text":"x"}]},{"type":"reference","reference_ids":[1]}]`},
		{"string text alone: none", []string{text("a"), text("b")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(func(string) bool { return false })
			for _, ch := range tc.chunks {
				if _, err := c.Process([]byte(ch)); err != nil {
					t.Fatal(err)
				}
			}
			if got := string(c.EndRound().ContentParts); got != tc.want {
				t.Errorf("ContentParts %s; want %s", got, tc.want)
			}
		})
	}
}
