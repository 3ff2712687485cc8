package interceptors

import (
	"errors"
	"testing"
)

// TestCaptureRefusesFoldedMembers: a chunk that names a member the capture
// reads with a key that is that name only under Unicode's simple case
// folding (the long s "ſ" folds to "s"), as Go's encoding/json, go-openai's
// parser, matches keys: the bot reads "tool_callſ" as the tool calls, and
// the capture, which reads only the exact name, held nothing. A payment
// call reached a Go bot unheld, and one the capture held was not the bot's.
// Such a chunk is ambiguous (ErrAmbiguousChunk), on the text fast path,
// on the slow path and at every level the capture reads.
func TestCaptureRefusesFoldedMembers(t *testing.T) {
	const head = `{"id":"m1","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":`
	const tail = `,"finish_reason":null}]}`
	const call = `{"index":0,"id":"c","type":"function","function":{"name":"create_order","arguments":"{}"}}`
	for name, chunk := range map[string]string{
		"tool_calls beside text":      head + `{"content":"a","tool_callſ":[` + call + `]}` + tail,
		"tool_calls alone":            head + `{"tool_callſ":[` + call + `]}` + tail,
		"reasoning beside text":       head + `{"content":"a","reaſoning":"r"}` + tail,
		"reasoning_content":           head + `{"reaſoning_content":"r","content":"a"}` + tail,
		"refusal":                     head + `{"content":"a","refuſal":"no"}` + tail,
		"arguments of a call":         head + `{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"create_order","arguments":"{}","argumentſ":"{\"sku\":\"x\"}"}}]}` + tail,
		"a finish_reason in a choice": `{"id":"m1","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null,"finiſh_reason":"stop"}]}`,
		"choices":                     `{"id":"m1","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"choiceſ":[]}`,
		"FINISH_REASON in a choice":   `{"id":"m1","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null,"FINISH_REASON":"stop"}]}`,
		"Choices":                     `{"id":"m1","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"Choices":[]}`,
		"Usage":                       `{"id":"m1","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"Usage":{"prompt_tokens":1}}`,
		"Choices before the choices":  `{"id":"m1","Choices":[],"object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`,
		"usage beside the choices":    `{"id":"m1","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"uſage":{"prompt_tokens":1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.StartRound(0, "", 0)
			// The first: the turn's role; the second teaches the fast
			// path the chunks' prefix and template.
			for _, d := range []string{`{"role":"assistant","content":"a"}`, `{"content":" a"}`} {
				if _, err := c.Process([]byte(head + d + tail)); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := c.Process([]byte(chunk)); !errors.Is(err, ErrAmbiguousChunk) {
				t.Errorf("Process = %s, %v; want ErrAmbiguousChunk", out, err)
			}
		})
	}
}

// TestCaptureRefusesFoldedCallMembers: the same on the path that takes a
// tool call's later pieces in an envelope learnt before (callPath): a
// piece whose function names "argumentſ" beside its arguments is
// ambiguous, not taken as the exact one's text.
func TestCaptureRefusesFoldedCallMembers(t *testing.T) {
	const head = `{"id":"m1","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":`
	const tail = `,"finish_reason":null}]}`
	c := NewCapture(isPaymentName)
	c.StartRound(0, "", 0)
	for _, d := range []string{
		`{"role":"assistant","content":"a"}`,
		`{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"lookup","arguments":""}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":"}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"1"}}]}`,
	} {
		if _, err := c.Process([]byte(head + d + tail)); err != nil {
			t.Fatal(err)
		}
	}
	d := `{"tool_calls":[{"index":0,"function":{"arguments":"}","argumentſ":"2}"}}]}`
	if out, err := c.Process([]byte(head + d + tail)); !errors.Is(err, ErrAmbiguousChunk) {
		t.Errorf("Process = %s, %v; want ErrAmbiguousChunk", out, err)
	}
}
