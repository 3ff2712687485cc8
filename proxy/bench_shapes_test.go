package proxy

import (
	"bytes"
	"strconv"
	"testing"
)

// chunkShape is one provider's stream as it sends it: head before the
// events (comments), each content event i, the finish event and the tail
// after it (usage chunk, [DONE]).
type chunkShape struct {
	name          string
	head          string
	event         func(i int) string
	finish, tail  string
	noUsageBefore bool
}

const oaHead = `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion.chunk","created":1752019200,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8",`

// argFragment is a long tool-call argument fragment, as models stream a
// JSON argument holding prose.
func argFragment(i int) string {
	return `Line ` + strconv.Itoa(i) + ` of the note: the premium plan costs 49.99 CNY a month, \"priority support\" included, renews monthly. `
}

// chunkShapes are the streams of real providers, from captured streams
// (interceptors/testdata, provider documentation and issue threads): the
// members each sends beside the text, in its order.
var chunkShapes = []chunkShape{
	{name: "Ideal", event: func(i int) string {
		return `{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":"tok` + strconv.Itoa(i%10) + ` "},"logprobs":null,"finish_reason":null}]}`
	}, finish: `{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`},
	{name: "OpenAI", event: func(i int) string {
		return oaHead + `"choices":[{"index":0,"delta":{"content":"tok` + strconv.Itoa(i%10) + ` "},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k3J` + strconv.Itoa(i%7) + `"}`
	}, finish: oaHead + `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"Zq"}`,
		tail: oaHead + `"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"a1b2"}`},
	{name: "OpenAILogprobs", event: func(i int) string {
		return oaHead + `"choices":[{"index":0,"delta":{"content":"tok` + strconv.Itoa(i%10) + ` "},"logprobs":{"content":[{"token":"tok` + strconv.Itoa(i%10) + ` ","logprob":-0.0012,"bytes":[116,111,107,32],"top_logprobs":[{"token":"tok","logprob":-0.0012,"bytes":[116,111,107]},{"token":"to","logprob":-7.25,"bytes":[116,111]}]}],"refusal":null},"finish_reason":null}],"usage":null,"obfuscation":"k3J"}`
	}, finish: oaHead + `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
		tail: oaHead + `"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242}}`},
	{name: "OpenAIErrorNull", event: func(i int) string {
		return oaHead + `"choices":[{"index":0,"delta":{"content":"tok` + strconv.Itoa(i%10) + ` "},"logprobs":null,"finish_reason":null}],"usage":null,"error":null}`
	}, finish: oaHead + `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"error":null}`,
		tail: oaHead + `"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242},"error":null}`},
	{name: "OpenAITool", event: func(i int) string {
		if i == 0 {
			return oaHead + `"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_Qm3kWq8Yz1LvN2","type":"function","function":{"name":"save_note","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`
		}
		return oaHead + `"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"` + argFragment(i) + `"}}]},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x"}`
	}, finish: oaHead + `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}`,
		tail: oaHead + `"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242}}`},
	{name: "OpenRouter", head: ": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n", event: func(i int) string {
		return `{"id":"gen-1752019500-Ab3dEf","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":{"role":"assistant","content":"tok` + strconv.Itoa(i%10) + ` ","reasoning":null,"reasoning_details":[]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`
	}, finish: `{"id":"gen-1752019500-Ab3dEf","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":null,"reasoning_details":[]},"finish_reason":"stop","native_finish_reason":"end_turn","logprobs":null}]}`,
		tail: `{"id":"gen-1752019500-Ab3dEf","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242,"cost":0.0031,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`},
	{name: "OpenRouterReasoning", head: ": OPENROUTER PROCESSING\n\n", event: func(i int) string {
		return `{"id":"gen-1752019500-Ab3dEf","provider":"Google","model":"google/gemini-2.5-pro","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"step ` + strconv.Itoa(i%10) + ` ","reasoning_details":[{"type":"reasoning.text","text":"step ` + strconv.Itoa(i%10) + ` ","format":"google-gemini-v1","index":0}]},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`
	}, finish: `{"id":"gen-1752019500-Ab3dEf","provider":"Google","model":"google/gemini-2.5-pro","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":{"role":"assistant","content":"Done."},"finish_reason":"stop","native_finish_reason":"STOP","logprobs":null}]}`,
		tail: `{"id":"gen-1752019500-Ab3dEf","provider":"Google","model":"google/gemini-2.5-pro","object":"chat.completion.chunk","created":1752019500,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242}}`},
	{name: "DeepSeekReasoner", event: func(i int) string {
		return `{"id":"5f3c9e1a-7b2d-4c8e-9a10-3d2b1c0e9f87","object":"chat.completion.chunk","created":1752019600,"model":"deepseek-reasoner","system_fingerprint":"fp_393bca965e_prod0623_fp8_kvcache","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"step ` + strconv.Itoa(i%10) + ` "},"logprobs":null,"finish_reason":null}]}`
	}, finish: `{"id":"5f3c9e1a-7b2d-4c8e-9a10-3d2b1c0e9f87","object":"chat.completion.chunk","created":1752019600,"model":"deepseek-reasoner","system_fingerprint":"fp_393bca965e_prod0623_fp8_kvcache","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":180},"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":42}}`},
	{name: "DeepSeekChat", event: func(i int) string {
		return `{"id":"5f3c9e1a-7b2d-4c8e-9a10-3d2b1c0e9f87","object":"chat.completion.chunk","created":1752019600,"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0623_fp8_kvcache","choices":[{"index":0,"delta":{"content":"tok` + strconv.Itoa(i%10) + ` "},"logprobs":null,"finish_reason":null}]}`
	}, finish: `{"id":"5f3c9e1a-7b2d-4c8e-9a10-3d2b1c0e9f87","object":"chat.completion.chunk","created":1752019600,"model":"deepseek-chat","system_fingerprint":"fp_8802369eaa_prod0623_fp8_kvcache","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242,"prompt_tokens_details":{"cached_tokens":32},"prompt_cache_hit_tokens":32,"prompt_cache_miss_tokens":10}}`},
	{name: "Qwen", event: func(i int) string {
		return `{"choices":[{"delta":{"content":"tok` + strconv.Itoa(i%10) + ` "},"finish_reason":null,"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`
	}, finish: `{"choices":[{"finish_reason":"stop","delta":{"content":""},"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`,
		tail: `{"choices":[],"object":"chat.completion.chunk","usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242,"prompt_tokens_details":{"cached_tokens":0}},"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`},
	{name: "QwenTool", event: func(i int) string {
		id, name := `""`, `""`
		if i == 0 {
			id, name = `"call_5507104cb4b2468283571e"`, `"save_note"`
		}
		return `{"choices":[{"delta":{"content":null,"role":null,"tool_calls":[{"index":0,"id":` + id + `,"type":"function","function":{"name":` + name + `,"arguments":"` + argFragment(i) + `"}}]},"finish_reason":null,"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`
	}, finish: `{"choices":[{"finish_reason":"tool_calls","delta":{"content":null},"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`,
		tail: `{"choices":[],"object":"chat.completion.chunk","usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242},"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`},
	{name: "Moonshot", event: func(i int) string {
		return `{"id":"chatcmpl-67500eb0c51af667d5968f74","object":"chat.completion.chunk","created":1733299889,"model":"moonshot-v1-8k","choices":[{"index":0,"delta":{"content":"tok` + strconv.Itoa(i%10) + ` "},"finish_reason":null}],"system_fingerprint":"fpv0_c26222aa"}`
	}, finish: `{"id":"chatcmpl-67500eb0c51af667d5968f74","object":"chat.completion.chunk","created":1733299889,"model":"moonshot-v1-8k","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":42,"completion_tokens":200,"total_tokens":242,"cached_tokens":0}}],"system_fingerprint":"fpv0_c26222aa"}`},
	{name: "Gemini", event: func(i int) string {
		return `{"choices":[{"delta":{"content":"tok` + strconv.Itoa(i%10) + ` ","role":"assistant"},"index":0}],"created":1752019800,"id":"kT5taJjQGcuMnvgPq7Kq4A8","model":"gemini-2.5-flash","object":"chat.completion.chunk"}`
	}, finish: `{"choices":[{"delta":{"role":"assistant"},"finish_reason":"stop","index":0}],"created":1752019800,"id":"kT5taJjQGcuMnvgPq7Kq4A8","model":"gemini-2.5-flash","object":"chat.completion.chunk","usage":{"completion_tokens":200,"prompt_tokens":42,"total_tokens":286}}`},
}

// stream renders the shape with n content events.
func (c chunkShape) stream(n int) []byte {
	var b bytes.Buffer
	b.WriteString(c.head)
	for i := 0; i < n; i++ {
		b.WriteString("data: " + c.event(i) + "\n\n")
	}
	b.WriteString("data: " + c.finish + "\n\n")
	if c.tail != "" {
		b.WriteString("data: " + c.tail + "\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkStreamRealShapes relays each provider's stream, plain and for a
// known user (capture), to compare the per-event cost of each shape with
// the idealised chunk's (Ideal).
func BenchmarkStreamRealShapes(b *testing.B) {
	for _, mode := range []string{"Relay", "Capture"} {
		for _, c := range chunkShapes {
			b.Run(mode+"/"+c.name, func(b *testing.B) {
				benchRelayOf(b, c.stream(benchEvents), mode == "Capture")
			})
		}
	}
}

// nonStreamShapes are non-stream answers as providers send them, the text
// of BenchmarkNonStreamTurn's answer with each one's members.
var nonStreamShapes = []struct{ name, answer string }{
	{"OpenAI", `{"id":"chatcmpl-BrT4pX0m3kWq8Yz1LvN2","object":"chat.completion","created":1752019200,"model":"gpt-4o-2024-08-06",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"` + benchAnswerText + `","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":42,"completion_tokens":27,"total_tokens":69,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
		`"service_tier":"default","system_fingerprint":"fp_07871e2ad8"}`},
	{"ErrorNull", `{"id":"chatcmpl-1","object":"chat.completion","created":1752019200,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` + benchAnswerText + `"},"finish_reason":"stop","error":null}],` +
		`"usage":{"prompt_tokens":42,"completion_tokens":27,"total_tokens":69},"error":null}`},
	{"OpenRouter", `{"id":"gen-1752019500-Ab3dEf","provider":"Anthropic","model":"anthropic/claude-sonnet-4","object":"chat.completion","created":1752019500,` +
		`"choices":[{"logprobs":null,"finish_reason":"stop","native_finish_reason":"end_turn","index":0,"message":{"role":"assistant","content":"` + benchAnswerText + `","refusal":null,"reasoning":null}}],` +
		`"usage":{"prompt_tokens":42,"completion_tokens":27,"total_tokens":69,"cost":0.0031,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`},
	{"DeepSeekReasoner", `{"id":"5f3c9e1a-7b2d-4c8e-9a10-3d2b1c0e9f87","object":"chat.completion","created":1752019600,"model":"deepseek-reasoner",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"` + benchAnswerText + `","reasoning_content":"The user asks for the plans; list both with prices."},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":42,"completion_tokens":27,"total_tokens":69,"prompt_tokens_details":{"cached_tokens":32},"completion_tokens_details":{"reasoning_tokens":12},"prompt_cache_hit_tokens":32,"prompt_cache_miss_tokens":10},` +
		`"system_fingerprint":"fp_393bca965e_prod0623_fp8_kvcache"}`},
	{"Qwen", `{"choices":[{"message":{"role":"assistant","content":"` + benchAnswerText + `"},"finish_reason":"stop","index":0,"logprobs":null}],"object":"chat.completion",` +
		`"usage":{"prompt_tokens":42,"completion_tokens":27,"total_tokens":69,"prompt_tokens_details":{"cached_tokens":0}},"created":1752019700,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-3f8155c3-e96f-95bc-a2a6-8e48537a0893"}`},
	{"Gemini", `{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"` + benchAnswerText + `","role":"assistant"}}],"created":1752019800,"id":"kT5taJjQGcuMnvgPq7Kq4A8","model":"gemini-2.5-flash","object":"chat.completion",` +
		`"usage":{"completion_tokens":27,"prompt_tokens":42,"total_tokens":69}}`},
}

const benchAnswerText = "We offer a basic plan at 9.90 CNY a month and a premium plan at 49.99 CNY a month, with priority support and more."

// BenchmarkNonStreamTurnShapes is BenchmarkNonStreamTurn with each
// provider's answer.
func BenchmarkNonStreamTurnShapes(b *testing.B) {
	for _, a := range nonStreamShapes {
		b.Run(a.name, func(b *testing.B) { benchNonStream(b, []byte(a.answer)) })
	}
}
