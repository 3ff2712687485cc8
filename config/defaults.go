package config

import (
	"strings"
	"time"
)

// Defaults that are not obvious from the field comments. They are constants so
// nothing can change them at run time.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultAdminListen   = "127.0.0.1:8081"
	DefaultStorePath     = "data/paygate.db"
	DefaultRedisAddr     = "127.0.0.1:6379"
	DefaultRedisPrefix   = "paygate:"
	DefaultProviderName  = "openrouter"
	DefaultProviderURL   = "https://openrouter.ai/api/v1"
	DefaultModelName     = "gpt-4o"
	DefaultUpstreamModel = "openai/gpt-4o"
	DefaultClarification = "Could you tell me exactly which plan and how many you want?"
	DefaultMaxBodyBytes  = 8 << 20
	DefaultClientName    = "default"
	DefaultClientKey     = "sk-paygate-dev"
	DefaultWeChatPayAPI  = "https://api.mch.weixin.qq.com"
)

// Placements of a system message (providers[].system_messages).
const (
	// SystemMessagesAnywhere: the provider takes a system message at any
	// index; the payment state goes just before the last user message.
	SystemMessagesAnywhere = "anywhere"
	// SystemMessagesFirstOnly: the provider refuses a system message
	// anywhere but first; the payment state joins the leading one.
	SystemMessagesFirstOnly = "first_only"
)

// Families of a target's conversation (providers[].family,
// models[].targets[].family): whose rules failover adapts a chat body to.
const (
	// FamilyAuto: guessed from the provider's base_url and the target's
	// model name.
	FamilyAuto = "auto"
	// FamilyOpenAI: OpenAI's schema, which most providers take.
	FamilyOpenAI = "openai"
	// FamilyMistral: a Mistral model, wherever it is served.
	FamilyMistral = "mistral"
	// FamilyMistralAPI: Mistral's own API, which also refuses
	// stream_options.
	FamilyMistralAPI = "mistral_api"
	// FamilyDeepSeekAPI: DeepSeek's own API, whose thinking mode wants
	// every tool round's reasoning_content back.
	FamilyDeepSeekAPI = "deepseek_api"
)

// familyValues are the families, as the errors list them.
const familyValues = "auto, openai, mistral, mistral_api or deepseek_api"

// ValidFamily reports whether f is one of the families.
func ValidFamily(f string) bool {
	switch f {
	case FamilyAuto, FamilyOpenAI, FamilyMistral, FamilyMistralAPI, FamilyDeepSeekAPI:
		return true
	}
	return false
}

// Default returns the configuration paygate runs with when given no file:
// embedded store, simulator backend and one provider from the environment.
func Default(env LookupEnv) *Config {
	cfg, err := Parse(nil, "(defaults)", env)
	if err != nil {
		// Defaults are constants; failing here is a programming error.
		panic("config: built-in defaults do not validate: " + err.Error())
	}
	return cfg
}

func setDuration(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

func setString(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func setInt(i *int, v int) {
	if *i == 0 {
		*i = v
	}
}

// defaultProvider fills in the single provider read from the environment when
// the file names none, so `paygate serve` works with just an API key exported.
// It returns the variables the values came from, by key path, for errors
// about keys the file does not have.
func defaultProvider(c *Config, env LookupEnv) map[string]string {
	if len(c.Providers) > 0 {
		return nil
	}
	from := map[string]string{}
	get := func(path, def string, names ...string) string {
		for _, name := range names {
			if v, ok := env(name); ok && v != "" {
				from[path] = name
				return v
			}
		}
		return def
	}
	c.Providers = []Provider{{
		Name:    get("providers[0].name", DefaultProviderName, "PAYGATE_PROVIDER_NAME"),
		BaseURL: get("providers[0].base_url", DefaultProviderURL, "PAYGATE_PROVIDER_BASE_URL"),
		// A trailing line break dropped, as from a ${VAR} in a secret's key.
		APIKey: strings.TrimRight(get("providers[0].api_key", "", "PAYGATE_PROVIDER_API_KEY", "OPENROUTER_API_KEY"), "\r\n"),
	}}
	if c.Providers[0].APIKey == "" {
		from["providers[0].api_key"] = "PAYGATE_PROVIDER_API_KEY or OPENROUTER_API_KEY"
	}
	if len(c.Models) == 0 {
		c.Models = []Model{{
			Name: get("models[0].name", DefaultModelName, "PAYGATE_MODEL"),
			Targets: []Target{{
				Provider: c.Providers[0].Name,
				Model:    get("models[0].targets[0].model", DefaultUpstreamModel, "PAYGATE_PROVIDER_MODEL"),
			}},
		}}
		if v, ok := from["providers[0].name"]; ok {
			from["models[0].targets[0].provider"] = v
		}
	}
	return from
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	s := &c.Server
	setString(&s.Listen, DefaultListen)
	setString(&s.AdminListen, DefaultAdminListen)
	setDuration(&s.ShutdownTimeout, 30*time.Second)
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}

	if len(c.Clients) == 0 {
		c.Clients = []Client{{Name: DefaultClientName, Key: DefaultClientKey}}
	}

	st := &c.Store
	setString(&st.Driver, "embedded")
	setString(&st.Path, DefaultStorePath)
	if len(st.Redis.Addrs) == 0 {
		st.Redis.Addrs = []string{DefaultRedisAddr}
	}
	setString(&st.Redis.KeyPrefix, DefaultRedisPrefix)

	for i := range c.Providers {
		p := &c.Providers[i]
		setString(&p.Continuation, "none")
		setString(&p.SystemMessages, SystemMessagesAnywhere)
		setString(&p.Family, FamilyAuto)
		t := &p.Timeouts
		setDuration(&t.Connect, 5*time.Second)
		setDuration(&t.FirstByte, 30*time.Second)
		setDuration(&t.FirstToken, 30*time.Second)
		setDuration(&t.Idle, 30*time.Second)
		setDuration(&t.Total, 300*time.Second)
	}
	for i := range c.Models {
		m := &c.Models[i]
		setString(&m.Strategy, "priority")
		for j := range m.Targets {
			setInt(&m.Targets[j].Weight, 1)
		}
	}

	f := &c.Failover
	setInt(&f.MaxAttempts, 4)
	setDuration(&f.RetryAfterMaxWait, 5*time.Second)
	setDuration(&f.MaxRoundTime, 60*time.Second)
	setInt(&f.Breaker.Failures, 5)
	setDuration(&f.Breaker.Cooldown, 30*time.Second)
	setInt(&f.Recovery.MaxAttempts, 2)
	setDuration(&f.Recovery.Window, 30*time.Second)

	p := &c.Payments
	setString(&p.Backend, "simulator")
	setDuration(&p.DedupeWindow, 10*time.Minute)
	setDuration(&p.OrderTTL, 2*time.Hour)
	setString(&p.WeChatPay.APIBase, DefaultWeChatPayAPI)
	if p.PayMethods == nil {
		p.PayMethods = []string{"jsapi", "native"}
	}
	for i := range p.Catalog {
		setInt(&p.Catalog[i].MaxQuantity, 1)
	}
	if p.Rules.ApprovalAbove.IsZero() {
		p.Rules.ApprovalAbove, _ = ParseDecimal("500.00")
	}
	setInt(&p.Rules.MaxOrdersPerUserPerDay, 20)
	setInt(&p.Rules.MaxPaymentCallsPerMinute, 10)
	setDuration(&p.Rules.ApprovalTTL, 72*time.Hour)
	setInt(&p.Budget.MaxPaymentCalls, 1)
	setInt(&p.Budget.MaxRounds, 3)
	setString(&p.Budget.Clarification, DefaultClarification)
	setDuration(&p.Refunds.ConfirmTTL, 15*time.Minute)
	setDuration(&p.Reconcile.QueryAfter, 5*time.Second)
	setDuration(&p.Reconcile.QueryDeadline, 300*time.Millisecond)
	setDuration(&p.Reconcile.SweepInterval, time.Minute)
	setString(&p.Tools.CreateOrder, "create_order")
	setString(&p.Tools.QueryOrder, "query_order")
	setString(&p.Tools.RequestRefund, "request_refund")
	setDuration(&p.StateInjection.SettledAfter, 24*time.Hour)

	setString(&c.Privacy.ForwardUser, "hash")
	setDuration(&c.Audit.RetainText, 4320*time.Hour)
	setDuration(&c.Audit.HeadEvery, time.Minute)
	setString(&c.Log.Level, "info")
}
