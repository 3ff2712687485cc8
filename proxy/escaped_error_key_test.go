package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
	openai "github.com/sashabaranov/go-openai"
)

// TestEscapedErrorKeyMasked: a provider's error whose "error" key, or the
// "error" of its type or finish_reason, is spelled with a \u escape
// ("err\u006fr", which every parser, gjson's and the bot's SDK's among
// them, reads as error) is an error all the same, and its text reaches the
// bot with the provider's key masked: on a chat stream, a non-stream chat
// answer, a forwarded Responses stream and a forwarded failed Response.
// The plain spelling is the first case, the answer each must match. The
// byte checks that spare the answer's events any lookup looked for
// `rror"` or `"error"` only, found neither in the escaped spelling, and
// the error went on as the answer, the key with it. A forwarded event whose
// data spans several data lines is judged as the client joins them: line
// by line, none was an error, and the key went on with them.
func TestEscapedErrorKeyMasked(t *testing.T) {
	const chat = `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	const stream = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	const responses = `{"model":"gpt-test","stream":true,"input":"hi"}`
	const first = `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}` + "\n\n"
	const created = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"error\":null}}\n\n"
	const text = `auth failed for key ` + testProviderKey
	for _, k := range []string{`error`, `err\u006fr`, `erro\u0072`, `\u0065rr\u006Fr`} {
		for _, tc := range []struct {
			name     string
			upstream http.HandlerFunc
			path     string
			body     string
		}{
			{"chat stream: an event of type error",
				sseHandler(first, `data: {"type":"`+k+`","message":"`+text+`"}`+"\n\n"), "/v1/chat/completions", stream},
			{"chat stream: a choice's error",
				sseHandler(first, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"`+k+`","`+k+`":{"message":"`+text+`"}}]}`+"\n\n"),
				"/v1/chat/completions", stream},
			{"chat stream: an error finish with the provider's reason",
				sseHandler(first, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"`+k+`","native_finish_reason":"`+text+`"}]}`+"\n\n"),
				"/v1/chat/completions", stream},
			{"chat: a choice's error",
				jsonHandler(200, `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"`+k+`","`+k+`":{"message":"`+text+`"}}]}`),
				"/v1/chat/completions", chat},
			{"Responses stream: an event of type error",
				sseHandler(created, `data: {"type":"`+k+`","code":"upstream_auth","message":"`+text+`"}`+"\n\n"), "/v1/responses", responses},
			{"Responses stream: an error member",
				sseHandler(created, `data: {"`+k+`":{"message":"`+text+`"}}`+"\n\n"), "/v1/responses", responses},
			{"Responses stream: response.failed",
				sseHandler(created, "event: response.failed\n"+`data: {"type":"response.failed","response":{"status":"failed","`+k+`":{"code":"auth_failed","message":"`+text+`"}}}`+"\n\n"),
				"/v1/responses", responses},
			// A relay that writes "error":null on every chunk, before the
			// provider's own error member: a client reads the last.
			{"chat stream: an error after a null one",
				sseHandler(first, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"error":null,"`+k+`":{"message":"`+text+`"}}`+"\n\n"),
				"/v1/chat/completions", stream},
			{"chat: an error after a null one",
				jsonHandler(200, `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"error":null,"`+k+`":{"message":"`+text+`"}}`),
				"/v1/chat/completions", chat},
			{"chat stream: a choice's error after a null one",
				sseHandler(first, `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null,"error":null,"`+k+`":{"message":"`+text+`"}}]}`+"\n\n"),
				"/v1/chat/completions", stream},
			{"chat: a choice's error after a null one",
				jsonHandler(200, `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop","error":null,"`+k+`":{"message":"`+text+`"}}]}`),
				"/v1/chat/completions", chat},
			{"Responses stream: an error member after a null one",
				sseHandler(created, `data: {"error":null,"`+k+`":{"message":"`+text+`"}}`+"\n\n"), "/v1/responses", responses},
			{"Responses stream: response.failed with an error after a null one",
				sseHandler(created, "event: response.failed\n"+`data: {"type":"response.failed","response":{"status":"failed","error":null,"`+k+`":{"code":"auth_failed","message":"`+text+`"}}}`+"\n\n"),
				"/v1/responses", responses},
			// An event's data over several lines, which a client joins
			// with "\n" before it parses them: neither line alone is an
			// error. The provider flushes each line on its own.
			{"Responses stream: an error member over two data lines",
				sseHandler(created, `data: {"`+k+`":`+"\n", `data: {"message":"`+text+`"}}`+"\n\n"), "/v1/responses", responses},
			{"Responses stream: an event of type error over three data lines",
				sseHandler(created, "event: response.output_text.delta\r\ndata: {\"type\":\r\n", `data: "`+k+`","code":"upstream_auth",`+"\r\n"+`data: "message":"`+text+`"}`+"\r\n\r\n"),
				"/v1/responses", responses},
			{"a failed background Response",
				jsonHandler(200, `{"id":"resp_1","object":"response","status":"failed","`+k+`":{"code":"auth_failed","message":"`+text+`"},"output":[]}`),
				"/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`},
			{"a failed background Response: an error after a null one",
				jsonHandler(200, `{"id":"resp_1","object":"response","status":"failed","error":null,"`+k+`":{"code":"auth_failed","message":"`+text+`"},"output":[]}`),
				"/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`},
			// A relay that adds its own error before the provider's: the
			// bot's parser (Go's encoding/json, JSON.parse) reads the last.
			{"a failed background Response: an error after a set one",
				jsonHandler(200, `{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"retry"},"`+k+`":{"code":"auth_failed","message":"`+text+`"},"output":[]}`),
				"/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`},
			// Each quoting the key: the relay's too, not only the last.
			{"a failed background Response: two errors quoting the key",
				jsonHandler(200, `{"id":"resp_1","object":"response","status":"failed","error":{"code":"upstream_auth","message":"`+text+`"},"`+k+`":{"code":"auth_failed","message":"`+text+`"},"output":[]}`),
				"/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`},
			{"a failed background Response, its error alone",
				jsonHandler(200, `{"id":"resp_1","object":"response","status":"failed","`+k+`":{"code":"auth_failed","message":"`+text+`"},"output":[]}`),
				"/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`},
		} {
			t.Run(tc.name+" "+k, func(t *testing.T) {
				// A non-stream choice's error is not passed on, plainly
				// spelled either (a 502 of paygate's words).
				errorMasked(t, tc.upstream, tc.path, tc.body, tc.body == chat)
			})
		}
	}
}

// errorMasked posts body to path of a proxy whose one attempt upstream
// answers, and fails t when the bot got the provider key, or, unless
// quiet (an error paygate words itself), no "auth failed for key" with
// the key masked.
func errorMasked(t *testing.T, upstream http.HandlerFunc, path, body string, quiet bool) {
	t.Helper()
	fp := newFakeProvider(t, upstream)
	url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Failover.MaxAttempts = 1 }))
	resp := post(t, url, path, body, nil)
	got := readAll(t, resp.Body)
	if strings.Contains(got, testProviderKey) || !quiet && !strings.Contains(got, "auth failed for key "+logging.Mask) {
		t.Errorf("the bot got %d\n%s\nwant the provider's text with its key masked as %s", resp.StatusCode, got, logging.Mask)
	}
}

// TestErrorKeyInAnotherCaseMasked: a provider's error member whose key is
// spelled in another case ("Error", as a .NET relay writes it, "ERROR")
// is one to Go's encoding/json, which matches a key without regard to
// case: go-openai reads it as a Response's error, a Responses stream
// event's, or a failed response's, and so gets the text it quotes. The
// mask looked for "error" alone, and the provider key reached the bot, on
// a forwarded stream and in a failed background Response.
func TestErrorKeyInAnotherCaseMasked(t *testing.T) {
	const created = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"error\":null}}\n\n"
	const cfirst = `data: {"id":"c1","object":"text_completion","model":"m","choices":[{"index":0,"text":"Hel"}]}` + "\n\n"
	const text = `auth failed for key ` + testProviderKey
	for _, k := range []string{`Error`, `ERROR`, `erRor`, `errOr`, `\u0045rror`, `ERR\u004fR`} {
		for _, tc := range []struct {
			name     string
			upstream http.HandlerFunc
			path     string
			body     string
		}{
			{"Responses stream: an error member",
				sseHandler(created, `data: {"type":"response.output_text.delta","`+k+`":{"message":"`+text+`"}}`+"\n\n"), "/v1/responses", `{"model":"gpt-test","stream":true,"input":"hi"}`},
			{"Responses stream: response.failed",
				sseHandler(created, "event: response.failed\n"+`data: {"type":"response.failed","response":{"status":"failed","error":null,"`+k+`":{"code":"auth_failed","message":"`+text+`"}}}`+"\n\n"),
				"/v1/responses", `{"model":"gpt-test","stream":true,"input":"hi"}`},
			{"legacy completion stream: a choice's error",
				sseHandler(cfirst, `data: {"id":"c1","object":"text_completion","choices":[{"index":0,"text":"","finish_reason":"error","`+k+`":{"message":"`+text+`"}}]}`+"\n\n"),
				"/v1/completions", `{"model":"gpt-test","stream":true,"prompt":"hi"}`},
			{"a failed background Response",
				jsonHandler(200, `{"id":"resp_1","object":"response","status":"failed","error":null,"`+k+`":{"code":"auth_failed","message":"`+text+`"},"output":[]}`),
				"/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`},
			{"a failed background Response, its error alone",
				jsonHandler(200, `{"id":"resp_1","object":"response","status":"failed","`+k+`":{"code":"auth_failed","message":"`+text+`"},"output":[]}`),
				"/v1/responses", `{"model":"gpt-test","input":"hi","background":true}`},
		} {
			t.Run(tc.name+" "+k, func(t *testing.T) {
				errorMasked(t, tc.upstream, tc.path, tc.body, false)
			})
		}
	}
	// What go-openai makes of the failed Response, as a Go bot reads it.
	fp := newFakeProvider(t, jsonHandler(200, `{"id":"resp_1","object":"response","status":"failed","Error":{"code":"auth_failed","message":"`+text+`"},"output":[]}`))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	r, err := sdkClient(url).CreateResponse(context.Background(), openai.CreateResponseRequest{Model: "gpt-test", Background: true})
	if err != nil || r.Error == nil || r.Error.Message != "auth failed for key "+logging.Mask {
		t.Errorf("go-openai read the failed Response's error as %+v (%v); want its text with the key masked", r.Error, err)
	}
}
