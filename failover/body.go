package failover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonscan"
)

// patch returns the body to send to t: its "model" set to t's upstream name
// and t's provider's drop_fields removed, as raw JSON patches so every other
// byte stays as the client sent it. body itself is never modified (the next
// target needs it intact); when nothing changes, body itself is returned,
// and callers treat the result as read-only. A body that is not a JSON object (empty, a
// multipart upload on a passthrough path) is sent as is.
//
// named says the request named its model (Request.Model): only then is
// "model" set. A forwarded call that names none (a batch, a vector store,
// an upload, a moderation left to the provider's default), whether
// without "model" or with one that names no model ("", null, a number),
// is routed to the first model's targets but must reach them as the bot
// sent it (SPEC 2.2). An added model, a chat model's name, was refused by
// strict servers as an unknown member and obeyed by lenient ones; a
// replaced "" gave a bot whose model was unset the embeddings of a model
// it never named.
func (t *target) patch(body []byte, named bool) ([]byte, error) {
	// Not bytes.TrimLeft, whose cutset is made into a set on each call.
	if i := jsonscan.SkipSpace(unsafeString(body), 0); i == len(body) || body[i] != '{' {
		return body, nil
	}
	out := body
	// gjson.Get on a view of body: GetBytes would copy the result's strings,
	// and r is only compared and measured here.
	switch r := gjson.Get(unsafeString(body), "model"); {
	case !named:
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

// placeSystem returns body as t's provider takes sm: unchanged for a
// provider that takes a system message anywhere (the default), and with sm
// moved into the leading message for one whose chat template refuses a
// system message anywhere but first (system_messages: first_only).
// body itself is never modified.
func (t *target) placeSystem(body []byte, sm *SystemMessage) ([]byte, error) {
	if sm == nil || t.p.cfg.SystemMessages != config.SystemMessagesFirstOnly {
		return body, nil
	}
	return moveSystemFirst(body, sm)
}

// moveSystemFirst returns body with the system message sm removed from
// messages[sm.Index] and its text joined to the leading message: appended
// as a paragraph to a leading system or developer message's string
// content, as a text part to its content parts (the "\n\n" keeps it a
// paragraph where a template joins the parts), as its content when it has
// none, or else sent as a new system message at index 0. Strict chat
// templates (Qwen3.5/3.6 on vLLM and llama.cpp: "System message must be at
// the beginning."; Gemma 3: "Conversation roles must alternate
// user/assistant/user/assistant/...") and DashScope, MiniMax and Qwen
// Portal refuse a system message anywhere else, and a second system message
// even right after the first. Both edits are splices: every other byte of
// body, the bot's other messages above all, is sent as it came. body
// itself is never modified.
func moveSystemFirst(body []byte, sm *SystemMessage) ([]byte, error) {
	type elem struct{ at, end int }
	var msgs []elem
	arr := gjson.Get(unsafeString(body), "messages")
	if !arr.IsArray() || arr.Index <= 0 {
		return nil, errors.New("moving the system message first: no messages array")
	}
	arr.ForEach(func(_, m gjson.Result) bool {
		msgs = append(msgs, elem{m.Index, m.Index + len(m.Raw)})
		return true
	})
	if sm.Index < 0 || sm.Index >= len(msgs) {
		return nil, fmt.Errorf("moving the system message first: no message %d of %d", sm.Index, len(msgs))
	}
	m := msgs[sm.Index]
	if m.at <= 0 || m.end > len(body) {
		return nil, errors.New("moving the system message first: cannot locate it")
	}
	if placed := gjson.ParseBytes(body[m.at:m.end]); placed.Get("role").Str != "system" || placed.Get("content").Type != gjson.String ||
		placed.Get("content").Str != sm.Text {
		return nil, fmt.Errorf("moving the system message first: message %d is not the inserted system message", sm.Index)
	}
	if sm.Index == 0 {
		return body, nil // already first: it is the conversation's only system message there
	}
	// The removed span: the message and the separator after it, or, for
	// the last message, the separator before it. Either way, what is left
	// is the array as it was before the message was inserted.
	cut0, cut1 := m.at, m.end
	if sm.Index+1 < len(msgs) {
		cut1 = msgs[sm.Index+1].at
	} else {
		cut0 = msgs[sm.Index-1].end
	}
	// The edit of the leading message: body[e0:e1] becomes repl.
	lead := msgs[0]
	first := gjson.ParseBytes(body[lead.at:lead.end])
	content := first.Get("content")
	if content.Exists() && content.Index <= 0 {
		return nil, errors.New("moving the system message first: cannot locate the leading message's content")
	}
	var e0, e1 int
	var repl []byte
	switch role := first.Get("role").Str; {
	case role != "system" && role != "developer":
		e0, e1 = lead.at, lead.at
		repl = appendQuoted([]byte(`{"role":"system","content":`), sm.Text)
		repl = append(repl, "},"...)
	case content.Type == gjson.String:
		e0, e1 = lead.at+content.Index, lead.at+content.Index+len(content.Raw)
		repl = appendQuoted(nil, content.Str+"\n\n"+sm.Text)
	case content.Type == gjson.Null && content.Exists():
		e0, e1 = lead.at+content.Index, lead.at+content.Index+len(content.Raw)
		repl = appendQuoted(nil, sm.Text)
	case content.IsArray():
		// Before the closing bracket, after the last part if any.
		e0 = lead.at + content.Index + len(content.Raw) - 1
		e1 = e0
		if len(content.Array()) > 0 {
			repl = append(repl, ',')
		}
		repl = append(repl, `{"type":"text","text":`...)
		repl = appendQuoted(repl, "\n\n"+sm.Text)
		repl = append(repl, '}')
	case !content.Exists():
		// Its first member becomes the content.
		e0 = lead.at + 1
		e1 = e0
		repl = appendQuoted([]byte(`"content":`), sm.Text)
		if len(bytes.TrimSpace(body[lead.at+1:lead.end-1])) > 0 {
			repl = append(repl, ',')
		}
	default:
		// A content no provider takes: left to the provider to judge,
		// with the state before it.
		e0, e1 = lead.at, lead.at
		repl = appendQuoted([]byte(`{"role":"system","content":`), sm.Text)
		repl = append(repl, "},"...)
	}
	if e0 < lead.at || e1 > lead.end || e1 > cut0 {
		return nil, errors.New("moving the system message first: cannot locate the leading message's content")
	}
	out := make([]byte, 0, len(body)-(cut1-cut0)+len(repl)-(e1-e0))
	out = append(out, body[:e0]...)
	out = append(out, repl...)
	out = append(out, body[e1:cut0]...)
	out = append(out, body[cut1:]...)
	return out, nil
}
