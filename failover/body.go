package failover

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// patch returns the body to send to t: "model" set to t's upstream name and
// t's provider's drop_fields removed, as raw JSON patches so every other byte
// stays as the client sent it. body itself is never modified (the next
// target needs it intact); when nothing changes, body itself is returned,
// and callers treat the result as read-only. A body that is not a JSON object (empty, a
// multipart upload on a passthrough path) is sent as is.
func (t *target) patch(body []byte) ([]byte, error) {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return body, nil
	}
	var out []byte
	// gjson.Get on a view of body: GetBytes would copy the result's strings,
	// and r is only compared and measured here.
	if r := gjson.Get(unsafeString(body), "model"); r.Exists() && r.Index > 0 && r.Index+len(r.Raw) <= len(body) {
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
	} else {
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

// Continuation modes (config providers[].continuation).
const (
	ContinuationNone       = "none"
	ContinuationPrefill    = "prefill"
	ContinuationPrefixFlag = "prefix_flag"
)

// continueBody returns body with c appended as the trailing assistant
// message t's provider continues, or nil when the provider has no
// continuation mode (or there is nothing to continue).
func (t *target) continueBody(body []byte, c *Continuation) ([]byte, error) {
	if c == nil || c.Text == "" {
		return nil, nil
	}
	msg := []byte(`{"role":"assistant","content":`)
	msg = appendQuoted(msg, c.Text)
	switch t.p.cfg.Continuation {
	case ContinuationPrefill:
	case ContinuationPrefixFlag:
		msg = append(msg, `,"prefix":true`...)
	default:
		return nil, nil
	}
	msg = append(msg, '}')
	out, err := sjson.SetRawBytes(body, "messages.-1", msg)
	if err != nil {
		return nil, fmt.Errorf("appending the continuation: %w", err)
	}
	return out, nil
}

// appendQuoted appends s as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}
