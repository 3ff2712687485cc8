package proxy

import (
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
)

// TestRequestErrorsNameTheirParam: a request paygate refuses for one of its
// members answers an error whose "param" names that member, as OpenAI's
// do, so that a bot reading the SDK's error.param (the Node and Python
// SDKs' APIError, go-openai's APIError.Param) finds the field to fix; it
// read null. The model's absence stays as OpenAI words it, with no param.
func TestRequestErrorsNameTheirParam(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct{ name, body, param string }{
		{"messages not an array", `{"model":"gpt-test","messages":"hi"}`, "messages"},
		{"messages missing", `{"model":"gpt-test"}`, "messages"},
		{"stream not a boolean", `{"model":"gpt-test","stream":"yes",` + msgs + `}`, "stream"},
		{"include_usage not a boolean", `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":1},` + msgs + `}`, "stream_options.include_usage"},
		{"stream_options an array", `{"model":"gpt-test","stream":true,"stream_options":[],` + msgs + `}`, "stream_options"},
		{"stream_options a string", `{"model":"gpt-test","stream":true,"stream_options":"x",` + msgs + `}`, "stream_options"},
		{"n not an integer", `{"model":"gpt-test","n":"2",` + msgs + `}`, "n"},
		{"a member given twice", `{"model":"gpt-test","user":"a","user":"b",` + msgs + `}`, "user"},
		{"a member in another case", `{"model":"gpt-test","Stream":true,` + msgs + `}`, "stream"},
		{"a key given twice in tool_choice", `{"model":"gpt-test","tool_choice":{"type":"function","type":"none"},` + msgs + `}`, "tool_choice"},
		{"a tool named as a payment tool", `{"model":"gpt-test","tools":[{"type":"function","function":{"name":"create_order","parameters":{"type":"object"}}}],` + msgs + `}`, "tools"},
		{"a function named as a payment tool", `{"model":"gpt-test","functions":[{"name":"create_order","parameters":{"type":"object"}}],` + msgs + `}`, "functions"},
		{"tools not an array", `{"model":"gpt-test","tools":{},` + msgs + `}`, "tools"},
		{"no model", `{` + msgs + `}`, ""},
	}
	fp := newFakeProvider(t, jsonHandler(200, okCompletion))
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, url, "/v1/chat/completions", tc.body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d %s; want 400", resp.StatusCode, body)
			}
			if p := gjson.Get(body, "error.param"); p.Str != tc.param || tc.param == "" && p.Type != gjson.Null {
				t.Errorf("error %s; want param %q", body, tc.param)
			}
		})
	}
	if n := len(fp.requests()); n != 0 {
		t.Errorf("%d requests reached the provider; want none", n)
	}
}
