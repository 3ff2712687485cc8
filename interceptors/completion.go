package interceptors

import (
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// ErrMalformedCompletion is returned by ReadCompletion for a body that is
// not a chat.completion JSON object.
var ErrMalformedCompletion = errors.New("interceptors: completion is not a JSON object")

// ReadCompletion reads a non-stream chat.completion answer as Capture reads
// a stream, for non-stream requests. It returns the round (the calls of
// choices[0].message.tool_calls split into payment and client calls, the
// client's numbered from clientBase in order; content, finish_reason, usage,
// id and model) and the body as the client may see it: every payment call
// removed from every choice's message.tool_calls (the key removed when none
// is left), everything else byte for byte. Sent is empty: nothing of a
// non-stream answer has reached the client.
func ReadCompletion(body []byte, isPayment func(name string) bool, clientBase int) (RoundResult, []byte, error) {
	var r RoundResult
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return r, nil, ErrMalformedCompletion
	}
	root := gjson.ParseBytes(body)
	r.ID = root.Get("id").String()
	r.Model = root.Get("model").String()
	if u := root.Get("usage"); u.IsObject() {
		r.Usage = &Usage{
			PromptTokens:     u.Get("prompt_tokens").Int(),
			CompletionTokens: u.Get("completion_tokens").Int(),
			TotalTokens:      u.Get("total_tokens").Int(),
		}
		if r.Usage.TotalTokens == 0 {
			r.Usage.TotalTokens = r.Usage.PromptTokens + r.Usage.CompletionTokens
		}
	}
	if e := root.Get("error"); e.Exists() && e.Type != gjson.Null {
		r.Error = []byte(e.Raw)
	}
	out := append([]byte(nil), body...)
	var err error
	root.Get("choices").ForEach(func(ck, ch gjson.Result) bool {
		first := ck.Int() == 0
		msg := ch.Get("message")
		if first {
			r.FinishReason = ch.Get("finish_reason").String()
			r.Content = msg.Get("content").String()
			r.Reasoning = msg.Get("reasoning_content").String()
			if r.Reasoning == "" {
				r.Reasoning = msg.Get("reasoning").String()
			}
		}
		calls := msg.Get("tool_calls")
		if !calls.IsArray() {
			return true
		}
		kept := []byte{'['}
		dropped := false
		n := clientBase
		calls.ForEach(func(tk, tc gjson.Result) bool {
			call := ToolCall{
				Index: int(tk.Int()),
				ID:    tc.Get("id").String(),
				Name:  tc.Get("function.name").String(),
			}
			switch a := tc.Get("function.arguments"); a.Type {
			case gjson.String:
				call.Arguments = a.Str
			case gjson.JSON:
				call.Arguments = a.Raw
			}
			call.Extra = extraMembers(tc)
			if call.Name == "" || isPayment(call.Name) {
				dropped = true
				if first {
					r.PaymentCalls = append(r.PaymentCalls, call)
				}
				return true
			}
			call.Index = n
			n++
			if first {
				r.ClientCalls = append(r.ClientCalls, call)
			}
			if len(kept) > 1 {
				kept = append(kept, ',')
			}
			kept = append(kept, tc.Raw...)
			return true
		})
		if !dropped {
			return true
		}
		path := "choices." + ck.String() + ".message.tool_calls"
		if len(kept) == 1 {
			out, err = sjson.DeleteBytes(out, path)
		} else {
			out, err = sjson.SetRawBytes(out, path, append(kept, ']'))
		}
		if err != nil {
			err = fmt.Errorf("removing payment calls: %w", err)
			return false
		}
		return true
	})
	if err != nil {
		return r, nil, err
	}
	return r, out, nil
}

// extraMembers returns a tool call's members other than index, id, type and
// function as a raw JSON object, nil when there are none.
func extraMembers(tc gjson.Result) []byte {
	var out []byte
	tc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "index", "id", "type", "function":
			return true
		}
		if v.Type == gjson.Null {
			return true
		}
		if out == nil {
			out = []byte{'{'}
		} else {
			out = append(out, ',')
		}
		out = append(out, k.Raw...)
		out = append(out, ':')
		out = append(out, v.Raw...)
		return true
	})
	if out == nil {
		return nil
	}
	return append(out, '}')
}
