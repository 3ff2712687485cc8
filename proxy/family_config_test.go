package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// mistralNoStreamOptions answers as Mistral's API does a request with
// stream_options (422 extra_forbidden), and passes every other request to
// next.
func mistralNoStreamOptions(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		if gjson.GetBytes(body, "stream_options").Exists() {
			jsonHandler(422, `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","stream_options","include_usage"],"msg":"Extra inputs are not permitted","input":true}]},"type":"invalid_request_error","param":null,"code":null}`)(w, r)
			return
		}
		next(w, r)
	}
}

// TestExplicitFamily: the adaptations a target's conversation gets were
// guessed from its provider's base_url and its model's name, and the guess
// was wrong both ways. Missed: an Azure deployment "prod-large" of
// Mistral Large, openrouter/auto, a Cloudflare AI Gateway before
// api.mistral.ai (stream_options still sent: 422 on every stream) and a
// LiteLLM alias before DeepSeek's API; each ended a turn whose payment
// round another provider answered, after the order was made. Taken for
// Mistral: an OpenAI fine-tune "ft:gpt-4o-mini:acme:mistral-distill",
// whose bot history lost its assistants' audio, function_call, refusal
// and name and had its call ids rewritten. Each target here names its
// family (on its provider, or on itself) and gets that family's rules.
func TestExplicitFamily(t *testing.T) {
	hist := []string{
		`{"role":"user","content":"weather?"}`,
		`{"role":"assistant","name":"shop","content":null,"refusal":null,"audio":{"id":"audio_6811c6b8a1f48191"},"tool_calls":[{"id":"call_w3ath3rW3ath3rW3ath3r1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`,
		`{"role":"tool","tool_call_id":"call_w3ath3rW3ath3rW3ath3r1","content":"sunny"}`,
		`{"role":"assistant","content":null,"function_call":{"name":"get_weather","arguments":"{}"}}`,
		`{"role":"function","name":"get_weather","content":"sunny"}`,
		`{"role":"assistant","content":"I can't help with that.","refusal":"I can't help with that."}`,
		`{"role":"user","content":"buy premium"}`,
	}
	const openaiID = "call_Ab12cD34eF56gH78iJ90kL12"
	for _, tc := range []struct {
		name             string
		model            string // the second target's, which the first fails over to
		provider, target string // its families ("": left out)
		handler          func(next http.HandlerFunc) http.HandlerFunc
		msgs             []string
		check            func(t *testing.T, stream bool, body []byte)
	}{
		{name: "azure deployment", model: "prod-large", provider: config.FamilyMistral,
			handler: func(next http.HandlerFunc) http.HandlerFunc { return mistralSchema(mistralStrict(next)) },
			check: func(t *testing.T, stream bool, body []byte) {
				checkToolIDs(t, body)
				// Not Mistral's API: its usage is counted by stream_options.
				if got := gjson.GetBytes(body, "stream_options").Exists(); got != stream {
					t.Errorf("stream_options sent: %v; want %v (kept as paygate sets it)", got, stream)
				}
			}},
		{name: "openrouter auto", model: "openrouter/auto", target: config.FamilyMistral,
			handler: func(next http.HandlerFunc) http.HandlerFunc { return mistralSchema(mistralStrict(next)) },
			check:   func(t *testing.T, _ bool, body []byte) { checkToolIDs(t, body) }},
		{name: "gateway before mistral.ai", model: "mistral-large-latest", provider: config.FamilyMistralAPI,
			handler: func(next http.HandlerFunc) http.HandlerFunc {
				return mistralNoStreamOptions(mistralSchema(mistralStrict(next)))
			},
			check: func(t *testing.T, _ bool, body []byte) { checkToolIDs(t, body) }},
		{name: "gateway before deepseek", model: "reasoner", target: config.FamilyDeepSeekAPI,
			handler: deepseekThinking,
			check: func(t *testing.T, _ bool, body []byte) {
				if got := gjson.GetBytes(body, `messages.#(role=="assistant").reasoning_content`); got.Type != gjson.String {
					t.Errorf("assistant message without reasoning_content: %s", body)
				}
			}},
		{name: "fine-tune named mistral", model: "ft:gpt-4o-mini:acme:mistral-distill", provider: config.FamilyOpenAI, msgs: hist,
			handler: func(next http.HandlerFunc) http.HandlerFunc { return next },
			check: func(t *testing.T, _ bool, body []byte) {
				// The bot's history as it sent it, and the payment
				// round's call under paygate's id, not mapped to
				// Mistral's form.
				msgs := gjson.GetBytes(body, "messages").Raw
				for _, m := range hist {
					if !strings.Contains(msgs, m) {
						t.Errorf("the fine-tune got the messages %s\nwithout the bot's message %s", msgs, m)
					}
				}
				if got := gjson.Get(msgs, `#(tool_call_id=="call_pg_1_0").content`); !got.Exists() {
					t.Errorf("the fine-tune got the messages %s\nwithout the payment round's result under call_pg_1_0", msgs)
				}
			}},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				openai := newFakeProvider(t, roundByRound(callsRoundID(stream, openaiID), unavailable()))
				second := newFakeProvider(t, tc.handler(textRound(stream, "Your order is ready.")))
				tools := &recordingTools{}
				url := familyProxyWith(t, tools, func(c *config.Config) {
					if tc.provider != "" {
						c.Providers[1].Family = tc.provider
					}
					c.Models[0].Targets[1].Family = tc.target
				}, familyProvider{openai, "gpt-4o-mini"}, familyProvider{second, tc.model})
				body := chatBody(stream, "")
				if tc.msgs != nil {
					body = chatBodyWith(stream, weatherTool, tc.msgs...)
				}
				resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
				out := readAll(t, resp.Body)
				if resp.StatusCode != 200 || !strings.HasSuffix(turnText(stream, out), "Your order is ready.") {
					t.Fatalf("status %d, answer %s; want the turn answered after failover to %s", resp.StatusCode, out, tc.model)
				}
				if got := tools.executed(); len(got) != 1 {
					t.Errorf("executed %v; want one create_order", got)
				}
				reqs := second.requests()
				if len(reqs) != 1 {
					t.Fatalf("%s got %d requests; want 1", tc.model, len(reqs))
				}
				tc.check(t, stream, reqs[0].Body)
			})
		}
	}
}
