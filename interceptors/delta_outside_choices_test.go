package interceptors

import "testing"

// TestDeltaOutsideChoices: a "delta" that is no choice's (at the top level,
// beside empty choices, or inside another member of a choice) is none of
// the round's text, as the slow path reads it: the text path took it for
// a text chunk, sent it on and counted its text as the round's content and
// as sent (SentRecord.Text), which the bot's SDK never shows and a
// recovery's fresh answer would then skip.
func TestDeltaOutsideChoices(t *testing.T) {
	for _, stray := range []string{
		`{"id":"a","delta":{"content":" there"}}`,
		`{"id":"a","choices":[],"delta":{"content":" there"}}`,
		`{"id":"a","choices":[{"index":0,"x":{"delta":{"content":" there"}}}]}`,
		`{"id":"a","x":[{"delta":{"content":" there"}}],"choices":[]}`,
	} {
		t.Run(stray, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.StartRound(0, "turn", 0)
			for _, ch := range []string{
				`{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}`,
				stray,
				`{"id":"a","choices":[{"index":0,"delta":{"content":"!"}}]}`,
			} {
				out, err := c.Process([]byte(ch))
				if ch == stray && (out != nil || err != nil) {
					t.Errorf("Process(%s) = %s, %v; want nothing sent, as the slow path", ch, out, err)
				}
			}
			if r := c.EndRound(); r.Content != "hi!" || r.Sent.Text != "hi!" {
				t.Errorf("round content %q, sent %q; want %q, the choices' text alone", r.Content, r.Sent.Text, "hi!")
			}
		})
	}
}
