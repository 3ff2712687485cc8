package failover

import (
	"bytes"
	"fmt"

	"github.com/tidwall/sjson"
)

// patch returns the body to send to t: "model" set to t's upstream name and
// t's provider's drop_fields removed, as raw JSON patches so every other byte
// stays as the client sent it. body itself is never modified (the next
// target needs it intact). A body that is not a JSON object (empty, a
// multipart upload on a passthrough path) is sent as is.
func (t *target) patch(body []byte) ([]byte, error) {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return body, nil
	}
	out, err := sjson.SetBytesOptions(body, "model", t.model, &sjson.Options{Optimistic: true})
	if err != nil {
		return nil, fmt.Errorf("setting model: %w", err)
	}
	for _, f := range t.p.drop {
		out, err = sjson.DeleteBytes(out, f)
		if err != nil {
			return nil, fmt.Errorf("dropping %s: %w", f, err)
		}
	}
	return out, nil
}
