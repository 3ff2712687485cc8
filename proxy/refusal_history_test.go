package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/jsonstr"
)

// refusesBareAssistant answers with status and body, as the provider does,
// a request with an assistant message that has neither content (null,
// absent or "") nor tool calls, and passes every other request to next.
func refusesBareAssistant(status int, body string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		bare := false
		gjson.GetBytes(b, "messages").ForEach(func(_, m gjson.Result) bool {
			c := m.Get("content")
			if m.Get("role").Str == "assistant" && m.Get("tool_calls.#").Int() == 0 && (c.Type == gjson.Null || c.Str == "" && c.Type == gjson.String) {
				bare = true
			}
			return !bare
		})
		if bare {
			jsonHandler(status, body)(w, r)
			return
		}
		next(w, r)
	}
}

// TestRefusalInHistoryReachesTheModel: a turn whose rounds are spent ends
// a json_schema answer with the clarification as the message's refusal,
// content null (dee2265b). A bot pushes that message into its history as
// it came, so its next request carries {"role":"assistant","content":null,
// "refusal":"<the question>"} before the user's answer. DeepSeek's API
// answers such a message 400 "Invalid assistant message: content or
// tool_calls must be set", Mistral's 400 "Assistant message must have
// either content or tool_calls, but not none." (after the 422 for the
// refusal member it does not take), Ollama's OpenAI-compatible API 400
// "invalid message content type: <nil>"; and a model whose server takes
// the message but reads no refusal never sees the question it is being
// answered. Every family's model gets the question as the message's
// content. A streaming bot whose rounds said something before the
// refusal keeps their text as the content beside it: Mistral's API refuses
// the refusal member (422), and a server that takes it may not show it;
// the question follows the text in the content.
func TestRefusalInHistoryReachesTheModel(t *testing.T) {
	const schema = `"response_format":{"type":"json_schema","json_schema":{"name":"reply","strict":true,"schema":{"type":"object","properties":{"reply":{"type":"string"}},"required":["reply"],"additionalProperties":false}}},`
	const answer = `{"role":"user","content":"premium monthly, please"}`
	for _, tc := range []struct {
		name, model string
		strict      func(next http.HandlerFunc) http.HandlerFunc
	}{
		{"deepseek", "deepseek-chat", func(next http.HandlerFunc) http.HandlerFunc {
			return refusesBareAssistant(400, `{"error":{"message":"Invalid assistant message: content or tool_calls must be set","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`, next)
		}},
		{"mistral", "mistral-large-latest", func(next http.HandlerFunc) http.HandlerFunc {
			return mistralSchema(refusesBareAssistant(400, `{"object":"error","message":"Assistant message must have either content or tool_calls, but not none.","type":"invalid_request_error","param":null,"code":null}`, next))
		}},
		{"ollama", "qwen3:8b", func(next http.HandlerFunc) http.HandlerFunc {
			return refusesBareAssistant(400, `{"error":{"message":"invalid message content type: <nil>","type":"invalid_request_error","param":null,"code":null}}`, next)
		}},
		{"takes it, reads no refusal", "gpt-4o-mini", func(next http.HandlerFunc) http.HandlerFunc { return next }},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				// Every round of turn 1 calls create_order (streamed, after
				// saying "On it."); turn 2, which carries the user's
				// answer, is answered in words.
				fp := newFakeProvider(t, tc.strict(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					if strings.Contains(string(b), "premium monthly, please") {
						textRound(stream, `{"reply":"Ordering premium monthly."}`)(w, r)
						return
					}
					if stream {
						wordsRound(true, "On it.", createOrderCall, "tool_calls")(w, r)
						return
					}
					callsRound(false, createOrderCall)(w, r)
				}))
				url := familyProxy(t, &recordingTools{}, familyProvider{fp, tc.model})
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				first := readAll(t, post(t, url, "/v1/chat/completions", chatBody(stream, schema), hdr).Body)
				// The message the bot keeps: as it came, or as the SDK's
				// stream helper puts the deltas together.
				msg := gjson.Get(first, "choices.0.message").Raw
				if stream {
					msg = `{"role":"assistant","content":` + string(jsonstr.Append(nil, answerText(true, first))) + `,"refusal":` + string(jsonstr.Append(nil, answerRefusal(true, first))) + `}`
				}
				if gjson.Get(msg, "refusal").Str != config.DefaultClarification || !stream && gjson.Get(msg, "content").Type != gjson.Null {
					t.Fatalf("turn 1 answered %s; want the clarification as the refusal", first)
				}
				n := len(fp.requests())
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, schema, `{"role":"user","content":"buy premium"}`, msg, answer), hdr)
				out := readAll(t, resp.Body)
				if resp.StatusCode != 200 || !strings.Contains(turnText(stream, out), "Ordering premium monthly.") {
					t.Fatalf("turn 2: status %d, answer %s; want the model's answer", resp.StatusCode, out)
				}
				reqs := fp.requests()[n:]
				if len(reqs) != 1 {
					t.Fatalf("turn 2 made %d provider requests; want 1", len(reqs))
				}
				asked := false
				gjson.GetBytes(reqs[0].Body, "messages").ForEach(func(_, m gjson.Result) bool {
					if m.Get("role").Str == "assistant" && strings.HasSuffix(m.Get("content").Str, config.DefaultClarification) {
						asked = true
					}
					return true
				})
				if !asked {
					t.Errorf("turn 2's model got the messages %s; want an assistant message whose content ends with the question asked, %q", gjson.GetBytes(reqs[0].Body, "messages").Raw, config.DefaultClarification)
				}
			})
		}
	}
}
