package proxy

import (
	"strings"
	"testing"
)

// TestNullCustomBesideFunction: relays that serialize every field of a
// tool call, unset ones as null, send "custom":null beside a function
// call's "function" (and "function":null beside a custom call's
// "custom"). A null member names nothing: the call is the function's,
// as every parser reads it. Taken for a call named twice, the payment
// call was refused instead of run, and the bot's own call was held back
// from it as a nameless payment call and refused too: the bot never got
// it. Streamed, as a whole answer, and as events answering a non-stream
// request alike.
func TestNullCustomBesideFunction(t *testing.T) {
	const pay = `{"index":0,"id":"call_p","type":"function","custom":null,"function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
	const bot = `{"index":0,"id":"call_w","type":"function","custom":null,"function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}`
	const H = `data: {"id":"c0","object":"chat.completion.chunk","created":1,"model":"m0","choices":`
	sse := func(call string) string {
		return H + `[{"index":0,"delta":{"role":"assistant","tool_calls":[` + call + `]},"finish_reason":null}]}` + "\n\n" +
			H + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":null,"type":null,"custom":null,"function":{"name":null,"arguments":""}}]},"finish_reason":null}]}` + "\n\n" +
			H + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n" + "data: [DONE]\n\n"
	}
	for _, shape := range []string{"stream", "json", "events for a non-stream request"} {
		stream := shape == "stream"
		t.Run(shape+", payment call", func(t *testing.T) {
			first := callsRound(false, `[`+pay+`]`)
			if shape != "json" {
				first = sseHandler(sse(pay))
			}
			fp := newFakeProvider(t, roundByRound(first, textRound(stream, "done")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			if got := tools.executed(); len(got) != 1 || got[0] != `create_order {"sku":"premium-monthly"}` {
				t.Errorf("executed %q; want create_order once\n%s", got, body)
			}
			if !strings.Contains(body, "done") {
				t.Errorf("the bot did not get the next round's answer:\n%s", body)
			}
		})
		t.Run(shape+", a null copy of the function", func(t *testing.T) {
			// Parsers that keep the last copy read no call: not run.
			twice := strings.Replace(pay, `"custom":null`, `"Function":null`, 1)
			first := callsRound(false, `[`+twice+`]`)
			if shape != "json" {
				first = sseHandler(sse(twice))
			}
			fp := newFakeProvider(t, roundByRound(first, textRound(stream, "done")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			if got := tools.executed(); len(got) != 0 {
				t.Errorf("executed %q; want nothing\n%s", got, body)
			}
		})
		t.Run(shape+", the bot's call", func(t *testing.T) {
			first := callsRound(false, `[`+bot+`]`)
			if shape != "json" {
				first = sseHandler(sse(bot))
			}
			fp := newFakeProvider(t, first)
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			if got := botCalls(stream, body); len(got) != 1 || got[0] != `get_weather {"city":"Paris"}` {
				t.Errorf("the bot got calls %q; want its get_weather\n%s", got, body)
			}
			if got := tools.executed(); len(got) != 0 {
				t.Errorf("executed %q", got)
			}
		})
	}
}
