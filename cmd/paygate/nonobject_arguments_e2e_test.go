package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// objectArgsProvider answers as SGLang does since it validates a history's
// tool calls (sgl-project/sglang#28035), and as Gemini, whose function
// call args are a Struct: an assistant tool call whose arguments do not
// parse to a JSON object is a 400. Otherwise it answers a user message
// with one create_order call of arguments args, the tool result with text,
// streamed when the request streams.
func objectArgsProvider(t *testing.T, args string) *httptest.Server {
	t.Helper()
	q, _ := json.Marshal(args)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bad := ""
		gjson.GetBytes(b, "messages.#.tool_calls.#.function.arguments").ForEach(func(_, per gjson.Result) bool {
			per.ForEach(func(_, a gjson.Result) bool {
				var v any
				if json.Unmarshal([]byte(a.Str), &v) != nil {
					bad = a.Str
				} else if _, ok := v.(map[string]any); !ok {
					bad = a.Str
				}
				return true
			})
			return true
		})
		if bad != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"tool call arguments must be a JSON object, got `+strings.ReplaceAll(bad, `"`, `'`)+`","type":"BadRequestError","code":400}}`)
			return
		}
		stream := gjson.GetBytes(b, "stream").Bool()
		var msg, finish string
		if gjson.GetBytes(b, "messages.@reverse.0.role").Str == "tool" {
			msg, finish = `"content":"Which plan would you like, and how many?"`, "stop"
		} else {
			msg, finish = `"content":null,"tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"create_order","arguments":`+string(q)+`}}]`, "tool_calls"
		}
		if !stream {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant",`+msg+`},"finish_reason":"`+finish+`"}]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant",`+msg+`},"finish_reason":null}]}`+"\n\n")
		_, _ = io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`+"\n\n")
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestNonObjectPaymentArgumentsGetTheClarification: a create_order whose
// arguments are JSON but no object (an array, a string holding an array,
// null, a number) is no call paygate can run, and the model is
// told to ask the user. Its arguments went back to the provider as the
// model wrote them, being valid JSON, and a provider that takes a call's
// arguments only as an object (SGLang, Gemini) answered the next round
// with a 400: the user got an error in place of the clarifying question.
// They go back as {}, as arguments that do not parse do.
func TestNonObjectPaymentArgumentsGetTheClarification(t *testing.T) {
	for _, args := range []string{
		`["premium-monthly"]`,
		`"[\"premium-monthly\"]"`, // a string holding the object is that object (interceptors.EncodedObject)
		`null`,
		`2`,
	} {
		for _, stream := range []bool{false, true} {
			name := args
			if stream {
				name += " streamed"
			}
			t.Run(name, func(t *testing.T) {
				up := objectArgsProvider(t, args)
				url, a := paymentApp(t, up.URL, "")
				body := `{"model":"gpt-4o","messages":[{"role":"user","content":"buy premium"}]}`
				if stream {
					body = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"buy premium"}]}`
				}
				resp := postAs(t, url, e2eClientKey, testOpenID, body)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Which plan would you like") || strings.Contains(string(b), `"error"`) {
					t.Fatalf("answer %d; want the clarifying question:\n%s", resp.StatusCode, b)
				}
				if n := a.sim.OrderCount(); n != 0 {
					t.Errorf("%d orders at WeChat Pay; want none", n)
				}
			})
		}
	}
}
