package failover

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Provider error bodies as the providers document and send them.
const (
	// https://openrouter.ai/docs/api-reference/errors: 403 "Your chosen
	// model requires moderation and your input was flagged".
	openRouterFlagged = `{"error":{"code":403,"message":"openai/gpt-4o requires moderation on OpenAI. Your input was flagged for \"harassment\".","metadata":{"reasons":["harassment"],"flagged_input":"you are an id...","provider_name":"OpenAI","model_slug":"openai/gpt-4o"}}}`
	// OpenRouter's guardrails refuse an input before it reaches a model with
	// a 403 (https://openrouter.ai/docs/guides/features/guardrails): a
	// sensitive-info or custom content filter set to block, naming its
	// label, and the prompt-injection detector, naming the patterns.
	openRouterGuardrailFilter    = `{"error":{"code":403,"message":"Request blocked by content filter: Social Security number"}}`
	openRouterGuardrailInjection = `{"error":{"code":403,"message":"Request blocked: prompt injection patterns detected","metadata":{"patterns":["ignore all previous instructions"]}}}`
	// OpenRouter's typed code for a provider's content filter, in
	// error.metadata.error_type, a 400 whose code and words name no
	// filter (https://openrouter.ai/docs/api-reference/errors-and-debugging#typed-error-codes).
	openRouterPolicyViolation = `{"error":{"code":400,"message":"Provider returned error","metadata":{"error_type":"content_policy_violation","provider_code":"content_filter","provider_name":"Azure"}}}`
	// OpenRouter's typed code for a refusal the model's provider sent as
	// an error rather than as output: a 403, the provider's explanation in
	// the message (https://openrouter.ai/docs/client-sdks/python/components/apierrortype).
	openRouterModelRefusal = `{"error":{"code":403,"message":"The model declined to answer this request.","metadata":{"error_type":"refusal","provider_name":"Anthropic"}}}`
	// https://www.alibabacloud.com/help/en/model-studio/error-code:
	// DataInspectionFailed, "Input or output data may contain inappropriate
	// content", as the compatible mode's SSE error event.
	dashScopeInspection = `{"error":{"message":"Output data may contain inappropriate content.","type":"data_inspection_failed","param":null,"code":"data_inspection_failed"}}`
	// The same refusal as an HTTP 400 in DashScope's own code style.
	dashScopeInspection400 = `{"code":"DataInspectionFailed","message":"Input data may contain inappropriate content.","request_id":"1","error":{"code":"DataInspectionFailed","message":"Input data may contain inappropriate content.","type":"DataInspectionFailed"}}`
	// Arrearage: "Access denied, please make sure your account is in good
	// standing" (overdue payment), HTTP 400.
	dashScopeArrearage = `{"error":{"code":"Arrearage","message":"Access denied, please make sure your account is in good standing.","type":"Arrearage"},"id":"chatcmpl-1","request_id":"1"}`
	// Context length: 400 InvalidParameter "Range of input length should be
	// [1, N]".
	dashScopeTooLong = `{"error":{"code":"invalid_parameter_error","param":null,"message":"<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 129024]","type":"invalid_request_error"},"id":"chatcmpl-1","request_id":"1"}`
)

// TestContentFilterRefusalIsNotRetried: a content filter's refusal, however
// the provider says it (OpenRouter's moderation 403, DashScope's
// data_inspection_failed as an HTTP 400 or as the first SSE event), reaches
// the client with the provider's reason and status: no retry, no other
// provider (which would get the flagged input too), and no cool-down — the
// next clean request goes to the same provider (SPEC 5).
func TestContentFilterRefusalIsNotRetried(t *testing.T) {
	tests := []struct {
		name       string
		refuse     func(c *fconn)
		wantStatus int
		wantMsg    string
	}{
		{"openrouter 403 flagged input", statusFn(403, openRouterFlagged), 403, "flagged"},
		{"openrouter moderation as the first event", firstEvent(openRouterFlagged), 403, "flagged"},
		{"openrouter guardrail content filter 403", statusFn(403, openRouterGuardrailFilter), 403, "Social Security number"},
		{"openrouter guardrail prompt injection 403", statusFn(403, openRouterGuardrailInjection), 403, "prompt injection"},
		{"openrouter content_policy_violation 400", statusFn(400, openRouterPolicyViolation), 400, "Provider returned error"},
		{"openrouter content_policy_violation as the first event", firstEvent(openRouterPolicyViolation), 400, "Provider returned error"},
		{"openrouter model refusal 403", statusFn(403, openRouterModelRefusal), 403, "declined"},
		{"openrouter model refusal as the first event", firstEvent(openRouterModelRefusal), 403, "declined"},
		{"dashscope data_inspection_failed as the first event", firstEvent(dashScopeInspection), 400, "inappropriate content"},
		{"dashscope DataInspectionFailed 400", statusFn(400, dashScopeInspection400), 400, "inappropriate content"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){
				"a": func(c *fconn, n int) {
					if n == 0 {
						tc.refuse(c)
						return
					}
					healthy("a")(c, n)
				},
			}, []string{"a", "b"}, nil)
			got := e.open(t.Context(), true)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) || ue.Status != tc.wantStatus || !strings.Contains(ue.Message, tc.wantMsg) {
				t.Fatalf("served by %q, err %v; want %d with the provider's reason", got.provider, got.openErr, tc.wantStatus)
			}
			if !ue.ContentFilter {
				t.Errorf("%+v does not say a content filter ended the round: a payment round's followup_model refused so would be asked of the turn's own model", ue)
			}
			if a, b := len(e.fakes["a"].hits()), len(e.fakes["b"].hits()); a != 1 || b != 0 {
				t.Errorf("a saw %d requests, b %d; want a once, b never", a, b)
			}
			if st := statusOf(e.r, "a"); st.CoolingCause != "" {
				t.Errorf("a cooling for %q; one flagged input must not take the provider out of service", st.CoolingCause)
			}
			if got := e.open(t.Context(), true); got.provider != "a" {
				t.Errorf("the next clean request served by %q (err %v); want a", got.provider, got.openErr)
			}
		})
	}
}

// TestOtherForbiddenStaysMisconfigured: a 403 that names no flagged input
// is the provider refusing paygate's key: next target and cool-down.
func TestOtherForbiddenStaysMisconfigured(t *testing.T) {
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": always(statusFn(403, `{"error":{"code":403,"message":"Forbidden: key disabled"}}`)),
	}, []string{"a", "b"}, nil)
	if got := e.open(t.Context(), true); got.provider != "b" {
		t.Errorf("served by %q (err %v); want b", got.provider, got.openErr)
	}
	if st := statusOf(e.r, "a"); st.CoolingCause != CauseMisconfigured {
		t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseMisconfigured)
	}
}

// geminiBadKey is Gemini's OpenAI-compatible answer to a bad API key: HTTP
// 400 INVALID_ARGUMENT, reason API_KEY_INVALID, wrapped in an array.
const geminiBadKey = `[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}]`

// xaiBadKey is xAI's (api.x.ai, OpenAI-compatible) answer to a bad API key:
// a 400 whose error is a plain string, no code naming the key (as its users
// report it: {'code': 'Client specified an invalid argument', 'error':
// 'Incorrect API key provided: ba***na. …'}).
const xaiBadKey = `{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***yz. You can obtain an API key from https://console.x.ai."}`

// TestBadKeyInWords: a 400 that says the key is wrong only in words (xAI)
// moves the round to the next target, and the bot is not told about a key
// it never sent; but words may be a bot's own quoted back, so the provider
// is not cooled down for every bot: the next round asks it again.
func TestBadKeyInWords(t *testing.T) {
	e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(400, xaiBadKey))}, []string{"a", "b"}, nil)
	for round := range 2 {
		got := e.open(t.Context(), false)
		if got.openErr != nil || got.provider != "b" {
			t.Fatalf("round %d: served by %q (err %v); want b, a's key refused", round, got.provider, got.openErr)
		}
		if n := len(e.fakes["a"].hits()); n != round+1 {
			t.Errorf("after round %d, a was asked %d times; want %d (not cooled down)", round, n, round+1)
		}
	}
	e = newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(400, xaiBadKey))}, []string{"a"}, nil)
	var ue *UpstreamError
	if got := e.open(t.Context(), false); !errors.As(got.openErr, &ue) || strings.Contains(strings.ToLower(ue.Message), "api key") {
		t.Errorf("a's key refused, no other target: %v; want an upstream error that does not quote the provider", got.openErr)
	}
}

// TestBadKeyIn400IsMisconfigured: a provider that refuses paygate's key
// with a 400 instead of a 401 (Gemini's API_KEY_INVALID) ended the round
// as the bot's bad request, with the provider's words about a key the bot
// never sent. It is a misconfigured provider, as after a 401: the next
// target answers and the provider cools down; with no other target the
// bot gets a 502 that does not quote the provider's message.
func TestBadKeyIn400IsMisconfigured(t *testing.T) {
	tests := []struct {
		name string
		fail func(c *fconn)
	}{
		{"gemini 400 API_KEY_INVALID", statusFn(400, geminiBadKey)},
		{"gemini's error object unwrapped", statusFn(400, geminiBadKey[1:len(geminiBadKey)-1])},
		{"400 with an invalid_api_key code", statusFn(400, errBody("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-abc***"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.fail)}, []string{"a", "b"}, nil)
			if got := e.open(t.Context(), true); got.provider != "b" {
				t.Errorf("served by %q (err %v); want b", got.provider, got.openErr)
			}
			if st := statusOf(e.r, "a"); st.CoolingCause != CauseMisconfigured {
				t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseMisconfigured)
			}

			only := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.fail)}, []string{"a"}, nil)
			got := only.open(t.Context(), true)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) || ue.Status != http.StatusBadGateway || ue.Code != CauseMisconfigured {
				t.Fatalf("a alone: err %v; want a 502 %s", got.openErr, CauseMisconfigured)
			}
			if strings.Contains(strings.ToLower(ue.Message), "api key") {
				t.Errorf("the bot is told %q: the provider's words about paygate's key", ue.Message)
			}
		})
	}
}

// TestBillingFailsOverAndCoolsDown: the provider account out of money
// (DashScope's 400 Arrearage, an insufficient_balance code as the first
// event) is billing whatever the status: the next target at once and the
// provider cooled down (SPEC 5).
func TestBillingFailsOverAndCoolsDown(t *testing.T) {
	tests := []struct {
		name string
		fail func(c *fconn)
	}{
		{"dashscope 400 Arrearage", statusFn(400, dashScopeArrearage)},
		{"arrearage as the first event", firstEvent(dashScopeArrearage)},
		{"403 insufficient_balance", statusFn(403, errBody("insufficient_balance", "insufficient_balance", "balance too low"))},
		// https://docs.bigmodel.cn/cn/api/api-code: 1113 "your account is in
		// arrears, top up and retry", sent with HTTP 429.
		{"zhipu 429 1113 arrears", statusFn(429, `{"error":{"code":"1113","message":"您的账户已欠费，请充值后重试"}}`)},
		// The same page: 1304, the API's calls for today used up, and
		// 1308, the plan's usage cap reached until its reset time (hours
		// away), both with HTTP 429: no back-off of seconds ends them.
		{"zhipu 429 1304 daily limit", statusFn(429, `{"error":{"code":"1304","message":"该 API 已达今日调用次数限额，如有更多需求，请联系客服购买"}}`)},
		{"zhipu 429 1308 usage cap", statusFn(429, `{"error":{"code":"1308","message":"已达到 5 小时的使用上限。您的限额将在 2025-12-29 23:00:00 重置。"}}`)},
		// Its GLM Coding Plan expired (1309: renewed by someone, never
		// by a wait) and its weekly or monthly cap spent (1310: days
		// away), both with HTTP 429 too.
		{"zhipu 429 1309 plan expired", statusFn(429, `{"error":{"code":"1309","message":"您的GLM Coding Plan套餐已到期，暂无法使用，前往官方续订后即可恢复 https://bigmodel.cn/claude-code。"}}`)},
		{"zhipu 429 1310 weekly limit", statusFn(429, `{"error":{"code":"1310","message":"Weekly/Monthly Limit Exhausted. Your limit will reset at 2026-08-14 00:00:00"}}`)},
		// https://platform.moonshot.cn/docs/api/chat: Moonshot (Kimi)
		// says an account suspended or out of balance with a 429 whose
		// type is exceeded_current_quota_error, no code.
		{"moonshot 429 exceeded_current_quota_error", statusFn(429, `{"error":{"message":"Your account org-1<ak-1> is suspended due to insufficient balance, please recharge your account or check your plan and billing details","type":"exceeded_current_quota_error"}}`)},
		// one-api and new-api, the relays behind many OpenAI-compatible
		// resellers: the relay account's or key's quota used up, a 403
		// with code insufficient_user_quota or pre_consume_token_quota_failed.
		{"new-api 403 insufficient_user_quota", statusFn(403, `{"error":{"message":"用户额度不足, 剩余额度: $0.0000","type":"new_api_error","param":"","code":"insufficient_user_quota"}}`)},
		{"new-api 403 pre_consume_token_quota_failed", statusFn(403, `{"error":{"message":"pre-consume quota failed, user quota: $0.0010, need quota: $0.0200","type":"new_api_error","param":"","code":"pre_consume_token_quota_failed"}}`)},
		// one-api's forks say the relay key's own quota used up apart,
		// with a 403 insufficient_token_quota ("token quota is not
		// enough").
		{"one-api 403 insufficient_token_quota", statusFn(403, `{"error":{"message":"token quota is not enough (request id: 2025010203040506)","type":"one_api_error","param":"","code":"insufficient_token_quota"}}`)},
		// OpenRouter: a key past the credit limit set on it (total,
		// daily, monthly), a 403 that says so only in words.
		{"openrouter 403 key limit exceeded", statusFn(403, `{"error":{"message":"Key limit exceeded (monthly limit). Manage it using https://openrouter.ai/settings/keys","code":403}}`)},
		// OpenRouter's workspace budget spent, a 403 in its words
		// (https://openrouter.ai/docs/guides/features/workspaces/workspace-budgets),
		// and a guardrail's budget spent, naming its limit_source.
		{"openrouter 403 workspace budget exceeded", statusFn(403, `{"error":{"message":"Workspace monthly budget of $500.00 exceeded. Contact your workspace admin.","code":403}}`)},
		{"openrouter 403 guardrail budget (limit_source)", statusFn(403, `{"error":{"message":"Budget limit exceeded","code":403,"metadata":{"limit_source":"openrouter_guardrail_budget","scope":"api-key","limit_usd":20,"spend_usd":20.01}}}`)},
		// one-api and new-api refuse a relay key whose own quota is used
		// up before the relay reads the request: a 401 that says so in
		// words only, no code.
		{"one-api 401 token quota used up", statusFn(401, `{"error":{"message":"该令牌额度已用尽 (request id: 2025010203040506)","type":"one_api_error"}}`)},
		{"new-api 401 token quota used up", statusFn(401, `{"error":{"message":"该令牌额度已用尽 TokenStatusExhausted[sk-abc***xyz]","type":"new_api_error"}}`)},
		// https://www.volcengine.com/docs/82379/1299023: 403 AccountOverdueError.
		{"volcengine 403 AccountOverdueError", statusFn(403, `{"error":{"code":"AccountOverdueError","message":"The request failed because your account has an overdue balance. Request ID: 1","param":"","type":"Forbidden"}}`)},
		// https://developers.openai.com/api/docs/guides/error-codes: 429s
		// that are the account's money or spend cap, not its rate.
		{"openai 429 credit_balance_exhausted", statusFn(429, errBody("", "credit_balance_exhausted", "You have no credits left."))},
		{"openai 429 project_spend_limit_exceeded", statusFn(429, errBody("", "project_spend_limit_exceeded", "Project spend limit reached."))},
		{"openai 429 organization_usage_limit_exceeded", statusFn(429, errBody("", "organization_usage_limit_exceeded", "Usage limit reached."))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(tc.fail)}, []string{"a", "b"}, nil)
			if got := e.open(t.Context(), true); got.provider != "b" {
				t.Errorf("served by %q (err %v); want b", got.provider, got.openErr)
			}
			if n := len(e.fakes["a"].hits()); n != 1 {
				t.Errorf("a saw %d requests; want 1 (billing is not retried)", n)
			}
			if st := statusOf(e.r, "a"); st.CoolingCause != CauseInsufficientQuota {
				t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseInsufficientQuota)
			}
		})
	}
}

// dashScopeTokenLimit is DashScope's (Model Studio's) compatible-mode 429
// for a model's tokens-per-minute or requests-per-second limit
// (Throttling.AllocationQuota): OpenAI's billing type and code,
// insufficient_quota, and billing words, but a throttle that clears
// within the minute, as the page its message links to
// (https://help.aliyun.com/zh/model-studio/error-code#token-limit) says.
const dashScopeTokenLimit = `{"error":{"code":"insufficient_quota","message":"You exceeded your current quota, please check your plan and billing details. For details, see: https://help.aliyun.com/zh/model-studio/error-code#token-limit","param":null,"type":"insufficient_quota"},"request_id":"57553be3-dea8-49f1-ba1e-7a820c152999"}`

// TestDashScopeTokenLimitIsARateLimit: DashScope's per-minute throttle,
// sent as a 429 insufficient_quota, is a rate limit: the provider backs
// off for seconds, not the half hour an account out of money cools down
// for, so a Qwen-only model is not refused for 30 minutes after one busy
// minute. OpenAI's own insufficient_quota (no token-limit link) stays
// billing.
func TestDashScopeTokenLimitIsARateLimit(t *testing.T) {
	for _, body := range []string{
		dashScopeTokenLimit,
		`{"error":{"code":"insufficient_quota","message":"Allocated quota exceeded, please increase your quota limit.","param":null,"type":"insufficient_quota"},"request_id":"1"}`,
	} {
		if f := classifyHTTP(429, http.Header{}, []byte(body), time.Now()); f.cause != CauseRateLimited {
			t.Errorf("%s: cause %s; want %s", body, f.cause, CauseRateLimited)
		}
		e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(429, body))}, []string{"a", "b"}, nil)
		if got := e.open(t.Context(), true); got.provider != "b" {
			t.Errorf("served by %q (err %v); want b", got.provider, got.openErr)
		}
		if st := statusOf(e.r, "a"); st.CoolingCause != CauseRateLimited || st.CoolingUntil.Sub(e.clock.Now()) > time.Minute {
			t.Errorf("a cooling for %q until %v; want a rate limit's back-off", st.CoolingCause, st.CoolingUntil)
		}
	}
	openAI := errBody("insufficient_quota", "insufficient_quota", "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.")
	if f := classifyHTTP(429, http.Header{}, []byte(openAI), time.Now()); f.cause != CauseInsufficientQuota {
		t.Errorf("openai insufficient_quota: cause %s; want %s", f.cause, CauseInsufficientQuota)
	}
}

// TestZhipuAccountRefusalsFailOver: Zhipu answers an account that is
// inactive, unknown or locked (business codes 1110, 1111, 1112, 1121;
// https://docs.bigmodel.cn/cn/api/api-code) with HTTP 429, which no wait
// fixes: the provider is misconfigured until an operator acts, and the
// next target answers at once. Read as a rate limit, it was asked again
// after a back-off on every round, and a 429 never opens the breaker.
func TestZhipuAccountRefusalsFailOver(t *testing.T) {
	for _, body := range []string{
		`{"error":{"code":"1110","message":"您的账户当前处于非活动状态。请检查账户信息"}}`,
		`{"error":{"code":"1111","message":"您的账户不存在"}}`,
		`{"error":{"code":"1112","message":"您的账户已被锁定，请联系客服解锁"}}`,
		`{"error":{"code":"1121","message":"账户存违规行为，账号已被锁定"}}`,
	} {
		e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(429, body))}, []string{"a", "b"}, nil)
		if got := e.open(t.Context(), true); got.provider != "b" {
			t.Errorf("%s: served by %q (err %v); want b", body, got.provider, got.openErr)
		}
		if n := len(e.fakes["a"].hits()); n != 1 {
			t.Errorf("%s: a saw %d requests; want 1", body, n)
		}
		if st := statusOf(e.r, "a"); st.CoolingCause != CauseMisconfigured {
			t.Errorf("%s: a cooling cause %q; want %q", body, st.CoolingCause, CauseMisconfigured)
		}
	}
	// Its concurrency and frequency limits stay rate limits.
	if f := classifyHTTP(429, http.Header{}, []byte(`{"error":{"code":"1302","message":"您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。"}}`), time.Now()); f.cause != CauseRateLimited {
		t.Errorf("1302: cause %s; want %s", f.cause, CauseRateLimited)
	}
}

// zhipuUnknownModel is Zhipu's (BigModel's) refusal of a model name it
// does not serve: business code 1211, its message in Chinese only.
const zhipuUnknownModel = `{"error":{"code":"1211","message":"模型不存在，请检查模型代码。"}}`

// TestZhipuUnknownModelFailsOver: a Zhipu target whose model name is
// wrong or retired (1211) moves the round to the next target, as any
// provider's unknown model does; it ended the round with the provider's
// 400 while a healthy target stood unasked.
func TestZhipuUnknownModelFailsOver(t *testing.T) {
	e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(400, zhipuUnknownModel))}, []string{"a", "b"}, nil)
	if got := e.open(t.Context(), true); got.provider != "b" {
		t.Errorf("served by %q (err %v); want the next target b", got.provider, got.openErr)
	}
	if n := len(e.fakes["a"].hits()); n != 1 {
		t.Errorf("a saw %d requests; want 1", n)
	}
}

// openRouterRawTooLong is OpenRouter's 400 for an upstream provider's
// refusal: "Provider returned error", the provider's own body (here a
// context-length refusal) as a string in error.metadata.raw.
const openRouterRawTooLong = `{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"{\"error\":{\"message\":\"This model's maximum context length is 262144 tokens. However, your messages resulted in 262897 tokens. Please reduce the length of the messages.\",\"type\":\"Bad Request\",\"code\":400}}","provider_name":"Nvidia","is_byok":false}},"user_id":"user_1"}`

// openRouterRawGroqTooLong is Groq's context-length refusal as OpenRouter
// relays it: Groq's message names no limit, its code says it.
const openRouterRawGroqTooLong = `{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"{\"error\":{\"message\":\"Please reduce the length of the messages or completion.\",\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}","provider_name":"Groq","is_byok":false}},"user_id":"user_1"}`

// TestOpenRouterRawReason: the reason of an upstream refusal OpenRouter
// relays as "Provider returned error" is its metadata.raw, JSON or text:
// read for the class (a context-length refusal moves on to the next
// target) and given to the bot, who got only "Provider returned error".
func TestOpenRouterRawReason(t *testing.T) {
	for _, tc := range []struct {
		name, body, cause, msg string
	}{
		{"raw JSON", openRouterRawTooLong, CauseContextLength, "This model's maximum context length is 262144 tokens."},
		{"raw text", `{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"Input validation error: prompt is too long","provider_name":"X"}}}`, CauseContextLength, "Input validation error: prompt is too long"},
		// Groq says a context-length refusal by its code alone,
		// context_length_exceeded, its message naming no limit.
		{"raw JSON, the context length in its code (Groq)", openRouterRawGroqTooLong, CauseContextLength, "Please reduce the length of the messages or completion."},
		{"raw JSON, a plain refusal", `{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"{\"error\":{\"message\":\"temperature must be at most 2\"}}","provider_name":"X"}}}`, CauseClientError, "temperature must be at most 2"},
		{"another message keeps its own", `{"error":{"message":"Invalid model","code":400,"metadata":{"raw":"context length exceeded","provider_name":"X"}}}`, CauseClientError, "Invalid model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := classifyHTTP(400, http.Header{}, []byte(tc.body), time.Now())
			if f.cause != tc.cause || !strings.HasPrefix(f.errMsg, tc.msg) {
				t.Errorf("cause %s, message %q; want %s and a message beginning %q", f.cause, f.errMsg, tc.cause, tc.msg)
			}
		})
	}
}

// TestContextLengthRefusalsFailOver: a provider's context-length refusal
// by message (DashScope, Kimi, Gemini) is never retried on that target;
// the next (larger-context) target answers.
func TestContextLengthRefusalsFailOver(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"dashscope range of input length", dashScopeTooLong},
		{"kimi model token limit", `{"error":{"message":"Invalid request: Your request exceeded model token limit: 131072","type":"invalid_request_error"}}`},
		{"gemini input token count", `[{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}]`},
		// OpenRouter relays its upstream's refusal as "Provider returned
		// error", the upstream's own body in metadata.raw.
		{"openrouter provider returned error", openRouterRawTooLong},
		{"openrouter relaying groq's context_length_exceeded", openRouterRawGroqTooLong},
		// Zhipu (Z.AI): a 400 "Prompt exceeds max length".
		{"zhipu prompt exceeds max length", `{"error":{"code":"1261","message":"Prompt exceeds max length"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]func(c *fconn, n int){"a": always(statusFn(400, tc.body))}, []string{"a", "b"}, nil)
			if got := e.open(t.Context(), true); got.provider != "b" {
				t.Errorf("served by %q (err %v); want the next target b", got.provider, got.openErr)
			}
			if n := len(e.fakes["a"].hits()); n != 1 {
				t.Errorf("a saw %d requests; want 1", n)
			}
		})
	}
}

// TestClassifyProviderQuirks: the classifier's table for provider-specific
// errors, with the look-alikes that must not match.
func TestClassifyProviderQuirks(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"openrouter 403 flagged", 403, openRouterFlagged, CauseClientError},
		{"403 content_policy_violation", 403, errBody("invalid_request_error", "content_policy_violation", "x"), CauseClientError},
		{"403 plain", 403, `{"error":{"message":"Forbidden"}}`, CauseMisconfigured},
		{"403 metadata without a flag", 403, `{"error":{"code":403,"message":"no","metadata":{"provider_name":"x"}}}`, CauseMisconfigured},
		{"401 bad key", 401, errBody("", "invalid_api_key", "x"), CauseMisconfigured},
		{"gemini 400 API_KEY_INVALID", 400, geminiBadKey, CauseMisconfigured},
		// A message that begins by saying so: this round only (TestBadKeyInWords).
		{"400 API key not valid, no details", 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}`, CauseMisconfigured},
		{"400 Invalid API key", 400, `{"error":{"message":"Invalid API key","type":"invalid_request_error"}}`, CauseMisconfigured},
		{"400 xAI's bad key", 400, xaiBadKey, CauseMisconfigured},
		// A message that quotes the bot's value is about the bot's request.
		{"400 quoting a bot's value", 400, errBody("invalid_request_error", "invalid_value", "Invalid value: 'Invalid API key'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."), CauseClientError},
		{"400 about an api_key parameter", 400, errBody("invalid_request_error", "unknown_parameter", "Unrecognized request argument supplied: api_key"), CauseClientError},
		{"400 other details reason", 400, `[{"error":{"code":400,"message":"Invalid value at 'contents'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","reason":"INVALID_FIELD"}]}}]`, CauseClientError},
		{"dashscope DataInspectionFailed", 400, dashScopeInspection400, CauseClientError},
		{"dashscope Arrearage", 400, dashScopeArrearage, CauseInsufficientQuota},
		{"400 billing_hard_limit_reached", 400, errBody("invalid_request_error", "billing_hard_limit_reached", "x"), CauseInsufficientQuota},
		{"429 insufficient_quota", 429, errBody("insufficient_quota", "insufficient_quota", "x"), CauseInsufficientQuota},
		{"429 rate limit", 429, errBody("requests", "rate_limit_exceeded", "x"), CauseRateLimited},
		// one-api and new-api answer a 429 from the last channel they
		// tried with "the group's upstream load is saturated, try later"
		// in its message, the channel's own type and code kept
		// (controller/relay.go: Relay); the bodies below are as users
		// reported them (QuantumNous/new-api#991,
		// songquanpeng/one-api#544, 666ghj/BettaFish#535 and #579).
		// A channel's 429 insufficient_quota is the relay's upstream
		// account, one of its many, not paygate's account at the relay
		// (that is a 403 insufficient_user_quota, TestBillingFailsOverAndCoolsDown):
		// a saturated group, which clears in seconds. As billing it took
		// the relay out of every round for the quota cool-down.
		{"new-api 429 saturated, insufficient_quota kept", 429, `{"error":{"message":"当前分组上游负载已饱和，请稍后再试","localized_message":"Unknown error","type":"insufficient_quota","param":"","code":"insufficient_quota"}}`, CauseRateLimited},
		{"new-api 429 saturated, request id", 429, `{"error":{"message":"当前分组上游负载已饱和，请稍后再试 (request id: 2024121602163036521732429064585)","type":"new_api_error","param":"","code":null}}`, CauseRateLimited},
		{"one-api 429 saturated, rate_limit_exceeded", 429, `{"error":{"message":"当前分组上游负载已饱和，请稍后再试 (request id: 20230919224323509322366BhpTdIFp)","type":"requests","param":"","code":"rate_limit_exceeded"}}`, CauseRateLimited},
		{"new-api 429 saturated, model_not_found", 429, `{"error":{"message":"当前分组上游负载已饱和，请稍后再试 (request id: 20250423020142736330894dLoIRrS6)","type":"new_api_error","param":"","code":"model_not_found"}}`, CauseRateLimited},
		// A Zhipu channel's account locked (1112: misconfigured, read
		// alone) is one channel of the relay's, not paygate's account.
		{"new-api 429 saturated, a Zhipu account code kept", 429, `{"error":{"message":"当前分组上游负载已饱和，请稍后再试 (request id: 20250611093015482913574aKdQwZp)","type":"","param":"","code":"1112"}}`, CauseRateLimited},
		{"new-api 429 saturated, insufficient_user_quota", 429, `{"error":{"message":"当前分组上游负载已饱和，请稍后再试","type":"insufficient_quota","code":"insufficient_user_quota"}}`, CauseRateLimited},
		// The same words as the relays write them elsewhere: one-api's
		// first wording, without 上游 (songquanpeng/one-api
		// controller/relay.go, and its README's FAQ); new-api's English
		// (controller: relayGroupUpstreamSaturatedMessage), each over a
		// channel's kept insufficient_quota, which read alone is billing;
		// a one-api fork's English, its error a bare string; one-api's
		// English (its README's FAQ, and the forks that write it over
		// the channel's error, bizErr.Error, its type and code kept) and
		// the forks' "upstream" English, each over a kept
		// insufficient_quota, which a bare string has none of.
		{"one-api 429 saturated, first wording, insufficient_quota kept", 429, `{"error":{"message":"当前分组负载已饱和，请稍后再试，或升级账户以提升服务质量。","type":"insufficient_quota","param":"","code":"insufficient_quota"}}`, CauseRateLimited},
		{"new-api 429 saturated in English, insufficient_quota kept", 429, `{"error":{"message":"The upstream load for the current group is saturated. Please try again later or switch to another group. (request id: 20250611093015482913574aKdQwZp)","type":"insufficient_quota","param":"","code":"insufficient_quota"}}`, CauseRateLimited},
		{"one-api fork 429 saturated in English, a bare string", 429, `{"error":"The current group upstream load is saturated, please try again later. (request id: 2024121602163036521732429064585)"}`, CauseRateLimited},
		{"one-api 429 saturated in English, insufficient_quota kept", 429, `{"error":{"message":"The current group load is saturated, please try again later (request id: 20250611093015482913574aKdQwZp)","type":"insufficient_quota","param":"","code":"insufficient_quota"}}`, CauseRateLimited},
		{"one-api fork 429 saturated in English, insufficient_quota kept", 429, `{"error":{"message":"The current group upstream load is saturated, please try again later. (request id: 2024121602163036521732429064585)","type":"insufficient_quota","param":"","code":"insufficient_quota"}}`, CauseRateLimited},
		{"new-api 403 insufficient_user_quota", 403, `{"error":{"message":"用户额度不足, 剩余额度: $0.0000","type":"new_api_error","param":"","code":"insufficient_user_quota"}}`, CauseInsufficientQuota},
		{"dashscope context length", 400, dashScopeTooLong, CauseContextLength},
		{"dashscope max_tokens range", 400, `{"error":{"code":"invalid_parameter_error","message":"<400> InternalError.Algo.InvalidParameter: Range of max_tokens should be [1, 8192]","type":"invalid_request_error"}}`, CauseClientError},
		{"kimi token limit", 400, `{"error":{"message":"Invalid request: Your request exceeded model token limit: 8192","type":"invalid_request_error"}}`, CauseContextLength},
		{"gemini input token count", 400, `{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`, CauseContextLength},
		{"max_tokens over the output limit", 400, `{"error":{"message":"max_tokens (200000) exceeds the maximum number of tokens allowed for output"}}`, CauseClientError},
		{"token count of something else", 400, `{"error":{"message":"input token count must be an integer"}}`, CauseClientError},
		// A model that does not exist, sent as a 400: the next target.
		{"400 model_not_found (OpenAI-compatible)", 400, errBody("invalid_request_error", "model_not_found", "The model `up-a` does not exist or you do not have access to it."), CauseModelNotFound},
		{"400 ModelNotFound code", 400, `{"error":{"code":"ModelNotFound","message":"x","type":"ModelNotFound"}}`, CauseModelNotFound},
		{"400 model_not_exist code", 400, errBody("invalid_request_error", "model_not_exist", "x"), CauseModelNotFound},
		{"400 invalid_model (Mistral)", 400, `{"object":"error","message":"Invalid model: mistral-huge","type":"invalid_model","param":null,"code":"1500"}`, CauseModelNotFound},
		{"400 Model Not Exist (DeepSeek)", 400, `{"error":{"message":"Model Not Exist","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`, CauseModelNotFound},
		{"400 Model does not exist (SiliconFlow)", 400, `{"code":20012,"message":"Model does not exist. Please check it carefully.","data":null}`, CauseModelNotFound},
		{"400 not a valid model ID (OpenRouter)", 400, `{"error":{"message":"openai/gpt-9 is not a valid model ID","code":400}}`, CauseModelNotFound},
		// https://docs.bigmodel.cn/cn/api/api-code: Zhipu's 1211, "the
		// model does not exist, check the model code", with HTTP 400.
		{"400 1211 (Zhipu)", 400, zhipuUnknownModel, CauseModelNotFound},
		{"400 another Zhipu code", 400, `{"error":{"code":"1210","message":"API 调用参数有误，请检查文档。"}}`, CauseClientError},
		// Look-alikes: other refusals that name the model.
		{"400 context length of this model", 400, `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":null}}`, CauseContextLength},
		{"400 context length code, the model named", 400, errBody("invalid_request_error", "context_length_exceeded", "The model `up-a` does not exist past 8192 tokens"), CauseContextLength},
		{"400 content filter naming the model", 400, errBody("invalid_request_error", "content_filter", "The model `up-a` refused: the prompt does not exist in the allowed topics"), CauseClientError},
		{"400 something else that does not exist", 400, errBody("invalid_request_error", "", "The tool `pay` does not exist for this model"), CauseClientError},
		{"400 a parameter not valid for the model", 400, errBody("invalid_request_error", "", "max_tokens is not valid for this model"), CauseClientError},
		{"422 model does not exist: not a 400", 422, errBody("invalid_request_error", "", "The model `x` does not exist"), CauseClientError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := classifyHTTP(tc.status, http.Header{}, []byte(tc.body), time.Now())
			if f.cause != tc.want {
				t.Errorf("cause %s; want %s", f.cause, tc.want)
			}
		})
	}
}

// TestStatusOfCode: an error object's code or type as the status it
// stands for, where the event gives no number.
func TestStatusOfCode(t *testing.T) {
	tests := []struct {
		code, typ string
		want      int
	}{
		{"data_inspection_failed", "data_inspection_failed", 400},
		{"DataInspectionFailed", "", 400},
		{"", "inappropriate_content", 400},
		{"sensitive_words_detected", "", 400},
		{"SAFETY", "", 400},
		{"content_filter", "", 400},
		{"contentFilter", "", 400},
		{"moderation_blocked", "", 400},
		{"Arrearage", "Arrearage", 429},
		{"insufficient_balance", "", 429},
		{"insufficient_quota", "", 429},
		{"rate_limit_exceeded", "", 429},
		{"Throttling.RateQuota", "Throttling.RateQuota", 429}, // DashScope
		{"Throttling.BurstRate", "", 429},
		{"Throttling", "", 429},
		{"limit_requests", "limit_requests", 429}, // DashScope's compatible mode
		{"limit_burst_rate", "", 429},
		{"RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests", 429}, // Volcengine Ark
		{"ModelAccountTpmRateLimitExceeded", "", 429},
		{"", "TooManyRequests", 429},
		{"context_length_exceeded", "", 400},
		{"model_not_found", "invalid_request_error", 404},
		{"model_not_exist", "", 404},
		{"", "invalid_model", 404},
		// Look-alikes: no content filter.
		{"case_insensitive_mismatch", "", 500},
		{"unsafety_margin", "", 500},
		{"content_length_mismatch", "", 500},
		{"filter_error", "", 500},
		{"policy_error", "", 500},
		{"server_error", "", 500},
		{"request_limit_reached", "", 500},
		{"", "", 500},
		{"invalid_parameter_error", "invalid_request_error", 400},
	}
	for _, tc := range tests {
		if got := statusOfCode(tc.code, tc.typ); got != tc.want {
			t.Errorf("statusOfCode(%q, %q) = %d; want %d", tc.code, tc.typ, got, tc.want)
		}
	}
}
