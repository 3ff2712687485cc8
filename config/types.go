package config

// Config is the whole of config.yaml. Every field's comment states its default;
// the README's config reference is generated from these types.
type Config struct {
	Server Server `yaml:"server"`
	// Clients are the bots allowed to call paygate. Default (the key unset):
	// one client "default" with key "sk-paygate-dev", for local use only. A
	// written empty list is an error: no client could call paygate.
	Clients []Client `yaml:"clients"`
	Admin   Admin    `yaml:"admin"`
	Store   Store    `yaml:"store"`
	// Providers are the upstream LLM APIs. Default: one provider from the
	// environment: PAYGATE_PROVIDER_NAME (openrouter), PAYGATE_PROVIDER_BASE_URL
	// (https://openrouter.ai/api/v1) and PAYGATE_PROVIDER_API_KEY or
	// OPENROUTER_API_KEY. A written empty list is an error: the file names
	// no provider, and the environment's would answer.
	Providers []Provider `yaml:"providers"`
	// Models are the public model names the bots may ask for. Default (with the
	// default provider only): PAYGATE_MODEL (gpt-4o) served by
	// PAYGATE_PROVIDER_MODEL (openai/gpt-4o). A written empty list is an
	// error: the file names no model, and the environment's would answer.
	Models   []Model  `yaml:"models"`
	Failover Failover `yaml:"failover"`
	Payments Payments `yaml:"payments"`
	Webhooks Webhooks `yaml:"webhooks"`
	Privacy  Privacy  `yaml:"privacy"`
	Audit    Audit    `yaml:"audit"`
	Log      Log      `yaml:"log"`

	// Source is the file the config was read from ("" for built-in defaults).
	Source string `yaml:"-"`
	// Warnings are problems that do not stop the start (an http notify URL, an
	// empty provider key); serve logs them.
	Warnings []string `yaml:"-"`

	// keys locates Warn's warnings in the file the config was read from.
	keys *keyLines
}

// Server holds the listeners.
type Server struct {
	// Listen is the bot-facing address. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// AdminListen is the admin API and console address. Default "127.0.0.1:8081";
	// "off" disables it.
	AdminListen string `yaml:"admin_listen"`
	// AdminHosts are the host names the admin listener answers to besides
	// those it always answers: any IP literal, its AdminListen name, and
	// localhost when it listens on loopback or every interface. List the
	// name an operator's browser or Prometheus reaches it by, e.g.
	// ["paygate-admin.example.com"] behind an ingress that passes the Host
	// header through. A request for any other Host is a 421, whatever its
	// path, so that a web page whose name is re-pointed at the listener (DNS
	// rebinding) can neither read it nor use a token it guessed. Each is a
	// name without port (any port is answered) or scheme. Default [].
	AdminHosts []string `yaml:"admin_hosts"`
	// NotifyListen serves POST /wechatpay/notify alone, so only that route is
	// exposed to the internet. Default "": the notify route is on Listen
	// (there is no "off": WeChat Pay's notifications always need a route).
	// Like Listen and AdminListen, it is host:port with a numeric port, and
	// no two listeners may share one address (port 0 picks a free one).
	NotifyListen string `yaml:"notify_listen"`
	// SSEKeepalive sends a keep-alive (a blank line, which SSE readers ignore;
	// not a ": keep-alive" comment, which go-openai reads as error text) to
	// streaming clients at this interval while paygate works between upstream
	// rounds, and while it asks another provider for the rest of a stream
	// cut after its first byte. Behind a front that ends a silent answer
	// (nginx's proxy_read_timeout, 60s), set it below the front's timeout.
	// Default 0: never; else at least 1s.
	SSEKeepalive Duration `yaml:"sse_keepalive"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight streams.
	// Default 30s. A written 0 is refused: it would cut every stream at once.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// MaxBodyBytes caps a client request body (it is buffered for failover);
	// a larger one is answered 413. Default 8388608 (8 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxBodyBytesInFlight bounds the bytes of request bodies paygate
	// holds at once (each is held, with two or three copies of it, until
	// its answer ends): past it, a body over 64 KiB is answered 503 with
	// Retry-After and the code request_bodies_busy, which the SDKs retry,
	// before more of it is read, rather than the process outgrowing its
	// memory and being killed with every request in flight. Bodies up to
	// 64 KiB are never refused, but count; a large body is admitted
	// whenever no other large body is held. Default 0: an eighth of the
	// container's memory limit (cgroup), or of GOMEMLIMIT when that is set
	// and lower (32 MiB in a 256 MiB container), and no bound without
	// either; -1: no bound. At least max_body_bytes (a smaller value is
	// refused; a derived one is raised to it).
	MaxBodyBytesInFlight int64 `yaml:"max_body_bytes_in_flight"`
	// Pprof mounts net/http/pprof on the admin listener, behind the admin
	// token, and turns on the mutex and block profiles (one lock contention
	// in 10, every wait of 100µs or more). Default false. Set with admin_listen off or no admin.token, a
	// warning: nothing serves it. Off, serve also turns off the heap
	// profile's allocation sampling (about 1% of CPU under load) unless
	// GODEBUG=memprofilerate is set.
	Pprof bool `yaml:"pprof"`
}

// Client is one bot allowed to call paygate.
type Client struct {
	// Name identifies the client in logs, metrics and audit records, and
	// owns its users' payments: their orders, order reads, refunds, daily
	// order count and purchase de-duplication are kept under it, so a
	// client renamed loses sight of its users' earlier orders: its bot
	// can no longer read or refund them, its users' payment state no
	// longer shows them, and a purchase asked again makes a new order.
	// Required.
	Name string `yaml:"name"`
	// Key is the bearer token the bot sends. Required; KeyFile may supply it.
	// Not a provider's key (that provider could call paygate as the bot).
	// At least 16 characters when server.listen takes connections from
	// other machines: nothing slows a guesser down. There, the built-in
	// development key (sk-paygate-dev, which the README publishes) is a
	// warning with the simulator and an error with backend wechatpay, as
	// is the built-in client that stands in when clients is not set. It
	// may not end in white space (a no-break or ideographic space either):
	// paygate drops that from the token a bot sends, so no bot could match.
	Key     string `yaml:"key" secret:"true"`
	KeyFile string `yaml:"key_file"`
	// PreviousKey is a second bearer token that acts as this client, for a
	// rotation without downtime: the new key in key and the outgoing one
	// here, every replica restarted, the bots moved to the new key, then
	// this removed and the replicas restarted again, after which the old
	// key is refused. Default "": key alone. Held to key's rules, and
	// refused when it is any client's key.
	PreviousKey     string `yaml:"previous_key" secret:"true"`
	PreviousKeyFile string `yaml:"previous_key_file"`
	// AppID is the WeChat app whose OpenIDs this client vouches for.
	// Default "": payments.wechatpay.app_id.
	AppID string `yaml:"app_id"`
	// AllowedSKUs restricts which catalog SKUs this client may sell.
	// Default []: every SKU. A written empty list is an error: it reads as
	// the key left out (every SKU), where "none" was more likely meant.
	AllowedSKUs []string `yaml:"allowed_skus"`
	// PayMethods are the WeChat Pay methods this client's model is offered,
	// "jsapi" and "native" (see payments.pay_methods), the first the
	// default. Default []: payments.pay_methods. For one sidecar serving a
	// mini-program bot (jsapi) and a desktop web bot (native).
	PayMethods []string `yaml:"pay_methods"`
	// Forward restricts which forwarded /v1/* paths (SPEC 2.2: every path
	// but chat completions, GET /v1/models and /v1/paygate/*, which it
	// never affects) this client may call: each pattern "METHOD /v1/path"
	// (METHOD one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS; HEAD is
	// not GET) or "/v1/path" for any method, a trailing "*" a prefix
	// wildcard, e.g. ["POST /v1/embeddings", "POST /v1/responses",
	// "GET /v1/responses/*"]. A request that matches none is a 403
	// path_not_allowed and reaches no provider: without it, any bot's key
	// lists and reads the provider accounts' files, stored completions,
	// batches and fine-tuning jobs. Unset (the default), every path is
	// forwarded, as SPEC 2.2 says; a written empty list (forward: [])
	// forwards none.
	Forward []string `yaml:"forward"`
}

// Admin protects the admin listener.
type Admin struct {
	// Token is the admin API bearer token. Default "": the admin API is off
	// and answers 503 with the code admin_disabled to everything, which the
	// console shows (the listener still serves /healthz, /readyz, /metrics).
	// At least 16 characters when server.admin_listen takes connections from
	// other machines, or server.admin_hosts names a host others reach it by
	// through a proxy: nothing slows a guesser down. Not a client's key nor
	// a provider's (that bot or provider could approve orders). It may hold
	// characters outside ASCII: it is sent, by the console as by curl, as
	// its UTF-8 bytes. No white space at either end (a no-break or
	// ideographic space either): paygate drops it from the token's end,
	// and the console's sign-in from both, so no request could match.
	Token     string `yaml:"token" secret:"true"`
	TokenFile string `yaml:"token_file"`
}

// Store selects the state driver.
type Store struct {
	// Driver is "embedded" (bbolt file, one replica) or "redis". Default "embedded".
	Driver string `yaml:"driver"`
	// Path is the embedded store's file. Default "data/paygate.db". The
	// file belongs to the first payments backend and mch_id that open it:
	// started with another (a merchant changed in the config), paygate
	// refuses to start, naming both, since its sweep would query its own
	// WeChat Pay for the other's orders. Settle those orders under the old
	// config first, then give the new merchant a file of its own. A
	// directory, a path under a regular file, or a file that is not a
	// store is refused at load.
	Path  string `yaml:"path"`
	Redis Redis  `yaml:"redis"`
}

// Redis configures the redis driver (single node, sentinel or cluster).
type Redis struct {
	// Addrs lists the servers, each host:port, not a redis:// URL (the
	// password has a key of its own). Default ["127.0.0.1:6379"]; a written
	// empty list is an error with the redis driver, and so is one whose
	// every element has no value (a ${VAR} that expanded to empty). Several
	// addresses without MasterName mean a cluster, and so does one with
	// Cluster (a seed the others are learnt from). With MasterName they are
	// the sentinels (usually port 26379, so the default will not do), not
	// the master: the sentinels are asked for the master's address, again
	// after a failover; list several so that one down sentinel does not stop
	// paygate.
	Addrs []string `yaml:"addrs"`
	// AddrsDefaulted is set when the file wrote no address and Addrs is
	// the default: the config names no Redis, and a Redis answering there
	// is not known to be this deployment's.
	AddrsDefaulted bool `yaml:"-"`
	// Username and Password authenticate (ACL). Default "". With MasterName
	// they are sent to the master, not to the sentinels: sentinels that
	// require a password (requirepass) are not supported. The password is
	// not a provider's key (that provider would receive it).
	Username     string `yaml:"username"`
	Password     string `yaml:"password" secret:"true"`
	PasswordFile string `yaml:"password_file"`
	// DB selects the database (single node and sentinel only: with several
	// addresses and no MasterName, or Cluster, a cluster, only 0 is taken).
	// Default 0.
	DB int `yaml:"db"`
	// MasterName enables sentinel mode: the name the sentinels listed in
	// Addrs monitor the master under (sentinel monitor NAME ...). Default "".
	// Set, Addrs must be written: the default address is no sentinel's.
	MasterName string `yaml:"master_name"`
	// Cluster forces cluster mode with one seed address, as a managed Redis
	// Cluster reached through a single endpoint needs: one address is
	// otherwise a single server, and writes to the slots of the other nodes
	// fail (MOVED). Several addresses without MasterName are a cluster
	// already. Refused with MasterName. Default false.
	Cluster bool `yaml:"cluster"`
	// TLS connects with TLS. Default false. Each server's certificate is
	// verified against the host it is reached at: the sentinels and seeds
	// as listed, a master or cluster node at the address the sentinels or
	// the cluster give (often an IP address), or, failing that, against
	// the host of one of the listed addresses (a managed Redis announces
	// its servers at IP addresses, each with the certificate of the name
	// it is listed by), unless TLSServerName is set.
	TLS bool `yaml:"tls"`
	// TLSServerName, with TLS, is the one name every server's certificate
	// is verified against instead of its own host, for servers that share a
	// certificate for a name they are not reached at. Default ""; refused
	// without TLS.
	TLSServerName string `yaml:"tls_server_name"`
	// KeyPrefix is put before every key, so several deployments can share
	// one Redis. Default "paygate:". It must not contain '{' or '}': the
	// keys carry hash tags of their own, which pick their cluster slots.
	// Each deployment needs its own: the first to reach a prefix owns it
	// (its payments backend and mch_id), and one of another backend or
	// merchant under it is refused at start, or, started while Redis was
	// away, answers /readyz 503 from when it reaches it.
	KeyPrefix string `yaml:"key_prefix"`
	// WaitReplicas makes money writes wait for this many replicas. Default 0.
	// A write no replica acknowledges in time is refused (payments fail
	// closed), so a primary with fewer replicas connected at start is
	// warned of in the log, and `/readyz` answers `store writes fail` (and
	// `paygate_store_status` reads `writes_fail`) while one has fewer
	// connected. A WeChat Pay notification found already applied (a retry
	// of one answered FAIL because its write was not acknowledged in time)
	// is answered success only once a replica acknowledges a write on the
	// order behind it, else FAIL again (SPEC's "duplicates answer success"
	// would have WeChat Pay stop sending a payment a failover could lose).
	// So too an audit event whose record the audit worker finds in the chain
	// (its append's wait timed out) is acknowledged, its text kept, only
	// once a replica has the chain, else retried (acknowledged, a record a
	// failover lost could never be appended again).
	// It does not replace the primary's append-only file: a primary with
	// appendonly no that restarts on its own comes back empty and its
	// replicas copy the empty data set, so it is warned of at start, as
	// without wait_replicas (appendfsync everysec is enough with it).
	WaitReplicas int `yaml:"wait_replicas"`
}

// Provider is one upstream LLM API (OpenAI-compatible).
type Provider struct {
	// Name is the provider's config name, used in targets, headers and metrics.
	// Required, unique; not "." or "..", which the admin API's reset path
	// cannot carry.
	Name string `yaml:"name"`
	// BaseURL is the API root, e.g. https://openrouter.ai/api/v1. Required;
	// not the endpoint (…/chat/completions), which paygate appends.
	// A query it carries (Azure OpenAI's ?api-version=…) is sent with every
	// request, before a forwarded path's own query; a parameter both name
	// is the base_url's. http:// is a warning (the key and every
	// conversation would cross the network unencrypted; use https) unless
	// the host can only be on a private network, as for webhooks.url.
	BaseURL string `yaml:"base_url"`
	// APIKey is sent as "Authorization: Bearer". Default "" (a warning,
	// unless a credential header of Headers, such as Azure OpenAI's
	// api-key, or the base_url carries the provider's key).
	APIKey     string `yaml:"api_key" secret:"true"`
	APIKeyFile string `yaml:"api_key_file"`
	// Headers are extra headers sent to this provider only. Default {}.
	// Names ignore case, as in HTTP: one written twice in two cases is an
	// error.
	Headers map[string]string `yaml:"headers"`
	// DropFields are top-level request fields removed before sending, for strict
	// providers that answer 422 to fields they do not know. Default [].
	// "stream" and "messages" cannot be dropped: paygate's exchange with
	// the provider needs them. A name is a top-level member, not a path:
	// "stream_options.include_usage" is refused (name "stream_options").
	DropFields []string `yaml:"drop_fields"`
	// Continuation says how a stream cut after its first byte may be resumed
	// here: "none", "prefill" (a trailing assistant message the model
	// continues), "prefix_flag" (the same with "prefix": true: DeepSeek's beta
	// endpoint, Mistral) or "partial_flag" (with "partial": true: Qwen on
	// DashScope, Kimi). Default "none".
	Continuation string `yaml:"continuation"`
	// SystemMessages says where this provider accepts a system message:
	// "anywhere" (OpenAI and most hosted APIs) or "first_only" (strict chat
	// templates: Qwen3.5/3.6 on vLLM or llama.cpp answer 400 "System
	// message must be at the beginning.", Gemma 3 on vLLM "Conversation
	// roles must alternate user/assistant/user/assistant/...", and MiniMax,
	// Alibaba DashScope and Qwen Portal refuse a second system message).
	// With "anywhere" the payment state is a system message just before the
	// last user message (SPEC 3 step 3), so the bot's conversation prefix
	// stays byte-identical and prompt caches keep hitting. With
	// "first_only" it is appended as a paragraph to the conversation's
	// leading system (or developer) message, or sent as a new system
	// message at index 0 when there is none; every other message is sent as
	// the bot sent it. This deliberately departs from SPEC 3's placement
	// for such providers, whose every turn of a user with an order failed
	// otherwise: the leading message, and the prompt cache behind it,
	// changes whenever the payment state's text changes (an order made,
	// paid, refunded), not on every turn. Default "anywhere".
	SystemMessages string `yaml:"system_messages"`
	// Family says whose rules a chat conversation sent here must follow,
	// so that one another provider answered (a payment round before a
	// failover, a bot's history) is taken: "openai" (OpenAI and the
	// servers that take its schema: the conversation as it is, but
	// Mistral's thinking blocks sent as the text beside them, which they
	// refuse), "mistral" (a Mistral model on any server, vLLM, Azure,
	// OpenRouter: every tool call id that is not 9 characters of
	// [a-zA-Z0-9] mapped to one that is, and an assistant message's
	// members and its calls' only those Mistral takes), "mistral_api"
	// (Mistral's own API, reached directly or through a gateway: the
	// same, and no stream_options, which it refuses) or "deepseek_api"
	// (DeepSeek's own API, directly or through a gateway: as openai, and
	// a reasoning_content on each assistant message with tool calls,
	// which its thinking mode requires). "auto" guesses per target:
	// mistral_api for a base_url on mistral.ai, deepseek_api for one on
	// deepseek.com or the model deepseek-chat, deepseek-reasoner or
	// deepseek-v4-…, mistral for a model named as Mistral's are
	// (mistral…, magistral…, devstral…, mistralai/…), else openai. The
	// guess misses an Azure deployment or vLLM served-model name, a
	// gateway's host and openrouter/auto, and takes a fine-tune named
	// …mistral… for Mistral: name the family there (or on the target).
	// Default "auto".
	Family string `yaml:"family"`
	// Timeouts bound each attempt. Defaults: connect 5s, first_byte 30s,
	// first_token 30s, idle 30s, total 300s.
	Timeouts Timeouts `yaml:"timeouts"`
	// Prices maps an upstream model name to its price per million tokens, for
	// cost accounting: "2.50", not a price list's per token (0.0000025) or
	// per 1K tokens (0.0025). A name no target of this provider has is a
	// warning, and so is a price other than 0 (a free model) below 0.001 or
	// above 10000, which no model costs: one written per token, which
	// prices the model near 0. Default {}: cost 0.
	Prices map[string]Price `yaml:"prices"`
}

// Price is a model's price per million tokens, as decimal strings in the
// provider's billing currency (e.g. "2.50").
type Price struct {
	// Input is the price of a million prompt tokens.
	Input Decimal `yaml:"input"`
	// CachedInput is the price of a million prompt tokens the provider
	// served from its prompt cache, which providers bill at a fraction of
	// Input; paygate keeps the bots' prompt prefixes unchanged so that
	// those caches keep hitting. They are read from the usage the provider
	// reports: prompt_tokens_details.cached_tokens (OpenAI, OpenRouter,
	// Qwen, xAI, Gemini), input_tokens_details.cached_tokens (the Responses
	// API), prompt_cache_hit_tokens (DeepSeek) or cached_tokens (Moonshot).
	// Default "": the Input price, so a config without it costs what it did.
	CachedInput Decimal `yaml:"cached_input"`
	// Output is the price of a million completion tokens.
	Output Decimal `yaml:"output"`
}

// Timeouts bound one upstream attempt. One that fires ends the attempt; while
// no byte has reached the bot, the round goes on to the next target.
type Timeouts struct {
	// Connect bounds the TCP and TLS handshake, and, through an egress
	// proxy (HTTPS_PROXY), the proxy's answer to CONNECT, which comes once
	// the proxy has connected to the provider. A provider that does not
	// connect in time, nor answer any other request meanwhile, is passed
	// over for the rest of the round: its other targets (other models it
	// serves) are not asked. Default 5s.
	Connect Duration `yaml:"connect"`
	// FirstByte bounds a stream's wait for the response headers; a
	// non-streamed request waits for them up to total, since many providers
	// send them only with the whole answer (but, while another target could
	// answer it, only its share of failover.max_round_time). A provider
	// that sends no headers in time for a stream, nor any other request's
	// meanwhile, is passed over for the rest of the round: its other
	// targets (other models it serves) are not asked, as it would only keep
	// the round waiting as long again. Default 30s.
	FirstByte Duration `yaml:"first_byte"`
	// FirstToken bounds the wait for the first streamed token, counted from
	// the attempt's start: content, a tool call, or reasoning
	// (reasoning_content, reasoning), which the models that show their
	// thinking (DeepSeek-R1, Qwen3 and QwQ, Claude or Gemini through
	// OpenRouter) stream from its start, each thought then resetting idle.
	// A role chunk, a comment (": OPENROUTER PROCESSING") or empty data
	// ends no wait. A model that thinks in silence (OpenAI's o-series and
	// gpt-5, 30 to 120 s at a high reasoning_effort) meets this timeout:
	// past it the attempt is cancelled and the next target asked, the
	// provider may bill the thinking done (no usage came for paygate to
	// count: the call is in the stats with no token), on a payment turn
	// another model decides anew, and the cut counts against the
	// provider's breaker: failover.breaker.failures such thinks in a row
	// take the provider, every model it serves, out of the rounds for its
	// cooldown. For such a model set first_token
	// above its longest think (180s) and failover.max_round_time above
	// that, since the round's time bounds the same wait on every target,
	// the last one too; one above max_round_time or above total, which
	// cut the wait first, is warned of. Default 30s.
	FirstToken Duration `yaml:"first_token"`
	// Idle bounds the silence between two streamed chunks, or two reads of a
	// non-streamed answer (whitespace a provider sends to keep the
	// connection alive counts); for an answer piped on a forwarded path,
	// also each write to a bot that stopped reading. Default 30s.
	Idle Duration `yaml:"idle"`
	// Total bounds the whole attempt, a non-streamed answer's wait for its
	// headers included; an answer piped on a forwarded path (a file's
	// content, speech) only until its head and first bytes. A chat stream's
	// time spent waiting on a bot that reads slower than the provider writes
	// is not counted (up to 3 minutes in all, so that a provider that
	// streams without end is still cut; a bot that takes nothing for 60 s
	// is cut). Default 300s.
	Total Duration `yaml:"total"`
}

// Model is a public model name the bots ask for, mapped to upstream targets.
type Model struct {
	// Name is what the bot sends as "model". Required, unique; one that
	// GET /v1/models/{name} cannot serve, the router cleaning it out of the
	// path (an empty, "." or ".." segment: "a//b", "a/../b") or that
	// go-openai cannot put in its URL unescaped (a "?", "#", "%" or control
	// character), is an error, and so is one with a leading or trailing
	// space.
	Name string `yaml:"name"`
	// Strategy orders the targets: "priority", "weighted" or "lowest-latency".
	// "weighted" draws the order in proportion to weight once per
	// conversation (the client, the end user and the session), so that its
	// turns and a payment turn's rounds reach the provider whose prompt
	// cache holds its prefix; a request without an end user draws anew.
	// "lowest-latency" tries first the target with the lowest recent time
	// to first token (to the answer, for a non-stream request), counted
	// from the round's first attempt on it (a refused attempt and a
	// Retry-After waited out before the retry that answered count), or the
	// time its requests out have waited for theirs when that is longer,
	// so that a target whose answers begin to come late loses the lead
	// before the first of them is back; one whose last attempt failed
	// (before its first token, or its stream broken after it) goes
	// behind the others until the failure is a minute old; one not
	// measured for a minute is measured again by one request at a time,
	// a generation (a batch poll or a file list measures nothing)
	// (another after 30s while none has come back; a late answer is its
	// measure for a minute), the others sorting it behind the
	// targets measured lately, so that a target in a brownout is not sent
	// every request until its first late answer says so.
	// Default "priority".
	Strategy string `yaml:"strategy"`
	// Targets are the providers serving this model. Required: at least one,
	// each provider and upstream model once (one listed twice is warned of).
	Targets []Target `yaml:"targets"`
}

// MaxWeight is the largest Target.Weight: a model's weights summed (the
// weighted strategy's draw) stay far from overflowing.
const MaxWeight = 1_000_000

// Target is one provider serving a model under its own upstream name.
type Target struct {
	// Provider names an entry of providers. Required.
	Provider string `yaml:"provider"`
	// Model is the provider's name for the model. Required.
	Model string `yaml:"model"`
	// Weight is used by the weighted strategy alone: written under a model
	// of another strategy it splits nothing, and check-config and serve warn
	// of it. Default 1; at least 1, at most 1000000.
	Weight int `yaml:"weight"`
	// Family overrides the provider's family for this target alone, for
	// a provider serving models of several families (OpenRouter, a
	// gateway): the same values. Default "": the provider's.
	Family string `yaml:"family"`
}

// Failover bounds retries.
type Failover struct {
	// MaxAttempts bounds upstream attempts per round. Default 4.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryAfterMaxWait: a Retry-After up to this long is waited out on the same
	// target; a longer one moves the request on to the next target. Either
	// way the provider cools down that long: other requests skip it
	// meanwhile, or wait when it is their only target, each for its own
	// turn after the cool-down (four a second on one provider; one whose
	// turn would come later than this ends with a 429). Default 5s. A
	// written 0 is refused: failover reads 0 as the default, so it cannot
	// mean "never wait".
	RetryAfterMaxWait Duration `yaml:"retry_after_max_wait"`
	// MaxRoundTime bounds the time spent on one round's attempts, each until
	// its answer is there: a stream's first token, a non-streamed answer's
	// response headers (its body is then bounded by the provider's
	// timeouts). A non-streamed answer's headers often come only with the
	// whole answer: while a later target could still be asked, an attempt
	// waits for them at most an even share of the round's time left (30s of
	// 60s with one fallback), then the next target is asked and the cut
	// counts against the provider's breaker, so a silent provider is passed
	// over; the round's last target waits up to its timeouts.total, so a
	// long answer still comes. Raise it for a model whose non-streamed
	// answers take longer than their share. Below a provider's
	// timeouts.first_token (1ms: every stream cut before its first token,
	// non-streamed answers still served by the round's last target), or
	// not above retry_after_max_wait (a Retry-After is waited out only when
	// it fits in the round's time left), it is warned of. Default 60s.
	MaxRoundTime Duration `yaml:"max_round_time"`
	Breaker      Breaker  `yaml:"breaker"`
	Recovery     Recovery `yaml:"recovery"`
}

// Recovery bounds the recovery of streams that break after the first byte
// (the round is re-issued to another provider and only the rest of the answer
// is streamed), so a flapping provider cannot stretch a turn without bound.
type Recovery struct {
	// MaxAttempts is how many broken streams one turn may recover; -1 turns
	// recovery off (a broken stream ends with an error event). Default 2.
	MaxAttempts int `yaml:"max_attempts"`
	// Window is how long after a turn's first break a recovery may still
	// start. Default 30s.
	Window Duration `yaml:"window"`
}

// Breaker configures the per-provider circuit breaker.
type Breaker struct {
	// Failures is how many consecutive failures open it. Default 5.
	Failures int `yaml:"failures"`
	// Cooldown is how long it stays open before one probe: one request,
	// while the others pass the provider over. The probe's answer closes
	// it, a stream's once it flows (its event after the first token; a
	// forwarded stream's, its bytes after the first event), so
	// that a provider whose streams stall after their first token draws
	// no round but the probe; its failure opens it again. An operator's
	// `POST /admin/api/providers/{name}/reset` closes it at once. Default 30s.
	Cooldown Duration `yaml:"cooldown"`
}

// Payments configures the payment tools and WeChat Pay.
type Payments struct {
	// Backend is "simulator" (in-process WeChat Pay stand-in) or "wechatpay".
	// Default "simulator". The simulator with payments.wechatpay.mch_id set
	// is a warning: that merchant's settings are not used, and no real money
	// is taken.
	Backend string `yaml:"backend"`
	// DedupeWindow is how long a purchase claim lives after it was last asked
	// for; an order of the purchase still payable or awaiting approval is
	// returned after it too, and one paid less than this long ago is answered
	// already_paid however long the user took to pay. Default 10m; at
	// least 1m.
	DedupeWindow Duration `yaml:"dedupe_window"`
	// OrderTTL is how long an order stays payable before it expires. Default
	// 2h, the most: WeChat Pay's prepay_id (JSAPI) and code_url (Native) are
	// valid for 2 hours, and an order is paid with the parameters of its one
	// prepay, so a longer one could not be paid when it is older. At least
	// 2m: WeChat Pay keeps an order payable at least a minute after it is
	// placed, whatever time_expire says.
	OrderTTL  Duration  `yaml:"order_ttl"`
	WeChatPay WeChatPay `yaml:"wechatpay"`
	Simulator Simulator `yaml:"simulator"`
	// PayMethods are the WeChat Pay methods the model is offered, each a
	// product the merchant activates at WeChat Pay: "jsapi" (pay inside
	// WeChat: a mini-program or official account) and "native" (a QR code
	// to scan). The first is the method of an order the model names none
	// for; a create_order naming one not listed is asked about and reaches
	// no WeChat Pay. Orders already made keep their method, but one held
	// for a manager is prepaid, when approved, in its client's first.
	// Default ["jsapi", "native"].
	PayMethods []string `yaml:"pay_methods"`
	// Catalog is everything the model may sell. Default []: nothing to sell.
	Catalog   []CatalogItem `yaml:"catalog"`
	Rules     Rules         `yaml:"rules"`
	Budget    Budget        `yaml:"budget"`
	Refunds   Refunds       `yaml:"refunds"`
	Reconcile Reconcile     `yaml:"reconcile"`
	// FollowupModel is a cheaper public model for rounds that only turn a
	// payment result into words. A round none of its targets answers (an
	// outage, a model that refuses tools with a 400) goes to the turn's own
	// model, as do the turn's later rounds; a round a content filter refused
	// ends with its reason, as the turn's own model's refusal would. Default
	// "": the turn's own model.
	FollowupModel string `yaml:"followup_model"`
	Tools         Tools  `yaml:"tools"`
	// StateInjection controls the payment-state system message.
	StateInjection StateInjection `yaml:"state_injection"`
}

// WeChatPay holds the merchant's APIv3 credentials. Required with backend
// wechatpay: mch_id, app_id, mch_cert_serial, mch_private_key_file,
// apiv3_key (or apiv3_key_file), notify_url, and a way to verify WeChat
// Pay's signatures (public_key_id with public_key_file, or
// platform_cert_files).
type WeChatPay struct {
	// APIBase overrides the API host: scheme://host[:port] alone, http or
	// https. Default "https://api.mch.weixin.qq.com". http:// is a warning
	// (every call, the payer's OpenID with it, would cross the network
	// unencrypted; use https) unless the host can only be on a private
	// network, as for webhooks.url, and with backend wechatpay only, the one
	// that calls it.
	APIBase string `yaml:"api_base"`
	// MchID is the merchant id (商户号). Required with backend wechatpay.
	MchID string `yaml:"mch_id"`
	// AppID is the WeChat app (mini-program or official account) the payments
	// are made in. Required with backend wechatpay.
	AppID string `yaml:"app_id"`
	// MchCertSerial is the merchant API certificate's serial number. Required
	// with backend wechatpay.
	MchCertSerial string `yaml:"mch_cert_serial"`
	// MchPrivateKeyFile is the merchant API private key (apiclient_key.pem)
	// that signs requests: an RSA key in PEM (PKCS#8 or PKCS#1), read and
	// checked at load. Required with backend wechatpay.
	MchPrivateKeyFile string `yaml:"mch_private_key_file"`
	// APIv3Key must be exactly 32 bytes, none a space, tab or line break,
	// and not a provider's key (that provider would receive it); so too
	// APIv3PreviousKey. Required with backend wechatpay.
	APIv3Key     string `yaml:"apiv3_key" secret:"true"`
	APIv3KeyFile string `yaml:"apiv3_key_file"`
	// APIv3PreviousKey is the outgoing APIv3 key of a rotation: a
	// notification that apiv3_key does not open is tried with it, since
	// those WeChat Pay encrypted before the merchant set the new key may
	// be retried as they were for 24 h 4 min after their first try (WeChat
	// Pay does not say it encrypts a retry anew). Default "": none. Held to
	// apiv3_key's rules; remove it 25 hours or more after the change.
	APIv3PreviousKey     string `yaml:"apiv3_previous_key" secret:"true"`
	APIv3PreviousKeyFile string `yaml:"apiv3_previous_key_file"`
	// PublicKeyID and PublicKeyFile enable WeChat Pay public-key mode; the
	// file is an RSA "PUBLIC KEY" in PEM, read and checked at load.
	PublicKeyID   string `yaml:"public_key_id"`
	PublicKeyFile string `yaml:"public_key_file"`
	// PlatformCertFiles enable platform-certificate mode (both modes may be set
	// at once during a migration): PEM certificates, read and checked at load;
	// one outside its validity period is a warning. A file may hold several
	// (a rotation's outgoing and incoming certificate): each one verifies,
	// and one cut short or damaged is an error rather than left out.
	PlatformCertFiles []string `yaml:"platform_cert_files"`
	// NotifyURL is the public https URL of POST /wechatpay/notify, without a
	// query (WeChat Pay refuses one). Required with backend wechatpay. Its
	// path ends in /wechatpay/notify: another (a host alone) is a warning,
	// since WeChat Pay posts to it as given and only a proxy in front that
	// rewrites it reaches the route. WeChat Pay calls it from the internet:
	// with backend wechatpay, a loopback, private, link-local or
	// carrier-grade NAT IP literal as its host is an error when api_base is
	// WeChat Pay's own (a warning with another api_base, a stand-in), and a
	// name only this machine or a private network resolves (localhost, one
	// label, .internal, .svc) is a warning.
	NotifyURL string `yaml:"notify_url"`
}

// Simulator configures the built-in WeChat Pay stand-in.
type Simulator struct {
	// PayAfter makes the simulated user pay this long after the prepay.
	// Default 0: only when told (POST
	// /admin/api/simulator/orders/{order_no}/pay, or the demo).
	PayAfter Duration `yaml:"pay_after"`
	// RefundAfter makes a simulated refund succeed this long after it was
	// asked for. Default 0: only when told (POST
	// /admin/api/simulator/refunds/{out_refund_no}/complete, or the demo).
	RefundAfter Duration `yaml:"refund_after"`
}

// CatalogItem is something the model may sell. The price only ever comes from here.
type CatalogItem struct {
	// SKU is the item's id the model names in create_order. Required, unique:
	// 1-32 letters, digits, '.', '_' or '-'.
	SKU string `yaml:"sku"`
	// Name is shown to the user and is the order description, with " x"
	// and the quantity for an order of more than one. Required: one line of
	// UTF-8 text (no line break, as a ">" or "|" block ends with, and no
	// other control character). WeChat Pay takes 127 bytes of description
	// (UTF-8: a Chinese character is 3): a longer one is cut from the name,
	// on a character boundary, the quantity kept.
	Name string `yaml:"name"`
	// Price in CNY as a decimal string ("49.99"); stored as integer fen.
	// Required, above zero: at most two decimals, no leading zero, and
	// price × max_quantity at most 100000000000.00.
	Price Decimal `yaml:"price"`
	// MaxQuantity bounds quantity per order. Default 1.
	MaxQuantity int `yaml:"max_quantity"`
}

// Rules are checked before any WeChat Pay call.
type Rules struct {
	// ApprovalAbove: orders above this amount need a manager, who approves
	// them through the admin API: with that off (no admin.token) while the
	// catalog can sell such an order, a warning. Default "500.00".
	ApprovalAbove Decimal `yaml:"approval_above"`
	// MaxOrdersPerUserPerDay bounds the orders one user may create in a day
	// through one client, which counts its users apart (a calendar day in
	// China Standard Time, UTC+8, as WeChat Pay's users live it); an order
	// WeChat Pay refused does not count, nor one held for a manager that
	// was rejected or expired undecided, nor does an ask refused at the
	// limit. Default 20; at least 1.
	MaxOrdersPerUserPerDay int `yaml:"max_orders_per_user_per_day"`
	// MaxPaymentCallsPerMinute limits payment tool calls per user of one
	// client in any minute (a sliding window; a refused call is not
	// counted). A create_order that asks again for its purchase's order
	// (awaiting payment in its pay method or held for a manager, before
	// its deadline, or just paid: a turn the bot's SDK or backend sent
	// again) reaches no WeChat Pay: it is not counted, and past the limit
	// still gets that order; one in the order's last minute renews the
	// order and counts, and past the limit gets the order as it stands;
	// nor is a create_order answered with a clarification. Default 10; at
	// least 1.
	MaxPaymentCallsPerMinute int `yaml:"max_payment_calls_per_minute"`
	// ApprovalTTL is how long an order above approval_above waits for a
	// manager; after it the order expires and can be neither approved nor
	// rejected (a decision then is a 409, and the order is expired), so a
	// stale request is never opened for payment. Default 72h; at least 1s.
	ApprovalTTL Duration `yaml:"approval_ttl"`
}

// Budget bounds one turn.
type Budget struct {
	// MaxPaymentCalls is money-moving tool calls executed per turn, and
	// per user message across the bot's follow-ups with its own tools'
	// results; 0 runs none and offers the model query_order only. Default 1.
	MaxPaymentCalls int `yaml:"max_payment_calls"`
	// MaxRounds is upstream rounds per turn. Default 3; at least 2: a
	// round's payment tool calls run only when a round is left to tell the
	// user what they did.
	MaxRounds int `yaml:"max_rounds"`
	// Clarification ends a turn whose rounds are spent.
	Clarification string `yaml:"clarification"`
}

// Refunds configures refund proposals.
type Refunds struct {
	// ConfirmTTL is how long a proposal may be confirmed. Default 15m, at
	// least 1s, at most 72h. A proposal keeps the life it was made with: changed, it
	// applies to proposals made after the restart.
	ConfirmTTL Duration `yaml:"confirm_ttl"`
}

// Reconcile configures the reconciler.
type Reconcile struct {
	// QueryAfter: a pending order older than this is queried on the user's next
	// message, and on an order read at most once in that time however often
	// it is read, across replicas sharing Redis: a notification settles a
	// payment at once, and WeChat Pay limits queries per merchant. Default 5s.
	QueryAfter Duration `yaml:"query_after"`
	// QueryDeadline bounds that query; the turn goes on past it. Default 300ms.
	QueryDeadline Duration `yaml:"query_deadline"`
	// SweepInterval is the background sweep period. Default 1m; at least 1s.
	// Replicas sharing Redis divide the pending orders and late refunds:
	// the replica that swept one holds it for this long, so each is
	// queried once per interval between them, not once per replica; one
	// that dies holds its orders no longer than this (or 20s, twice the
	// time a sweep's query may take, for an interval shorter than that, so
	// a lease outlasts its query), one stopped mid-sweep (SIGTERM) gives
	// back those it had not reconciled, and one whose query of an order
	// fails gives it back, each at once for the next replica.
	SweepInterval Duration `yaml:"sweep_interval"`
}

// Tools are the payment tool names the model sees. Renamed, the payment
// calls paygate keeps of a turn that handed the bot its own tool calls
// come back to the model under the new names, the bot's own tools
// untouched; a kept exchange of an earlier version comes back under the
// names it was kept with.
type Tools struct {
	// CreateOrder names the tool that creates an order. Default "create_order".
	CreateOrder string `yaml:"create_order"`
	// QueryOrder names the tool that reads an order's state. Default "query_order".
	QueryOrder string `yaml:"query_order"`
	// RequestRefund names the tool that proposes a refund. Default "request_refund".
	RequestRefund string `yaml:"request_refund"`
}

// StateInjection controls the payment-state system message.
type StateInjection struct {
	// SettledAfter: orders settled (paid, closed, refunded…) longer ago than this
	// are no longer mentioned, but in the turn whose answer tells news of one
	// (its payment confirmed, a manager's rejection, a refund's outcome) and,
	// when that answer hands the bot its own tool calls, in the bot's follow-ups
	// with their results until the user's next message. Default 24h; 0
	// mentions none but those.
	SettledAfter Duration `yaml:"settled_after"`
}

// Webhooks configures merchant event delivery.
type Webhooks struct {
	// URL is the merchant backend's endpoint. Default "": off. http:// is a
	// warning (every event, with the payer's OpenID, would cross the
	// network unencrypted; use https) unless the host can only be on a
	// private network: localhost, a loopback, private or link-local
	// address, a one-label name (a compose service), or a name under .svc,
	// .cluster.local, .internal, .local, .lan or .home.arpa.
	URL string `yaml:"url"`
	// Secret signs every event so the receiver can verify it. Required when
	// url is set, at least 16 characters (a short one, guessed offline from
	// one signed event, signs order.paid for an order nobody paid), and
	// not one of the clients' keys (that bot could sign it), the admin
	// token (the merchant's endpoint could approve orders) or a provider's
	// key (the provider could sign it). A space or tab at either end, or a
	// line break in it, is refused (the merchant's copy has none).
	Secret     string `yaml:"secret" secret:"true"`
	SecretFile string `yaml:"secret_file"`
}

// Privacy controls what providers learn about the end user.
type Privacy struct {
	// ForwardUser is what a provider gets where a request names the end
	// user: "user", "safety_identifier", "prompt_cache_key", a
	// "metadata" value or key that is or holds the OpenID, and every
	// "metadata" member whose key ends in OpenID or UnionID ("openid",
	// "sharer_openid", "unionid"), whoever's it names. "hash": a keyed hash (of the
	// OpenID for user and metadata, of their own value for the
	// identifiers and for a metadata OpenID of someone else, so each
	// OpenID hashes alike everywhere); "drop": none of
	// them; "keep": as sent. An end user id of 16 bytes or more (an
	// OpenID is 28) found in any other string of the body (a message's
	// name, a prompt, tool arguments) gets the user's hash in its place
	// under "hash", "u_anonymous" under "drop". Default "hash".
	ForwardUser string `yaml:"forward_user"`
	// HashKey keys the hash. Default "": generated once and kept in the
	// store (on Redis written as a money write is: with wait_replicas,
	// used only once a replica has it; a replica that later finds it gone
	// or replaced refuses the store until it is restarted, as for any data
	// Redis lost). One shorter than 16 characters is warned of (guessed offline
	// from one user's known hash), and so is one that starts or ends with a
	// space or tab or holds a line break: it is used as written, not trimmed,
	// since changing the key re-hashes every user. A provider's key is
	// refused (that provider would receive it). A replica that starts while the store is unreachable starts
	// anyway and sends providers none of the end user's identifiers
	// (counted in paygate_user_hash_key_pending_total) until it has loaded
	// that key, which it retries in the background, and answers /readyz
	// 503 "user hash key not loaded" meanwhile.
	HashKey     string `yaml:"hash_key" secret:"true"`
	HashKeyFile string `yaml:"hash_key_file"`
}

// Audit configures the audit chain.
type Audit struct {
	// RetainText keeps conversation text beside the chain this long from the
	// turn that said it; 0 keeps none (the chain still holds its hash).
	// Shortened, it applies to the texts already kept within a minute of
	// the start; lengthened, to those kept from then on. Default 4320h.
	RetainText Duration `yaml:"retain_text"`
	// HeadEvery publishes the chain head in the log this often (and once
	// more as serve stops). Default 1m; at least 1s.
	HeadEvery Duration `yaml:"head_every"`
}

// Log configures logging.
type Log struct {
	// Level is "debug", "info", "warn" or "error". Default "info". The
	// audit chain's head (audit.head_every) is logged at info whatever the
	// level: it is an outside record of the chain, not chatter.
	Level string `yaml:"level"`
}
