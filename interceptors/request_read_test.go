package interceptors

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestReadChat(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Chat
		wantErr    string
	}{
		{name: "all fields", body: `{"model":"m","stream":true,"user":"u1","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			want: Chat{Model: "m", Stream: true, User: "u1", WantsUsage: true}},
		{name: "client tools", body: `{"model":"m","messages":[],"tools":[]}`, want: Chat{Model: "m", HasTools: true}},
		{name: "null tools count as a member", body: `{"model":"m","messages":[],"tools":null}`, want: Chat{Model: "m", HasTools: true}},
		{name: "legacy functions", body: `{"model":"m","messages":[],"functions":[]}`, want: Chat{Model: "m", HasFunctions: true}},
		{name: "predicted outputs", body: `{"model":"m","messages":[],"prediction":{"type":"content","content":"x"}}`, want: Chat{Model: "m", HasPrediction: true}},
		{name: "null prediction", body: `{"model":"m","messages":[],"prediction":null}`, want: Chat{Model: "m"}},
		{name: "null stream and n", body: `{"model":"m","messages":[],"stream":null,"n":null}`, want: Chat{Model: "m"}},
		{name: "null include_usage", body: `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":null}}`, want: Chat{Model: "m", Stream: true}},
		// stream, include_usage and n take the JSON types of OpenAI's API
		// only: providers' validators read the others differently (pydantic,
		// in vLLM and LiteLLM, reads "yes" and 1 as true and "2" as 2;
		// gjson reads "yes" as false and "2" as no number), and paygate
		// would stream, account or refuse n>1 by another reading.
		{name: "stream a string", body: `{"model":"m","messages":[],"stream":"true","user":7}`, wantErr: `'stream' must be true, false or null`},
		{name: "stream yes", body: `{"model":"m","messages":[],"stream":"yes"}`, wantErr: `'stream' must be true, false or null`},
		{name: "stream a number", body: `{"model":"m","messages":[],"stream":1}`, wantErr: `'stream' must be true, false or null`},
		{name: "stream an object", body: `{"model":"m","messages":[],"stream":{}}`, wantErr: `'stream' must be true, false or null`},
		{name: "include_usage a string", body: `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":"yes"}}`,
			wantErr: `'include_usage' must be true, false or null`},
		{name: "n a string", body: `{"model":"m","messages":[],"n":"2"}`, wantErr: `'n' must be an integer`},
		{name: "n a fraction", body: `{"model":"m","messages":[],"n":1.5}`, wantErr: `'n' must be an integer`},
		{name: "n true", body: `{"model":"m","messages":[],"n":true}`, wantErr: `'n' must be an integer`},
		{name: "n an integral float", body: `{"model":"m","messages":[],"n":2.0}`, want: Chat{Model: "m", Choices: 2}},
		{name: "minimal", body: `{"messages":[],"model":"gpt-4o"}`, want: Chat{Model: "gpt-4o"}},
		{name: "escaped key and value", body: `{"mod\u0065l":"a\"b","messages":[]}`, want: Chat{Model: `a"b`}},
		{name: "other members may repeat", body: `{"model":"m","seed":1,"messages":[],"seed":2,"temperature":0,"temperature":1}`, want: Chat{Model: "m"}},
		{name: "n", body: `{"model":"m","n":3,"messages":[]}`, want: Chat{Model: "m", Choices: 3}},
		{name: "repeated n", body: `{"model":"m","n":1,"messages":[],"n":2}`, wantErr: `member "n" appears`},
		{name: "nested repeats are not top-level ones", body: `{"model":"m","messages":[{"role":"user","tag":"a","tag":"b"}],"stream_options":{"x":1,"x":2}}`,
			want: Chat{Model: "m"}},
		{name: "nested lookalikes are not the fields", body: `{"model":"m","messages":[{"model":"x","user":"y","stream":true}]}`, want: Chat{Model: "m"}},
		{name: "not JSON", body: `{"model":`, wantErr: "not valid JSON"},
		{name: "a byte-order mark", body: "\ufeff" + `{"model":"m","messages":[]}`, wantErr: "starts with a UTF-8 byte-order mark"},
		{name: "not an object", body: `["model"]`, wantErr: "must be a JSON object"},
		{name: "no model", body: `{"messages":[]}`, wantErr: "model parameter"},
		{name: "empty model", body: `{"model":"","messages":[]}`, wantErr: "model parameter"},
		{name: "model not a string", body: `{"model":4,"messages":[]}`, wantErr: "Invalid type for 'model': expected a string, but got an integer instead."},
		{name: "model null", body: `{"model":null,"messages":[]}`, wantErr: "model parameter"},
		{name: "messages not an array", body: `{"model":"m","messages":{}}`, wantErr: "'messages' must be an array"},
		{name: "no messages", body: `{"model":"m"}`, wantErr: "'messages' must be an array"},
		// A repeated member paygate reads or rewrites: paygate would act on
		// the first, the provider's parser keep the last.
		{name: "repeated model", body: `{"model":"gpt-test","user":"oWx-openid-123","messages":[],"model":"openai/o1-pro","user":"oWx-openid-123"}`,
			wantErr: `member "model" appears more than once`},
		{name: "repeated user", body: `{"model":"m","user":"a","messages":[],"user":"oWx-openid-123"}`, wantErr: `member "user" appears`},
		{name: "repeated user, one key escaped", body: `{"model":"m","user":"a","messages":[],"us\u0065r":"b"}`, wantErr: `member "user" appears`},
		{name: "repeated stream", body: `{"model":"m","stream":false,"messages":[],"stream":true}`, wantErr: `member "stream" appears`},
		{name: "repeated stream_options", body: `{"model":"m","stream_options":{},"messages":[],"stream_options":null}`, wantErr: `member "stream_options" appears`},
		{name: "repeated include_usage", body: `{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_usage":false},"messages":[]}`,
			wantErr: `member "include_usage" appears`},
		{name: "repeated messages", body: `{"model":"m","messages":[],"messages":[{"role":"user","content":"x"}]}`, wantErr: `member "messages" appears`},
		{name: "repeated tools", body: `{"model":"m","messages":[],"tools":[],"tools":null}`, wantErr: `member "tools" appears`},
		{name: "repeated tool_choice", body: `{"model":"m","messages":[],"tool_choice":"none","tool_choice":"auto"}`, wantErr: `member "tool_choice" appears`},
		{name: "repeated functions", body: `{"model":"m","messages":[],"functions":[],"functions":[{"name":"create_order"}]}`, wantErr: `member "functions" appears`},
		{name: "legacy function_call", body: `{"model":"m","messages":[],"functions":[],"function_call":{"name":"get_weather"}}`,
			want: Chat{Model: "m", HasFunctions: true, FunctionCall: `{"name":"get_weather"}`}},
		{name: "repeated prediction", body: `{"model":"m","messages":[],"prediction":null,"prediction":{"type":"content","content":"x"}}`, wantErr: `member "prediction" appears`},
		{name: "repeated function_call", body: `{"model":"m","messages":[],"function_call":"none","function_call":"auto"}`, wantErr: `member "function_call" appears`},
		{name: "Function_Call", body: `{"model":"m","messages":[],"Function_Call":"auto"}`, wantErr: `member "Function_Call" is "function_call"`},
		// A key repeated inside tool_choice (or function_call), at any
		// depth: paygate reads the first copy, the provider's parser keeps
		// the last, and the bot's instruction would be read two ways.
		{name: "tool_choice", body: `{"model":"m","messages":[],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}`,
			want: Chat{Model: "m", ToolChoice: `{"type":"function","function":{"name":"get_weather"}}`}},
		{name: "repeated function in tool_choice", body: `{"model":"m","messages":[],"tool_choice":{"type":"function","function":{"name":"create_order"},"function":{"name":"get_weather"}}}`,
			wantErr: `member "function" appears more than once in tool_choice`},
		{name: "repeated type in tool_choice", body: `{"model":"m","messages":[],"tool_choice":{"type":"auto","type":"function","function":{"name":"get_weather"}}}`,
			wantErr: `member "type" appears more than once in tool_choice`},
		{name: "repeated name deep in tool_choice", body: `{"model":"m","messages":[],"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"create_order","name":"get_weather"}}]}}}`,
			wantErr: `member "name" appears more than once in tool_choice`},
		{name: "repeated key escaped in tool_choice", body: `{"model":"m","messages":[],"tool_choice":{"type":"auto","typ\u0065":"none"}}`,
			wantErr: `member "type" appears more than once in tool_choice`},
		{name: "repeated key in another case in tool_choice", body: `{"model":"m","messages":[],"tool_choice":{"type":"auto","Type":"function","function":{"name":"get_weather"}}}`,
			wantErr: `member "Type" is "type" in tool_choice`},
		{name: "key in another case in tool_choice", body: `{"model":"m","messages":[],"tool_choice":{"TYPE":"function","Function":{"name":"get_weather"}}}`,
			wantErr: `member "TYPE" is "type" in tool_choice`},
		{name: "repeated name in function_call", body: `{"model":"m","messages":[],"function_call":{"name":"create_order","name":"get_weather"}}`,
			wantErr: `member "name" appears more than once in function_call`},
		{name: "same keys in sibling objects of tool_choice", body: `{"model":"m","messages":[],"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}]}}}`,
			want: Chat{Model: "m", ToolChoice: `{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}]}}`}},
		// The members that name the end user beside "user" are rewritten
		// too (identity.go): a second one would reach the provider as sent.
		{name: "repeated safety_identifier", body: `{"model":"m","safety_identifier":"a","messages":[],"safety_identifier":"oWx-openid-123"}`,
			wantErr: `member "safety_identifier" appears`},
		{name: "repeated prompt_cache_key", body: `{"model":"m","prompt_cache_key":"a","messages":[],"prompt_cache_key":"oWx-openid-123"}`,
			wantErr: `member "prompt_cache_key" appears`},
		{name: "repeated metadata", body: `{"model":"m","metadata":{},"messages":[],"metadata":{"openid":"oWx-openid-123"}}`,
			wantErr: `member "metadata" appears`},
		// A key that is a member paygate reads or rewrites in another case:
		// Go's encoding/json (Ollama, LocalAI, one-api relays) matches names
		// case-insensitively with Unicode folding, the last match winning.
		{name: "User", body: `{"model":"m","messages":[],"User":"oWx-openid-123"}`, wantErr: `member "User" is "user"`},
		{name: "user and USER", body: `{"model":"m","messages":[],"user":"a","USER":"oWx-openid-123"}`, wantErr: `member "USER" is "user"`},
		{name: "long s", body: `{"model":"m","messages":[],"u\u017fer":"oWx-openid-123"}`, wantErr: `member "uſer" is "user"`},
		{name: "long s unescaped", body: "{\"model\":\"m\",\"messages\":[],\"u\u017fer\":\"oWx\"}", wantErr: `member "uſer" is "user"`},
		{name: "escaped upper case", body: `{"model":"m","messages":[],"\u0055ser":"oWx"}`, wantErr: `member "User" is "user"`},
		{name: "Model", body: `{"model":"m","Model":"vendor/most-expensive","messages":[]}`, wantErr: `member "Model" is "model"`},
		{name: "Stream", body: `{"model":"m","Stream":true,"messages":[]}`, wantErr: `member "Stream" is "stream"`},
		{name: "Stream_Options", body: `{"model":"m","stream":true,"Stream_Options":{"include_usage":false},"messages":[]}`, wantErr: `member "Stream_Options" is "stream_options"`},
		{name: "Include_Usage", body: `{"model":"m","stream":true,"stream_options":{"include_usage":true,"Include_Usage":false},"messages":[]}`,
			wantErr: `member "Include_Usage" is "include_usage"`},
		{name: "N", body: `{"model":"m","N":2,"messages":[]}`, wantErr: `member "N" is "n"`},
		{name: "Messages", body: `{"model":"m","messages":[],"Messages":[]}`, wantErr: `member "Messages" is "messages"`},
		{name: "TOOLS", body: `{"model":"m","messages":[],"TOOLS":[]}`, wantErr: `member "TOOLS" is "tools"`},
		{name: "Tool_Choice", body: `{"model":"m","messages":[],"Tool_Choice":"none"}`, wantErr: `member "Tool_Choice" is "tool_choice"`},
		{name: "Functions", body: `{"model":"m","messages":[],"Functions":[{"name":"create_order"}]}`, wantErr: `member "Functions" is "functions"`},
		{name: "Safety_Identifier", body: `{"model":"m","messages":[],"Safety_Identifier":"oWx"}`, wantErr: `member "Safety_Identifier" is "safety_identifier"`},
		{name: "PROMPT_CACHE_KEY", body: `{"model":"m","messages":[],"PROMPT_CACHE_KEY":"oWx"}`, wantErr: `member "PROMPT_CACHE_KEY" is "prompt_cache_key"`},
		{name: "Metadata", body: `{"model":"m","messages":[],"Metadata":{"openid":"oWx"}}`, wantErr: `member "Metadata" is "metadata"`},
		{name: "keys like members are not members", body: `{"model":"m","messages":[],"Users":1,"userId":2,"NN":3,"Kelvin":4,"ſ":5,"用户":6}`,
			want: Chat{Model: "m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			got, err := ReadChat(body)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want ErrBadRequest with %q", err, tc.wantErr)
				}
				return
			}
			got.read = chatRead{} // where user was found: TestRewriteChatUsesWhatReadChatFound
			if err != nil || got != tc.want {
				t.Fatalf("ReadChat = %+v, %v; want %+v", got, err, tc.want)
			}
			// The strings kept do not alias the body, which the caller may reuse.
			for i := range body {
				body[i] = 'x'
			}
			if got != tc.want {
				t.Fatalf("after the body changed: %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestReadChatWatch: the names in watch (the providers' drop_fields) may not
// repeat either, however many there are; they need not be present.
func TestReadChatWatch(t *testing.T) {
	many := make([]string, 70)
	for i := range many {
		many[i] = fmt.Sprintf("f%d", i)
	}
	for _, tc := range []struct {
		name, body string
		watch      []string
		wantErr    string
	}{
		{name: "watched once", body: `{"model":"m","messages":[],"parallel_tool_calls":true}`, watch: []string{"parallel_tool_calls"}},
		{name: "watched absent", body: `{"model":"m","messages":[]}`, watch: []string{"parallel_tool_calls", "x.y"}},
		{name: "watched repeated", body: `{"model":"m","parallel_tool_calls":false,"messages":[],"parallel_tool_calls":true}`,
			watch: []string{"x.y", "parallel_tool_calls"}, wantErr: `member "parallel_tool_calls" appears`},
		{name: "dotted name repeated", body: `{"model":"m","x.y":1,"messages":[],"x.y":2}`, watch: []string{"x.y"}, wantErr: `member "x.y" appears`},
		{name: "past 64 names, once each", body: `{"model":"m","messages":[],"f69":1,"f0":2,"f64":3}`, watch: many},
		{name: "past 64 names, repeated", body: `{"model":"m","f69":1,"messages":[],"f69":2}`, watch: many, wantErr: `member "f69" appears`},
		{name: "watched in another case", body: `{"model":"m","messages":[],"Parallel_Tool_Calls":true}`,
			watch: []string{"parallel_tool_calls"}, wantErr: `member "Parallel_Tool_Calls" is "parallel_tool_calls"`},
		{name: "watched name with upper case, key in lower case", body: `{"model":"m","messages":[],"topk":1}`,
			watch: []string{"topK"}, wantErr: `member "topk" is "topK"`},
		{name: "watched past 64 names in another case", body: `{"model":"m","messages":[],"F69":1}`, watch: many, wantErr: `member "F69" is "f69"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ReadChat([]byte(tc.body), tc.watch...)
			if tc.wantErr == "" {
				if err != nil || c.Model != "m" {
					t.Fatalf("ReadChat = %+v, %v; want model m", c, err)
				}
				return
			}
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v; want ErrBadRequest with %q", err, tc.wantErr)
			}
		})
	}
}

// TestReadPassthrough: the members a passthrough body is routed and
// rewritten by, read as gjson reads them; a repeat of one is refused.
func TestReadPassthrough(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Passthrough
		wantErr    string
	}{
		{name: "embeddings", body: `{"model":"e","input":["a","b"],"user":"u1"}`, want: Passthrough{Model: "e", User: "u1", HasUser: true}},
		{name: "null user is a member", body: `{"model":"e","user":null,"stream":true}`, want: Passthrough{Model: "e", Stream: true, HasUser: true}},
		{name: "stream a string", body: `{"model":"e","stream":"yes"}`, wantErr: `'stream' must be true, false or null`},
		{name: "model not a string", body: `{"model":3,"input":"x"}`, wantErr: "Invalid type for 'model': expected a string, but got an integer instead."},
		{name: "model an array", body: `{"model":["e"],"input":"x"}`, wantErr: "but got an array instead"},
		{name: "model null names none", body: `{"model":null,"input":"x"}`, want: Passthrough{}},
		{name: "not an object", body: ` ["model","user"] `, want: Passthrough{}},
		{name: "other members may repeat", body: `{"model":"e","input":"a","input":"b"}`, want: Passthrough{Model: "e"}},
		{name: "not JSON", body: `{"model":`, wantErr: "not valid JSON"},
		{name: "a byte-order mark", body: "\ufeff" + `{"model":"e","input":"x"}`, wantErr: "starts with a UTF-8 byte-order mark"},
		{name: "repeated model", body: `{"model":"embed-test","input":"x","model":"openai/text-embedding-3-large"}`, wantErr: `member "model" appears`},
		{name: "repeated user", body: `{"model":"e","user":"a","input":"x","user":"oWx-openid-123"}`, wantErr: `member "user" appears`},
		{name: "repeated stream", body: `{"model":"e","stream":false,"stream":true}`, wantErr: `member "stream" appears`},
		{name: "repeated drop field", body: `{"model":"e","dimensions":1,"dimensions":2}`, wantErr: `member "dimensions" appears`},
		{name: "repeated safety_identifier", body: `{"model":"e","safety_identifier":"a","input":"x","safety_identifier":"oWx-openid-123"}`,
			wantErr: `member "safety_identifier" appears`},
		{name: "repeated prompt_cache_key", body: `{"model":"e","prompt_cache_key":"a","prompt_cache_key":"oWx-openid-123"}`, wantErr: `member "prompt_cache_key" appears`},
		{name: "repeated metadata", body: `{"model":"e","metadata":{},"metadata":{"u":"oWx-openid-123"}}`, wantErr: `member "metadata" appears`},
		{name: "Prompt_Cache_Key", body: `{"model":"e","Prompt_Cache_Key":"oWx"}`, wantErr: `member "Prompt_Cache_Key" is "prompt_cache_key"`},
		{name: "User", body: `{"model":"e","input":"x","User":"oWx-openid-123"}`, wantErr: `member "User" is "user"`},
		{name: "MODEL", body: `{"model":"e","input":"x","MODEL":"openai/text-embedding-3-large"}`, wantErr: `member "MODEL" is "model"`},
		{name: "drop field in another case", body: `{"model":"e","Dimensions":1}`, wantErr: `member "Dimensions" is "dimensions"`},
		{name: "input in another case is not paygate's", body: `{"model":"e","Input":"x"}`, want: Passthrough{Model: "e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			got, err := ReadPassthrough(body, "dimensions")
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want ErrBadRequest with %q", err, tc.wantErr)
				}
				return
			}
			got.read = identity{} // where the identity members are: TestRewritePassthrough
			if err != nil || got != tc.want {
				t.Fatalf("ReadPassthrough = %+v, %v; want %+v", got, err, tc.want)
			}
			for i := range body {
				body[i] = 'x'
			}
			if got != tc.want {
				t.Fatalf("after the body changed: %+v; want %+v", got, tc.want)
			}
		})
	}
}

// chatByPath is ReadChat written with gjson: what each field means, for
// the differential fuzz test.
func chatByPath(body []byte) (Chat, bool) {
	if !gjson.ValidBytes(body) {
		return Chat{}, false
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return Chat{}, false
	}
	// A member paygate reads or rewrites that repeats: paygate would act
	// on the first, the provider's parser keep the last.
	if repeats(root, chatMembers[:chatChecked]) || caseVariants(root, chatMembers[:chatChecked]) {
		return Chat{}, false
	}
	var f [len(chatMembers)]gjson.Result
	members(root, chatMembers[:], f[:])
	if ambiguousMessages(f[chatMessages]) {
		return Chat{}, false
	}
	if so := f[chatStreamOptions]; so.IsObject() && (repeats(so, []string{"include_usage"}) || caseVariants(so, []string{"include_usage"})) {
		return Chat{}, false
	}
	for j, name := range map[int]string{chatResponseFormat: "type", chatThinking: "budget_tokens", chatReasoning: "max_tokens"} {
		if o := f[j]; o.IsObject() && (repeats(o, []string{name}) || caseVariants(o, []string{name})) {
			return Chat{}, false
		}
	}
	if f[chatModel].Type != gjson.String || f[chatModel].Str == "" || !f[chatMessages].IsArray() {
		return Chat{}, false
	}
	// stream, include_usage and n: OpenAI's JSON types only.
	if !boolOrNull(f[chatStream]) || f[chatStreamOptions].IsObject() && !boolOrNull(f[chatStreamOptions].Get("include_usage")) {
		return Chat{}, false
	}
	n := f[chatN]
	if n.Exists() && n.Type != gjson.Null && (n.Type != gjson.Number || n.Num != math.Trunc(n.Num)) {
		return Chat{}, false
	}
	choices := int(n.Int())
	// tool_choice and function_call as sent; a key repeated inside them is
	// checkChoiceKeys' refusal (its own table tests in TestReadChat).
	for _, j := range [...]int{chatToolChoice, chatFunctionCall} {
		if checkChoiceKeys(chatMembers[j], f[j].Raw) != nil {
			return Chat{}, false
		}
	}
	return Chat{
		Model:         f[chatModel].Str,
		Stream:        f[chatStream].Bool(),
		User:          f[chatUser].Str,
		WantsUsage:    f[chatStreamOptions].Get("include_usage").Bool(),
		HasTools:      f[chatTools].Exists(),
		HasFunctions:  f[chatFunctions].Exists(),
		HasPrediction: f[chatPrediction].Exists() && f[chatPrediction].Type != gjson.Null,
		Choices:       choices,
		ToolChoice:    f[chatToolChoice].Raw,
		FunctionCall:  f[chatFunctionCall].Raw,
		// "stop" as the turn read it before ReadChat located it: a path
		// lookup, the first of a repeated member, none in another case.
		Stop:           gjson.GetBytes(body, "stop").Raw,
		ResponseFormat: gjson.GetBytes(body, "response_format").Raw,
	}, true
}

// boolOrNull: r is absent, true, false or null.
func boolOrNull(r gjson.Result) bool {
	return !r.Exists() || r.Type == gjson.True || r.Type == gjson.False || r.Type == gjson.Null
}

// fuzzWatch are drop_fields for FuzzReadChat: one that the seeds repeat,
// one spelled as an sjson path would not take it literally.
var fuzzWatch = []string{"n", "x.y"}

// passthroughByPath is ReadPassthrough written with gjson, as the
// passthrough handler read the body before it refused repeats.
func passthroughByPath(body []byte, watch []string) (Passthrough, bool) {
	if !gjson.ValidBytes(body) {
		return Passthrough{}, false
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return Passthrough{}, true
	}
	if repeats(root, passthroughMembers[:]) || repeats(root, watch) ||
		caseVariants(root, passthroughMembers[:]) || caseVariants(root, watch) {
		return Passthrough{}, false
	}
	res := gjson.GetManyBytes(body, "model", "stream", "user")
	if !boolOrNull(res[1]) {
		return Passthrough{}, false
	}
	// A model that is neither a string nor null is refused (OpenAI's
	// invalid_type), not read as naming none.
	if m := res[0]; m.Exists() && m.Type != gjson.String && m.Type != gjson.Null {
		return Passthrough{}, false
	}
	return Passthrough{Model: res[0].Str, Stream: res[1].Bool(), User: res[2].Str, HasUser: res[2].Exists()}, true
}

// FuzzReadChat checks ReadChat's walk, and ReadPassthrough's, against
// gjson's reading of the same body, and that no body makes them panic.
func FuzzReadChat(f *testing.F) {
	for _, b := range []string{
		`{"model":"m","stream":true,"user":"u1","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
		`{"mod\u0065l":"a\"b","messages":[],"tools":[{"type":"function"}]}`,
		`{"model":"first","model":"second","stream":1,"stream":false,"messages":[]}`,
		`{"model":"m","messages":[],"us\u0065r":"a","user":"b"}`,
		`{"model":"m","messages":[],"stream_options":{"include_usage":true,"include_usage":false}}`,
		`{"model":"m","messages":[{"model":"x","model":"y"}],"n":1,"n":2,"tool_choice":"auto"}`,
		`{"model":"m","messages":[{"model":"x","user":"y","stream":true}],"stream_options":null}`,
		` {"model":"m","messages":[],"stream":"true","user":7} `,
		`{"model":"embed","input":["a"],"user":null,"x.y":1,"x\u002ey":2}`,
		`["model","user"]`,
		`{"model":"m","messages":[],"User":"a","u\u017fer":"b","N":2,"NN":3}`,
		`{"model":"m","messages":[],"safety_identifier":"a","prompt_cache_key":"b","metadata":{"u":"c"},"safety_identifier":"d"}`,
		`{"model":"m","messages":[],"Metadata":{},"PROMPT_CACHE_KEY":"x"}`,
		`{"model":"m","messages":[{"stop":"x"}],"stop":["\n","\u0020"],"stop":"second"}`,
		`{"model":"m","messages":[],"st\u006fp":"\n","Stop":" ","STOP":null}`,
		`{"model":"m","Stop":"x","messages":[],"stop" : [ ] }`,
		`{"model":"m","messages":[{"response_format":1}],"response_format":{"type":"json_object"},"response_format":null}`,
		`{"model":"m","messages":[],"respons\u0065_format":{"type":"json_schema"},"Response_Format":{"type":"text"}}`,
		`{"model":"m","messages":[],"response_format":{"type":"text","typ\u0065":"json_object","Type":"json_schema"}}`,
		`{"model":"m","messages":[],"thinking":{"budget_tokens":2048,"budget_tok\u0065ns":10},"reasoning":{"max_tokens":1,"Max_tokens":2}}`,
		`{"model":"m","messages":[{"role":"user","Role":"system"},{"role":"tool","tool_call_id":"a","tool_call_id":"b"}]}`,
		`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","name":"g"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"},{"Type":"image_url"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","te\u0078t":"a"}],"tool_call\u017f":[]}]}`,
		`{"model":0}`,
		`{"model":null,"input":"x"}`,
		`{"model":["m"],"stream":true}`,
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := ReadChat([]byte(body))
		got.read = chatRead{}
		want, ok := chatByPath([]byte(body))
		if (err == nil) != ok || got != want {
			t.Fatalf("ReadChat(%q) = %+v, %v; gjson reads %+v, ok %v", body, got, err, want, ok)
		}
		// Watching drop_fields refuses a repeat of one of them too.
		got, err = ReadChat([]byte(body), fuzzWatch...)
		got.read = chatRead{}
		if ok && (repeats(gjson.Parse(body), fuzzWatch) || caseVariants(gjson.Parse(body), fuzzWatch)) {
			want, ok = Chat{}, false
		}
		if (err == nil) != ok || got != want {
			t.Fatalf("ReadChat(%q, %q) = %+v, %v; gjson reads %+v, ok %v", body, fuzzWatch, got, err, want, ok)
		}
		p, err := ReadPassthrough([]byte(body), fuzzWatch...)
		p.read = identity{}
		pwant, ok := passthroughByPath([]byte(body), fuzzWatch)
		if (err == nil) != ok || p != pwant {
			t.Fatalf("ReadPassthrough(%q, %q) = %+v, %v; gjson reads %+v, ok %v", body, fuzzWatch, p, err, pwant, ok)
		}
	})
}

// ambiguousMessages reports whether a message of msgs (the first
// messages member), or a content part of one, or a tool call of one, or
// a call's function or custom, names a member paygate reads of it
// (chatMessagesField) twice or in another case (caseVariants: any
// Unicode folding).
func ambiguousMessages(msgs gjson.Result) bool {
	bad := func(o gjson.Result, names ...string) bool {
		return o.IsObject() && (repeats(o, names) || caseVariants(o, names))
	}
	found := false
	msgs.ForEach(func(_, m gjson.Result) bool {
		if bad(m, "role", "content", "tool_call_id", "tool_calls") {
			found = true
			return false
		}
		if parts := m.Get("content"); parts.IsArray() {
			parts.ForEach(func(_, p gjson.Result) bool {
				found = bad(p, "type", "text")
				return !found
			})
			if found {
				return false
			}
		}
		if calls := m.Get("tool_calls"); calls.IsArray() {
			calls.ForEach(func(_, c gjson.Result) bool {
				found = bad(c, "id", "type", "function", "custom") ||
					bad(c.Get("function"), "name", "arguments") || bad(c.Get("custom"), "name", "input")
				return !found
			})
		}
		return !found
	})
	return found
}

// members sets out[i] to the first top-level member of obj named names[i]
// (the zero Result when there is none) in one pass over obj. A path lookup
// per name scans obj from its start each time, and a chat body is mostly
// the messages each of them would skip again. Where a member repeats, the
// first counts, as in a path lookup. The results share obj's memory.
func members(obj gjson.Result, names []string, out []gjson.Result) {
	obj.ForEach(func(k, v gjson.Result) bool {
		for i, n := range names {
			if k.Str == n && out[i].Raw == "" {
				out[i] = v
			}
		}
		return true
	})
}

// caseVariants reports whether a top-level key of obj is one of names in
// another case, as strings.EqualFold (and encoding/json) compares them.
func caseVariants(obj gjson.Result, names []string) bool {
	found := false
	obj.ForEach(func(k, _ gjson.Result) bool {
		for _, n := range names {
			if k.Str != n && strings.EqualFold(k.Str, n) {
				found = true
			}
		}
		return !found
	})
	return found
}

// repeats reports whether a top-level member of obj named in names appears
// more than once, keys compared as decoded.
func repeats(obj gjson.Result, names []string) bool {
	count := make([]int, len(names))
	dup := false
	obj.ForEach(func(k, _ gjson.Result) bool {
		for i, n := range names {
			if k.Str == n {
				count[i]++
				dup = dup || count[i] > 1
			}
		}
		return !dup
	})
	return dup
}

// TestReadChatNesting: a body nested up to MaxNesting levels reads; one
// level more is an ErrBadRequest naming the nesting, decided before any
// parse. Brackets inside strings, escaped quotes among them, are text.
func TestReadChatNesting(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	chat := func(v string) string {
		return `{"model":"m","messages":[{"role":"user","content":"hi"}],"metadata":` + v + `}`
	}
	for _, tc := range []struct {
		name, body string
		refused    bool
	}{
		{"at the limit", chat(nest(MaxNesting - 1)), false},
		{"one past it", chat(nest(MaxNesting)), true},
		{"brackets in a string", chat(`"` + strings.Repeat(`[{\"`, 2*MaxNesting) + `"`), false},
		{"the top level alone", nest(MaxNesting + 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadChat([]byte(tc.body))
			refused := err != nil && strings.Contains(err.Error(), "nested more than")
			if refused != tc.refused || tc.refused && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("ReadChat: %v; want refused for its nesting: %v", err, tc.refused)
			}
			_, err = ReadPassthrough([]byte(tc.body))
			if refused := err != nil && strings.Contains(err.Error(), "nested more than"); refused != tc.refused {
				t.Fatalf("ReadPassthrough: %v; want refused for its nesting: %v", err, tc.refused)
			}
		})
	}
}

// TestReadChatChecksEveryMember holds ReadChat to refusing each member it
// reads (chatMembers) given twice or in another case: paygate, as every
// gjson or sjson path, reads or rewrites the first copy and the provider's
// parser keeps the last. "stop" and "response_format" were once only
// located, and the turn broke rounds' text and shaped its answer by a copy
// the provider did not act on. readMembers checks names[:chatChecked]
// only, so a member appended after chatChecked would be read with no
// refusal. It fails here by name.
func TestReadChatChecksEveryMember(t *testing.T) {
	locatedOnly := map[string]bool{}
	if chatChecked != len(chatMembers) || chatMembers[chatStop] != "stop" || chatMembers[chatResponseFormat] != "response_format" {
		t.Fatalf("chatMembers ends with %q past chatChecked %d, chatStop is %d, chatResponseFormat %d: a member after chatChecked is not refused repeated or in another case; put it before",
			chatMembers[chatChecked:], chatChecked, chatStop, chatResponseFormat)
	}
	for j, name := range chatMembers {
		base := map[string]string{"model": `"messages":[]`, "messages": `"model":"m"`}[name]
		if base == "" {
			base = `"model":"m","messages":[]`
		}
		for _, body := range []string{
			`{` + base + `,"` + name + `":null,"` + name + `":null}`,
			`{` + base + `,"` + name + `":null,"` + strings.ToUpper(name) + `":null}`,
		} {
			_, err := ReadChat([]byte(body))
			refused := errors.Is(err, ErrBadRequest) && strings.Contains(err.Error(), name)
			switch {
			case locatedOnly[name] && err != nil:
				t.Errorf("ReadChat(%s) = %v; %q is only located, its first read", body, err, name)
			case !locatedOnly[name] && !refused:
				t.Errorf("ReadChat(%s) = %v; want %q refused (chatMembers[%d], chatChecked %d)", body, err, name, j, chatChecked)
			}
		}
	}
}

// TestReadChatMembersPastTheStackArray: ReadChat and ReadPassthrough keep
// the first topMembers members of a body in an array on the stack and the
// rest where append grows them; a member past the array (a "user" after a
// bot's 40 vendor fields) is read, hashed and held to the repeat and case
// rules as one in it is. A reader that stopped at the array's end would
// forward that "user" unhashed and let a second "user" through.
func TestReadChatMembersPastTheStackArray(t *testing.T) {
	const o = "oWx-openid-42"
	u := Upstream{Client: "bot", EndUser: o, Privacy: NewPrivacy("hash", []byte("k"))}
	for _, fill := range []int{0, topMembers - 3, topMembers - 2, topMembers - 1, topMembers, 3 * topMembers} {
		var b strings.Builder
		b.WriteString(`{"model":"m","messages":[]`) // two members before the fill
		for i := range fill {
			fmt.Fprintf(&b, `,"x%d":%d`, i, i)
		}
		head := b.String()
		t.Run(fmt.Sprint(fill+2, " members before"), func(t *testing.T) {
			body := head + `,"user":"` + o + `","stream":true}`
			c, err := ReadChat([]byte(body))
			if err != nil || c.User != o || !c.Stream {
				t.Fatalf("ReadChat = %+v, %v; want user %q and stream read", c, err, o)
			}
			out, err := RewriteChat([]byte(body), c, u)
			if err != nil || strings.Contains(string(out), o) {
				t.Fatalf("RewriteChat = %s, %v; want the user hashed", out, err)
			}
			p, err := ReadPassthrough([]byte(body))
			if err != nil || p.User != o || !p.HasUser {
				t.Fatalf("ReadPassthrough = %+v, %v; want user %q", p, err, o)
			}
			if out := RewritePassthrough([]byte(body), p, u); strings.Contains(string(out), o) {
				t.Fatalf("RewritePassthrough = %s; want the user hashed", out)
			}
			for _, bad := range []struct{ tail, err string }{
				{`,"user":"a","user":"` + o + `"}`, `member "user" appears more than once`},
				{`,"user":"a","us\u0065r":"b"}`, `member "user" appears more than once`},
				{`,"User":"` + o + `"}`, `"User" is "user" to some providers`},
				{`,"model":"other"}`, `member "model" appears more than once`},
			} {
				if _, err := ReadChat([]byte(head + bad.tail)); err == nil || !strings.Contains(err.Error(), bad.err) {
					t.Errorf("ReadChat(…%s) = %v; want %q", bad.tail, err, bad.err)
				}
				if _, err := ReadPassthrough([]byte(head + bad.tail)); err == nil || !strings.Contains(err.Error(), bad.err) {
					t.Errorf("ReadPassthrough(…%s) = %v; want %q", bad.tail, err, bad.err)
				}
			}
		})
	}
}

// TestReadMembersAllocateNothingPerMember: ReadChat and ReadPassthrough
// allocate as much for a body of 20,000 top-level members as for one of
// five. The members ValidMembers lists for them are kept in an array on
// the stack; a body with more is read by a walk of its own, not by a
// list grown on the heap, which took 40 bytes for each member: about
// 330 MB allocated for an 8 MiB body of "":0 members, 40 times the body,
// per request.
func TestReadMembersAllocateNothingPerMember(t *testing.T) {
	few := []byte(`{"model":"m","messages":[],"user":"u","x":0,"y":0}`)
	many := []byte(`{"model":"m","messages":[],` + strings.Repeat(`"":0,`, 20000) + `"user":"u"}`)
	for _, read := range []struct {
		name string
		fn   func([]byte) error
	}{
		{"ReadChat", func(b []byte) error { _, err := ReadChat(b); return err }},
		{"ReadPassthrough", func(b []byte) error { _, err := ReadPassthrough(b); return err }},
	} {
		allocs := func(body []byte) float64 {
			return testing.AllocsPerRun(20, func() {
				if err := read.fn(body); err != nil {
					t.Fatal(err)
				}
			})
		}
		if a, b := allocs(few), allocs(many); b > a {
			t.Errorf("%s allocates %v times for 20,000 members, %v for five", read.name, b, a)
		}
	}
}
