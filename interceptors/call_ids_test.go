package interceptors

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestGiveCallIDs: with GiveCallIDs, a call of the bot's own that comes
// without an id (or with "") reaches the client with one on its first
// delta, the id the round reports for it (the turn keeps a mixed round's
// exchange under it); an id the provider gives later is not passed on
// (the Node SDK would replace the bot's id with it, the Python SDK append
// it). Payment calls are not given one here (the turn names them).
func TestGiveCallIDs(t *testing.T) {
	const head = `{"id":"a","choices":[{"index":0,"delta":{"tool_calls":[`
	const tail = `]}}]}`
	for _, tc := range []struct {
		name   string
		chunks []string
	}{
		{"no id", []string{
			head + `{"index":0,"type":"function","function":{"name":"create_order","arguments":"{}"}}` + tail,
			head + `{"index":1,"type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}` + tail,
			head + `{"index":1,"function":{"arguments":"ty\":1}"}}` + tail,
		}},
		{"empty id", []string{
			head + `{"index":0,"id":"","type":"function","function":{"name":"get_weather","arguments":"{}"}}` + tail,
		}},
		// Qwen sends "id":"" (and "name":"") in every delta after the
		// first: those past the first take the call path, which must drop
		// the empty id as the slow path does, or the Node SDK puts "" in
		// place of the made id the bot answers by.
		{"empty id in every delta", []string{
			head + `{"index":0,"id":"","type":"function","function":{"name":"get_weather","arguments":""}}` + tail,
			head + `{"index":0,"id":"","type":"function","function":{"name":"","arguments":"{\"ci"}}` + tail,
			head + `{"index":0,"id":"","type":"function","function":{"name":"","arguments":"ty\":1}"}}` + tail,
			head + `{"index":0,"id":"","type":"function","function":{"name":"","arguments":""}}` + tail,
		}},
		{"an id given late", []string{
			head + `{"index":0,"type":"function","function":{"name":"create_order","arguments":"{}"}}` + tail,
			head + `{"index":1,"type":"function","function":{"name":"get_weather","arguments":""}}` + tail,
			head + `{"index":1,"id":"c1","function":{"arguments":"{}"}}` + tail,
			head + `{"function":{"arguments":""},"id":"c2","index":1}` + tail,
			head + `{"id":"c3","index":1}` + tail,
		}},
		// Its name again beside the late id, as Qwen repeats a name in
		// every delta: the same call, not a second one under its index.
		{"an id given late with the name again", []string{
			head + `{"index":0,"type":"function","function":{"name":"get_weather","arguments":""}}` + tail,
			head + `{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}` + tail,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(isPaymentName)
			c.GiveCallIDs()
			c.StartRound(0, "turn", 0)
			var sent []string
			for _, ch := range tc.chunks {
				out, err := c.Process([]byte(ch))
				if err != nil {
					t.Fatalf("Process(%s): %v", ch, err)
				}
				if out != nil {
					sent = append(sent, string(out))
				}
			}
			res := c.EndRound()
			if len(res.ClientCalls) != 1 {
				t.Fatalf("client calls %+v; want get_weather alone", res.ClientCalls)
			}
			first := gjson.Get(sent[0], "choices.0.delta.tool_calls")
			made := first.Get("0.id").Str
			if len(first.Array()) != 1 || !strings.HasPrefix(made, "call_pg") || strings.Count(sent[0], `"id":`) != 2 {
				t.Errorf("the client's first delta of its call %s; want one entry with a made id, named once", sent[0])
			}
			if got := res.ClientCalls[0].ID; got != made {
				t.Errorf("the round reports the bot's call as %q; want %q, the id the bot holds", got, made)
			}
			for _, out := range sent[1:] {
				if !gjson.Valid(out) {
					t.Errorf("a later delta of the bot's call reached it as %s, not JSON", out)
				}
				if d := gjson.Get(out, "choices.0.delta.tool_calls.0"); !d.Exists() || d.Get("id").Exists() || d.Get("index").Int() != 0 {
					t.Errorf("a later delta of the bot's call reached it as %s; want it without an id, at index 0", out)
				}
			}
		})
	}
}
