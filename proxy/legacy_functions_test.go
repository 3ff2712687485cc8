package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// functionsOrTools is a provider that validates as OpenAI does: a request
// with both the legacy "functions" and "tools" is a 400 ("Invalid request:
// 'functions' and 'tools' cannot both be provided. 'functions' are
// deprecated; use the 'tools' parameter instead.", as reported in
// microsoft/autogen#3285); any other is answered in words.
func functionsOrTools(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if f := gjson.GetBytes(b, "functions"); f.Exists() && f.Type != gjson.Null && gjson.GetBytes(b, "tools").Exists() {
		jsonHandler(400, `{"error":{"message":"Invalid request: 'functions' and 'tools' cannot both be provided. 'functions' are deprecated; use the 'tools' parameter instead.","type":"invalid_request_error","param":null,"code":null}}`)(w, r)
		return
	}
	textRound(gjson.GetBytes(b, "stream").Bool(), "It is sunny.")(w, r)
}

// TestLegacyFunctionsServedWithoutPaymentTools: a bot that offers its
// model the legacy "functions" (and no tools) keeps working for a signed-in
// user: paygate does not add a "tools" member beside them, which OpenAI
// refuses with a 400 for every such request, so the bot, whose request
// OpenAI serves as it is, got an error about tools it never sent. The
// payment tools are not offered in such a turn, and a payment call that
// comes anyway is refused, never executed.
func TestLegacyFunctionsServedWithoutPaymentTools(t *testing.T) {
	const functions = `"functions":[{"name":"get_weather","parameters":{"type":"object"}}],`
	for _, tc := range []struct{ name, members string }{
		{"functions", functions},
		{"functions, function_call auto", functions + `"function_call":"auto",`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				tools := &recordingTools{}
				up := newFakeProvider(t, functionsOrTools)
				url := toolsProxy(t, up.URL, tools, nil)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != 200 || !strings.Contains(body, "It is sunny.") {
					t.Errorf("the bot got %d %s; want the model's answer", resp.StatusCode, body)
				}
				for _, r := range up.requests() {
					if gjson.GetBytes(r.Body, "tools").Exists() {
						t.Errorf("the provider got tools beside the bot's functions: %s", r.Body)
					}
					if !gjson.GetBytes(r.Body, `functions.#(name=="get_weather")`).Exists() {
						t.Errorf("the bot's functions did not reach the provider: %s", r.Body)
					}
				}
			})
		}
	}
	// A provider that calls a payment tool it was not offered: refused.
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("payment call anyway stream %v", stream), func(t *testing.T) {
			tools := &recordingTools{}
			up := newFakeProvider(t, roundByRound(
				callsRound(stream, `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`),
				textRound(stream, "Which plan would you like?"),
			))
			url := toolsProxy(t, up.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, functions), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if ex := tools.executed(); len(ex) != 0 {
				t.Errorf("payment tools were not offered, yet paygate executed %q", ex)
			}
			if resp.StatusCode != 200 || strings.Contains(body, "create_order") {
				t.Errorf("the bot got %d %s; want the model's answer without the refused call", resp.StatusCode, body)
			}
		})
	}
}

// predictionOrTools is a provider that validates as OpenAI and Azure OpenAI
// do: Predicted Outputs ("prediction") cannot be used with tools (Azure
// OpenAI's "Predicted outputs" page, Unsupported features: "Tools/Function
// calling"; the 400's wording here is the fake's own); any other request
// is answered in words.
func predictionOrTools(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if p := gjson.GetBytes(b, "prediction"); p.Exists() && p.Type != gjson.Null && gjson.GetBytes(b, "tools").Exists() {
		jsonHandler(400, `{"error":{"message":"Invalid 'tools': tools are not supported with predicted outputs.","type":"invalid_request_error","param":"tools","code":null}}`)(w, r)
		return
	}
	textRound(gjson.GetBytes(b, "stream").Bool(), "Here is the edited text.")(w, r)
}

// TestPredictedOutputsServedWithoutPaymentTools: a bot that asks for
// Predicted Outputs keeps working for a signed-in user, as with the legacy
// functions: the payment tools, which providers refuse beside a
// "prediction", are not offered in that turn.
func TestPredictedOutputsServedWithoutPaymentTools(t *testing.T) {
	const prediction = `"prediction":{"type":"content","content":"Dear customer, your order ships today."},`
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream %v", stream), func(t *testing.T) {
			up := newFakeProvider(t, predictionOrTools)
			url := toolsProxy(t, up.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, prediction), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(body, "Here is the edited text.") {
				t.Errorf("the bot got %d %s; want the model's answer", resp.StatusCode, body)
			}
			for _, r := range up.requests() {
				if gjson.GetBytes(r.Body, "tools").Exists() {
					t.Errorf("the provider got tools beside the bot's prediction: %s", r.Body)
				}
			}
		})
	}
}

// TestRestoredExchangeAddsNoToolsBesideFunctionsOrPrediction: a kept
// payment exchange restored into a request that uses the legacy
// "functions" or Predicted Outputs brings no payment tool definitions with
// it. The definitions go beside restored payment calls so that providers
// that refuse calls of undefined tools take the conversation; beside
// "functions" or a "prediction" they are what OpenAI refuses with a 400, so
// such a turn, served before, failed for every follow-up of a conversation
// that once had a mixed round.
func TestRestoredExchangeAddsNoToolsBesideFunctionsOrPrediction(t *testing.T) {
	for _, tc := range []struct {
		name, members, answer string
		validate              http.HandlerFunc
	}{
		{"legacy functions", `"functions":[{"name":"get_weather","parameters":{"type":"object"}}],`, "It is sunny.", functionsOrTools},
		{"prediction", `"prediction":{"type":"content","content":"It is sunny."},`, "Here is the edited text.", predictionOrTools},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream %v", tc.name, stream), func(t *testing.T) {
				mixed := `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` + weatherCall(1, "call_w") + `]`
				fp := newFakeProvider(t, roundByRound(callsRound(stream, mixed), tc.validate))
				url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				msgs := []string{`{"role":"user","content":"buy premium, and the weather"}`}
				readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
				msgs = append(msgs,
					`{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]}`,
					`{"role":"tool","tool_call_id":"call_w","content":"sunny"}`)
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, tc.members, msgs...), hdr)
				body := readAll(t, resp.Body)
				reqs := fp.requests()
				last := reqs[len(reqs)-1].Body
				if !strings.Contains(string(last), `"create_order"`) {
					t.Fatalf("the follow-up carries no restored payment exchange: %s", last)
				}
				if gjson.GetBytes(last, "tools").Exists() {
					t.Errorf("the provider got tools beside the bot's %s: %s", tc.name, last)
				}
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, tc.answer) {
					t.Errorf("the bot got %d %s; want the model's answer", resp.StatusCode, body)
				}
			})
		}
	}
}
