package failover

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// patch returns the body to send to t: its "model" set to t's upstream name
// and t's provider's drop_fields removed, as raw JSON patches so every other
// byte stays as the client sent it. body itself is never modified (the next
// target needs it intact); when nothing changes, body itself is returned,
// and callers treat the result as read-only. A body that is not a JSON object (empty, a
// multipart upload on a passthrough path) is sent as is.
//
// A body without "model" gets none: a chat completion always names one
// (the proxy refuses it otherwise), and a forwarded call that names none
// (a batch, a vector store, an upload, a moderation left to the
// provider's default) is routed to the first model's targets but must
// reach them as the bot sent it (SPEC 2.2). An added model, a chat
// model's name, was refused by strict servers as an unknown member and
// obeyed by lenient ones.
func (t *target) patch(body []byte) ([]byte, error) {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return body, nil
	}
	out := body
	// gjson.Get on a view of body: GetBytes would copy the result's strings,
	// and r is only compared and measured here.
	switch r := gjson.Get(unsafeString(body), "model"); {
	case r.Exists() && r.Index > 0 && r.Index+len(r.Raw) <= len(body):
		// The usual case, spliced in one copy: sjson would find the same
		// bytes and then rebuild the body around them.
		q := t.modelJSON
		if q == nil {
			q = appendQuoted(nil, t.model)
		}
		if len(t.p.drop) == 0 && r.Raw == unsafeString(q) {
			// The client named the upstream model itself: nothing changes,
			// and the body is not copied.
			return body, nil
		}
		out = make([]byte, 0, len(body)-len(r.Raw)+len(q))
		out = append(out, body[:r.Index]...)
		out = append(out, q...)
		out = append(out, body[r.Index+len(r.Raw):]...)
	case r.Exists():
		var err error
		if out, err = sjson.SetBytesOptions(body, "model", t.model, &sjson.Options{Optimistic: true}); err != nil {
			return nil, fmt.Errorf("setting model: %w", err)
		}
	}
	var err error
	for _, f := range t.p.drop {
		out, err = sjson.DeleteBytes(out, f)
		if err != nil {
			return nil, fmt.Errorf("dropping %s: %w", f, err)
		}
	}
	return out, nil
}

// DroppedFields are the top-level request fields the answering target's
// provider lists in drop_fields: patch removed them from the body it was
// sent, so its model never received them, whatever Request.Body holds. The
// audit records a payment's sampling parameters without them. Read-only.
func (a *Response) DroppedFields() []string {
	if a == nil || a.t == nil {
		return nil
	}
	return a.t.p.cfg.DropFields
}

// Continuation modes (config providers[].continuation).
const (
	ContinuationNone       = "none"
	ContinuationPrefill    = "prefill"
	ContinuationPrefixFlag = "prefix_flag"
	// ContinuationPartialFlag is prefill with "partial": true on the
	// trailing assistant message: Qwen's (DashScope) and Kimi's (Moonshot)
	// partial mode, which refuse or ignore "prefix".
	ContinuationPartialFlag = "partial_flag"
)

// continuationFlag is the member a mode sets true on the trailing assistant
// message ("" for none).
func continuationFlag(mode string) string {
	switch mode {
	case ContinuationPrefixFlag:
		return "prefix"
	case ContinuationPartialFlag:
		return "partial"
	}
	return ""
}

// continueBody returns body with c appended as the trailing assistant
// message t's provider continues, or nil when the provider has no
// continuation mode (or there is nothing to continue).
//
// A body that already ends with an assistant message without tool calls is
// the bot's own prefix (chat prefix completion: DeepSeek, Mistral; or a
// prefill): the text sent since continues that message, so its content is
// extended in place, its other members kept, and the mode's flag ("prefix"
// or "partial") set true. Providers document one trailing assistant prefix; a
// second one after it is a conversation none of them defines. Content given
// as parts is extended in its last part when that is a text part; any other
// shape gets the continuation as a message of its own, as before.
func (t *target) continueBody(body []byte, c *Continuation) ([]byte, error) {
	if c == nil || c.Text == "" {
		return nil, nil
	}
	mode := t.p.cfg.Continuation
	if mode != ContinuationPrefill && mode != ContinuationPrefixFlag && mode != ContinuationPartialFlag {
		return nil, nil
	}
	flag := continuationFlag(mode)
	if out, ok, err := extendPrefix(body, c.Text, flag); ok || err != nil {
		return out, err
	}
	msg := []byte(`{"role":"assistant","content":`)
	msg = appendQuoted(msg, c.Text)
	if flag != "" {
		msg = append(msg, `,"`+flag+`":true`...)
	}
	msg = append(msg, '}')
	out, err := sjson.SetRawBytes(body, "messages.-1", msg)
	if err != nil {
		return nil, fmt.Errorf("appending the continuation: %w", err)
	}
	return out, nil
}

// extendPrefix appends text to the content of body's last message when that
// is an assistant message without tool calls whose content is a string (or
// parts ending with a text part); ok is false, and body untouched, for any
// other shape. flag, when not "", is the member set true on it.
func extendPrefix(body []byte, text, flag string) (out []byte, ok bool, err error) {
	n := gjson.GetBytes(body, "messages.#")
	if n.Type != gjson.Number || n.Int() == 0 {
		return nil, false, nil
	}
	path := fmt.Sprintf("messages.%d", n.Int()-1)
	last := gjson.GetBytes(body, path)
	if !last.IsObject() || last.Get("role").String() != "assistant" ||
		hasCalls(last.Get("tool_calls")) || hasCalls(last.Get("function_call")) {
		return nil, false, nil
	}
	var at, prev string
	switch content := last.Get("content"); {
	case content.Type == gjson.String:
		at, prev = path+".content", content.String()
	case content.IsArray():
		parts := content.Array()
		if len(parts) == 0 {
			return nil, false, nil
		}
		p := parts[len(parts)-1]
		if p.Get("type").String() != "text" || p.Get("text").Type != gjson.String {
			return nil, false, nil
		}
		at, prev = fmt.Sprintf("%s.content.%d.text", path, len(parts)-1), p.Get("text").String()
	default:
		return nil, false, nil
	}
	if out, err = sjson.SetBytes(body, at, prev+text); err != nil {
		return nil, true, fmt.Errorf("extending the assistant prefix: %w", err)
	}
	if flag != "" && !last.Get(flag).Bool() {
		if out, err = sjson.SetRawBytes(out, path+"."+flag, []byte("true")); err != nil {
			return nil, true, fmt.Errorf("flagging the assistant prefix: %w", err)
		}
	}
	return out, true, nil
}

// hasCalls reports whether v (a message's tool_calls or function_call) holds
// any call.
func hasCalls(v gjson.Result) bool {
	if v.IsArray() {
		return len(v.Array()) > 0
	}
	return v.Exists() && v.Type != gjson.Null
}

// appendQuoted appends s as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}
