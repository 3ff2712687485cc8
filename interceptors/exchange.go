package interceptors

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"
)

// Exchange is what paygate added to a turn that ended with the client's own
// tool calls (SPEC 3.7): the messages of the turn's earlier payment rounds
// (Before: each round's assistant message and tool results, in order), the
// last round's assistant message as the provider produced it (payment and
// client calls together) and the tool results of its payment calls. The
// client only ever saw its own calls; when its next request comes back
// carrying them, the exchange is put back in place so the provider sees its
// own turn again.
type Exchange struct {
	Before    []json.RawMessage `json:"before,omitempty"`
	Assistant json.RawMessage   `json:"assistant"`
	Results   []json.RawMessage `json:"results"`
}

// RestoreExchanges replaces every assistant message whose first tool call
// lookup knows with the kept exchange: the earlier rounds' messages, the full
// assistant message, then the payment tool results. Everything else stays
// byte for byte. lookup returns nil when the call id has no exchange.
func RestoreExchanges(body []byte, lookup func(callID string) *Exchange) ([]byte, int, error) {
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.IsArray() {
		return body, 0, nil
	}
	type splice struct {
		start, end int
		repl       []byte
	}
	var splices []splice
	n := int(msgs.Get("#").Int())
	for i := 0; i < n; i++ {
		m := gjson.GetBytes(body, "messages."+strconv.Itoa(i))
		if m.Get("role").Str != "assistant" {
			continue
		}
		id := m.Get("tool_calls.0.id").Str
		if id == "" {
			continue
		}
		ex := lookup(id)
		if ex == nil {
			continue
		}
		var repl []byte
		for _, b := range ex.Before {
			repl = append(repl, b...)
			repl = append(repl, ',')
		}
		repl = append(repl, ex.Assistant...)
		for _, r := range ex.Results {
			repl = append(repl, ',')
			repl = append(repl, r...)
		}
		if m.Index <= 0 || m.Index+len(m.Raw) > len(body) {
			return nil, 0, fmt.Errorf("locating message %d", i)
		}
		splices = append(splices, splice{m.Index, m.Index + len(m.Raw), repl})
	}
	if len(splices) == 0 {
		return body, 0, nil
	}
	out := make([]byte, 0, len(body)+256*len(splices))
	prev := 0
	for _, s := range splices {
		out = append(out, body[prev:s.start]...)
		out = append(out, s.repl...)
		prev = s.end
	}
	out = append(out, body[prev:]...)
	if !gjson.ValidBytes(out) {
		return nil, 0, fmt.Errorf("restored body is not valid JSON")
	}
	return out, len(splices), nil
}
