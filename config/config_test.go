package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestRepositoryConfigLoads(t *testing.T) {
	cfg, err := Parse(mustRead(t, "../config.yaml"), "config.yaml", envMap(nil))
	if err != nil {
		t.Fatalf("config.yaml must run as it is: %v", err)
	}
	if got := cfg.Clients[0].Key; got != "sk-paygate-dev" {
		t.Errorf("client key default: got %q; want sk-paygate-dev", got)
	}
	if got := cfg.Payments.Backend; got != "simulator" {
		t.Errorf("backend: got %q; want simulator", got)
	}
	if fen, _ := cfg.Payments.Catalog[0].Price.Fen(); fen != 4999 {
		t.Errorf("price: got %d fen; want 4999", fen)
	}
	if got := cfg.Providers[0].Timeouts.FirstToken.D(); got != 30*time.Second {
		t.Errorf("first_token: got %v; want 30s", got)
	}
	if got := cfg.Audit.RetainText.D(); got != 4320*time.Hour {
		t.Errorf("retain_text: got %v", got)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDefaults(t *testing.T) {
	cfg := Default(envMap(map[string]string{"OPENROUTER_API_KEY": "sk-or-x"}))
	if cfg.Store.Driver != "embedded" || cfg.Payments.Backend != "simulator" {
		t.Errorf("got driver %q backend %q; want embedded, simulator", cfg.Store.Driver, cfg.Payments.Backend)
	}
	if len(cfg.Providers) != 1 || cfg.Providers[0].APIKey != "sk-or-x" {
		t.Errorf("default provider from the environment: got %+v", cfg.Providers)
	}
	if cfg.Models[0].Targets[0].Provider != cfg.Providers[0].Name {
		t.Errorf("default model does not target the default provider")
	}
	if cfg.Failover.MaxAttempts != 4 || cfg.Payments.Budget.MaxRounds != 3 || cfg.Payments.Budget.MaxPaymentCalls != 1 {
		t.Errorf("budget/failover defaults wrong: %+v %+v", cfg.Failover, cfg.Payments.Budget)
	}
	if cfg.Providers[0].SystemMessages != SystemMessagesAnywhere {
		t.Errorf("system_messages: got %q; want %q (SPEC 3's placement)", cfg.Providers[0].SystemMessages, SystemMessagesAnywhere)
	}
	if fen, _ := cfg.Payments.Rules.ApprovalAbove.Fen(); fen != 50000 {
		t.Errorf("approval_above: got %d fen; want 50000", fen)
	}
}

func TestEnvExpansion(t *testing.T) {
	src := `
server:
  listen: "${HOST:-127.0.0.1}:${PORT:-9000}"
  max_body_bytes: ${BODY:-1024}
clients:
  - {name: a, key: "${KEY}"}
providers:
  - {name: p, base_url: "http://x", api_key: "a: b # not a comment $$"}
models:
  - {name: m, targets: [{provider: p, model: u}]}
`
	cfg, err := Parse([]byte(src), "c.yaml", envMap(map[string]string{"KEY": "k-123", "PORT": "7000"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Server.Listen; got != "127.0.0.1:7000" {
		t.Errorf("listen: got %q", got)
	}
	if got := cfg.Server.MaxBodyBytes; got != 1024 {
		t.Errorf("int from default: got %d; want 1024", got)
	}
	if got := cfg.Clients[0].Key; got != "k-123" {
		t.Errorf("key: got %q", got)
	}
	if got := cfg.Providers[0].APIKey; got != "a: b # not a comment $" {
		t.Errorf("a value is never YAML structure: got %q", got)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "v3")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := "payments:\n  wechatpay:\n    apiv3_key_file: " + key + "\n"
	cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Payments.WeChatPay.APIv3Key; got != "0123456789abcdef0123456789abcdef" {
		t.Errorf("apiv3 key from file: got %q", got)
	}
}

func TestErrorsNameFileLineAndKey(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the error, each "file:line: path: msg"-shaped
	}{
		{"unknown top-level key", "serverr:\n  listen: x\n", []string{`c.yaml:1: serverr: unknown key (did you mean "server"?)`}},
		{"unknown nested key", "server:\n  listen: \"127.0.0.1:1\"\n  lisen: x\n", []string{`c.yaml:3: server.lisen: unknown key`}},
		{"unknown key in list item", "providers:\n  - name: p\n    base_url: http://x\n    apikey: k\n", []string{`c.yaml:4: providers[0].apikey: unknown key`}},
		{"bad duration", "failover:\n  retry_after_max_wait: 5 seconds\n", []string{`c.yaml:2: failover.retry_after_max_wait: "5 seconds" is not a duration`}},
		{"bare number duration", "failover:\n  retry_after_max_wait: 30\n", []string{`c.yaml:2: failover.retry_after_max_wait: "30" has no unit: write one, e.g. "30s", "30m" or "30h"`}},
		{"wrong type", "failover:\n  max_attempts: many\n", []string{"c.yaml:2: failover.max_attempts: cannot unmarshal !!str `many` into int"}},
		{"apiv3 key length", "payments:\n  wechatpay:\n    apiv3_key: short\n", []string{`c.yaml:3: payments.wechatpay.apiv3_key: must be exactly 32 bytes, got 5`}},
		{"price with three decimals", "payments:\n  catalog:\n    - {sku: a, name: A, price: \"1.005\"}\n", []string{`c.yaml:3: payments.catalog[0].price: "1.005" has more than two decimals`}},
		{"float-ish price", "payments:\n  catalog:\n    - {sku: a, name: A, price: 1e3}\n", []string{`c.yaml:3: payments.catalog[0].price: "1e3": not a decimal amount`}},
		{"unknown provider in target", "providers:\n  - {name: p, base_url: \"http://x\"}\nmodels:\n  - name: m\n    targets:\n      - {provider: q, model: x}\n", []string{`c.yaml:6: models[0].targets[0].provider: unknown provider "q"`}},
		{"bad strategy", "providers:\n  - {name: p, base_url: \"http://x\"}\nmodels:\n  - name: m\n    strategy: random\n    targets: [{provider: p, model: x}]\n", []string{`c.yaml:5: models[0].strategy`}},
		{"webhook without secret", "webhooks:\n  url: https://m.example/hook\n", []string{`webhooks.secret: required`}},
		{"unterminated variable", "admin:\n  token: ${TOKEN\n", []string{`c.yaml:2: admin.token: unterminated ${`}},
		{"syntax error", "server:\n  listen: [\n", []string{`c.yaml:`}},
		{"admin token is a client key", "clients: [{name: bot, key: sk-shared-0123456789}]\nadmin:\n  token: sk-shared-0123456789\n", []string{`c.yaml:3: admin.token: the same as a client key`}},
		{"admin token is the development key", "clients: [{name: bot, key: sk-bot-0123456789}]\nadmin:\n  token: sk-paygate-dev\n", []string{`c.yaml:3: admin.token: the built-in development client key`}},
		{"duplicate tool names", "payments:\n  tools:\n    create_order: pay\n    query_order: pay\n", []string{`c.yaml:4: payments.tools.query_order: same name as create_order`}},
		{"recovery attempts below -1", "failover:\n  recovery:\n    max_attempts: -2\n", []string{`c.yaml:3: failover.recovery.max_attempts: at least 1, or -1 for off`}},
		{"bad system_messages", "providers:\n  - name: p\n    base_url: \"http://x\"\n    system_messages: first\n", []string{`c.yaml:4: providers[0].system_messages: "first": want anywhere or first_only`}},
		{"bodies in flight below max_body_bytes", "server:\n  max_body_bytes: 1048576\n  max_body_bytes_in_flight: 1048575\n", []string{`c.yaml:3: server.max_body_bytes_in_flight: 1048575: at least server.max_body_bytes (1048576)`}},
		{"bodies in flight below -1", "server:\n  max_body_bytes_in_flight: -2\n", []string{`c.yaml:2: server.max_body_bytes_in_flight: -2: at least server.max_body_bytes (8388608)`}},
		{"several errors at once", "serverr: 1\nfailover:\n  max_attempts: 0\n  bogus: 1\n", []string{`c.yaml:1: serverr`, `c.yaml:4: failover.bogus`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil {
				t.Fatalf("got no error; want %q", tc.want)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %T; want config.Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestDecodeErrorsNameTheKey: a value of the wrong type is reported as
// "file:line: key.path: message" like every other config error, and one load
// reports every bad value, not just the first.
func TestDecodeErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // the whole error, one line per problem
	}{
		{"int from a word", "server:\n  max_body_bytes: abc\n",
			[]string{"c.yaml:2: server.max_body_bytes: cannot unmarshal !!str `abc` into int64"}},
		{"int in a flow mapping", "server: {listen: \"127.0.0.1:1\", max_body_bytes: abc}\n",
			[]string{"c.yaml:1: server.max_body_bytes: cannot unmarshal !!str `abc` into int64"}},
		{"long value as yaml shortens it", "server:\n  max_body_bytes: abcdefghijkl\n",
			[]string{"c.yaml:2: server.max_body_bytes: cannot unmarshal !!str `abcdefg...` into int64"}},
		{"value with a newline", "server:\n  max_body_bytes: \"a\\nb\"\n",
			[]string{"c.yaml:2: server.max_body_bytes: cannot unmarshal !!str `a\nb` into int64"}},
		{"bool", "store:\n  redis:\n    tls: maybe\n",
			[]string{"c.yaml:3: store.redis.tls: cannot unmarshal !!str `maybe` into bool"}},
		{"list given a word", "providers: foo\n",
			[]string{"c.yaml:1: providers: want a list, not a single value (value not shown: it may be a secret)"}},
		{"bare number duration", "server:\n  sse_keepalive: 30\n",
			[]string{`c.yaml:2: server.sse_keepalive: "30" has no unit: write one, e.g. "30s", "30m" or "30h"`}},
		{"duration given a list", "server:\n  sse_keepalive: [1s]\n",
			[]string{`c.yaml:2: server.sse_keepalive: want a duration such as "30s"`}},
		{"decimal in a flow list item", "payments:\n  catalog:\n    - {sku: a, name: A, price: 1e3}\n",
			[]string{`c.yaml:3: payments.catalog[0].price: "1e3": not a decimal amount (use e.g. "49.99")`}},
		{"decimal given a mapping", "payments:\n  rules:\n    approval_above: {x: 1}\n",
			[]string{`c.yaml:3: payments.rules.approval_above: want a decimal amount such as "49.99"`}},
		{"bad int then bad duration", "failover:\n  max_attempts: x\n  retry_after_max_wait: 5 seconds\n", []string{
			"c.yaml:2: failover.max_attempts: cannot unmarshal !!str `x` into int",
			`c.yaml:3: failover.retry_after_max_wait: "5 seconds" is not a duration (use e.g. "500ms", "30s", "10m")`,
		}},
		{"bad duration then bad int", "failover:\n  breaker:\n    cooldown: soon\n    failures: many\n", []string{
			`c.yaml:3: failover.breaker.cooldown: "soon" is not a duration (use e.g. "500ms", "30s", "10m")`,
			"c.yaml:4: failover.breaker.failures: cannot unmarshal !!str `many` into int",
		}},
		{"same bad duration twice on one line",
			"providers:\n  - {name: p, base_url: \"http://x\", timeouts: {connect: 5 s, idle: 5 s, total: 1m}}\n", []string{
				// Validation goes on past values that do not parse.
				"c.yaml:1: models: none: the bots ask for a model by name, and no name leads to these providers (add models, each with targets)",
				`c.yaml:2: providers[0].timeouts.connect: "5 s" is not a duration (use e.g. "500ms", "30s", "10m")`,
				`c.yaml:2: providers[0].timeouts.idle: "5 s" is not a duration (use e.g. "500ms", "30s", "10m")`,
			}},
		{"same bad value twice on one line", "models: [{name: a, targets: x}, {name: b, targets: x}]\n", []string{
			"c.yaml:1: models[0].targets: want a list, not a single value (value not shown: it may be a secret)",
			"c.yaml:1: models[1].targets: want a list, not a single value (value not shown: it may be a secret)",
		}},
		{"unknown key and bad values in one load", "serverr: 1\nfailover:\n  max_attempts: x\naudit:\n  retain_text: 180d\n", []string{
			`c.yaml:1: serverr: unknown key (did you mean "server"?)`,
			"c.yaml:3: failover.max_attempts: cannot unmarshal !!str `x` into int",
			`c.yaml:5: audit.retain_text: "180d": a duration has no days: write hours (180d is 4320h)`,
		}},
		{"no second error for a non-mapping section", "server: [1]\n",
			[]string{"c.yaml:1: server: want a mapping of keys"}},
		{"no second error for a bad variable", "server:\n  max_body_bytes: ${BODY\n",
			[]string{"c.yaml:2: server.max_body_bytes: unterminated ${ in \"${BODY\""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil {
				t.Fatalf("got no error; want %q", tc.want)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %T; want config.Errors", err)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	src := "payments:\n  wechatpay:\n    notify_url: http://127.0.0.1:8080/wechatpay/notify\n"
	cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(cfg.Warnings, "\n")
	if !strings.Contains(joined, "c.yaml:3: payments.wechatpay.notify_url: http:// accepted") {
		t.Errorf("got warnings %q; want the http notify URL named", joined)
	}
}

// TestUnusedPriceWarns: a price under a model name no target of its
// provider uses (a typo: "gpt-4o-mini " for "gpt-4o-mini", or the price
// under the wrong provider) prices nothing, and the model the operator
// meant costs 0 in every figure without a word. check-config and serve now
// warn at the price's line.
func TestUnusedPriceWarns(t *testing.T) {
	const providers = "providers:\n" +
		"  - name: a\n    base_url: https://a.example/v1\n    api_key: sk-a-0123\n    prices:\n      %s: {input: \"1\"}\n" +
		"  - name: b\n    base_url: https://b.example/v1\n    api_key: sk-b-0123\n" +
		"models:\n  - {name: m, targets: [{provider: a, model: x/m}, {provider: b, model: x/n}]}\n"
	tests := []struct {
		name, price string
		want        string // "" for no warning about prices
	}{
		{"the target's model", "x/m", ""},
		{"a typo", "x/mm", `c.yaml:6: providers[0].prices.x/mm: no target of provider "a" has the model "x/mm": the price is used for nothing`},
		{"another provider's model", "x/n", `c.yaml:6: providers[0].prices.x/n: no target of provider "a" has the model "x/n": the price is used for nothing`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(fmt.Appendf(nil, providers, tc.price), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			got := priceWarnings(cfg)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warnings %q; want none about prices", got)
			case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want)):
				t.Errorf("warnings %q; want one that starts %q", got, tc.want)
			}
		})
	}
}

// TestSimulatorWithRedisWarns: replicas sharing a Redis store each run a
// simulator of their own, which do not see each other's orders.
func TestSimulatorWithRedisWarns(t *testing.T) {
	tests := []struct {
		src  string
		warn bool
	}{
		{"store: {driver: redis}\n", true},
		{"store: {driver: redis}\npayments: {backend: simulator}\n", true},
		{"store: {driver: embedded}\n", false},
	}
	for _, tc := range tests {
		cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
		if err != nil {
			t.Fatal(err)
		}
		warned := slices.ContainsFunc(cfg.Warnings, func(w string) bool {
			return strings.Contains(w, "payments.backend: the simulator keeps its orders in this process")
		})
		if warned != tc.warn {
			t.Errorf("%q: warnings %q; want the simulator-with-Redis warning: %v", tc.src, cfg.Warnings, tc.warn)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in     string
		micros int64
		err    bool
	}{
		{"49.99", 49_990_000, false},
		{"500", 500_000_000, false},
		{"0.075", 75_000, false},
		{"1.", 0, true},
		{"-1", 0, true},
		{"1,5", 0, true},
		{"0.1234567", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			d, err := ParseDecimal(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("got err %v; want error %v", err, tc.err)
			}
			if d.Micros != tc.micros {
				t.Errorf("got %d; want %d", d.Micros, tc.micros)
			}
		})
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "500ms", "4320h", "1h2m3s", "-1s", "30", "87600h", "2562047h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Errorf("ParseDuration(%q) = %v; negative accepted", s, d)
		}
		if err == nil && d > MaxDuration {
			t.Errorf("ParseDuration(%q) = %v; above MaxDuration accepted", s, d)
		}
	})
}

// TestWrittenZeros: a 0 written in the file is a choice where it means
// something (no text kept, no money-moving call), never silently the
// default; where 0 would be ambiguous or useless it is refused with its
// file:line and key. A missing key still gets its default.
func TestWrittenZeros(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		check   func(*Config) bool
		wantErr string
	}{
		{"retain_text 0 keeps no text", "audit: {retain_text: 0s}\n",
			func(c *Config) bool { return c.Audit.RetainText == 0 }, ""},
		{"max_payment_calls 0 runs none", "payments:\n  budget:\n    max_payment_calls: 0\n",
			func(c *Config) bool { return c.Payments.Budget.MaxPaymentCalls == 0 }, ""},
		{"missing keys get their defaults", "log: {level: info}\n",
			func(c *Config) bool {
				return c.Audit.RetainText.D() == 4320*time.Hour && c.Payments.Budget.MaxPaymentCalls == 1 &&
					c.Payments.Rules.MaxOrdersPerUserPerDay == 20 && c.Failover.Recovery.MaxAttempts == 2
			}, ""},
		{"a daily cap of 0 is refused", "payments:\n  rules:\n    max_orders_per_user_per_day: 0\n", nil,
			"c.yaml:3: payments.rules.max_orders_per_user_per_day: 0 is ambiguous"},
		{"a per-minute cap of 0 is refused", "payments: {rules: {max_payment_calls_per_minute: 0}}\n", nil,
			"c.yaml:1: payments.rules.max_payment_calls_per_minute: 0 is ambiguous"},
		{"confirm_ttl 0 is refused", "payments:\n  refunds:\n    confirm_ttl: 0s\n", nil,
			"c.yaml:3: payments.refunds.confirm_ttl: must be above 0"},
		{"approval_ttl 0 is refused", "payments:\n  rules:\n    approval_ttl: 0s\n", nil,
			"c.yaml:3: payments.rules.approval_ttl: must be above 0"},
		{"approval_ttl is 72h unless set", "payments: {rules: {approval_above: \"100.00\"}}\n",
			func(c *Config) bool { return c.Payments.Rules.ApprovalTTL.D() == 72*time.Hour }, ""},
		{"approval_ttl as written", "payments: {rules: {approval_ttl: 24h}}\n",
			func(c *Config) bool { return c.Payments.Rules.ApprovalTTL.D() == 24*time.Hour }, ""},
		{"recovery max_attempts 0 is refused", "failover:\n  recovery:\n    max_attempts: 0\n", nil,
			"c.yaml:3: failover.recovery.max_attempts: 0 would mean the default (2); -1 turns recovery off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("values: retain_text %v, max_payment_calls %d", cfg.Audit.RetainText.D(), cfg.Payments.Budget.MaxPaymentCalls)
			}
		})
	}
}

// TestSecretsIncludeProviderKeyHeaders: a key a provider takes in a header
// of its own (providers[].headers) is a secret the log masks; other
// headers are not.
func TestSecretsIncludeProviderKeyHeaders(t *testing.T) {
	src := "providers:\n  - name: azure\n    base_url: https://x.openai.azure.com/openai\n    headers: {api-key: azure-key-0123456789, X-Api-Key: other-key-0123456789, X-Title: my-shop-bot}\n" +
		"models: [{name: m, targets: [{provider: azure, model: gpt-4o}]}]\n"
	cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Secrets()
	for _, want := range []string{"azure-key-0123456789", "other-key-0123456789"} {
		if !slices.Contains(got, want) {
			t.Errorf("secrets %q lack %q", got, want)
		}
	}
	if slices.Contains(got, "my-shop-bot") {
		t.Errorf("secrets %q hold the X-Title", got)
	}
}

// TestSecretsIncludeURLCredentials: a gateway's key in a provider's
// base_url query, or a userinfo password, is masked like an api_key
// (providers echo their URL in error bodies), as written and decoded; an
// api-version, a design=beta or a user name is not a secret, since masking
// it would mangle other log text (a user openai, every openai/gpt-4o).
func TestSecretsIncludeURLCredentials(t *testing.T) {
	src := "providers:\n  - name: gw\n    base_url: \"https://openai:GWPASSWORD-9876@gw.example/v1?key=GATEWAY%2BKEY%2F123456&api-version=2024-10-21\"\n" +
		"models: [{name: m, targets: [{provider: gw, model: x}]}]\n" +
		"webhooks: {url: \"https://hooks:HOOK%40PASS-555@hooks.example.com/in?design=beta&token=HOOKTOKEN-555\", secret: whsec-0123456789}\n"
	cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Secrets()
	for _, want := range []string{"GATEWAY%2BKEY%2F123456", "GATEWAY+KEY/123456", "GWPASSWORD-9876", "HOOK%40PASS-555", "HOOK@PASS-555", "HOOKTOKEN-555"} {
		if !slices.Contains(got, want) {
			t.Errorf("secrets %q lack %q", got, want)
		}
	}
	for _, not := range []string{"2024-10-21", "beta", "openai", "hooks"} {
		if slices.Contains(got, not) {
			t.Errorf("secrets %q hold %q", got, not)
		}
	}
}

// TestShortAdminTokenOnAReachableAddress: the admin token approves orders
// above the approval threshold and settles reviews; on an admin listener
// other machines can reach (the Kubernetes manifest binds 0.0.0.0), a short
// token is guessed, and nothing slows a guesser down. It must be at least
// 16 characters there; on loopback the README's quick start keeps its
// short one.
func TestShortAdminTokenOnAReachableAddress(t *testing.T) {
	tests := []struct {
		listen, token string
		wantErr       bool
	}{
		{"127.0.0.1:8081", "adm-dev-1", false},
		{"localhost:8081", "adm-dev-1", false},
		{"0.0.0.0:8081", "adm-dev-1", true},
		{":8081", "0123456789abcde", true},
		{"10.0.0.5:8081", "0123456789abcdef", false},
		{"0.0.0.0:8081", "", false}, // the admin API is off
		{"off", "adm-dev-1", false}, // no admin listener
	}
	for _, tc := range tests {
		t.Run(tc.listen+" "+tc.token, func(t *testing.T) {
			src := "server: {admin_listen: \"" + tc.listen + "\"}\nadmin:\n  token: \"" + tc.token + "\"\n"
			_, err := Parse([]byte(src), "c.yaml", envMap(nil))
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("got %v; want no error", err)
				}
				return
			}
			want := fmt.Sprintf("c.yaml:3: admin.token: %d characters, and server.admin_listen %s takes connections from other machines", len(tc.token), tc.listen)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v; want an error containing %q", err, want)
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error %q shows the token", err)
			}
		})
	}
}

// TestShortAdminTokenBehindAProxy: server.admin_hosts names the host
// names a browser or Prometheus reaches the admin listener by through a
// proxy or an ingress, which on the same machine forwards to a loopback
// admin_listen. The loopback address then says nothing of who can reach
// the API: a short token (adm-dev-1) was taken, guessable by anyone the
// proxy serves, and nothing slows a guesser down. With admin_hosts set it
// must be at least 16 characters, as on an address others reach; without
// them, loopback keeps the quick start's short one.
func TestShortAdminTokenBehindAProxy(t *testing.T) {
	tests := []struct {
		name, server, token string
		want                string // the error; "" when it loads
	}{
		{"loopback behind a proxy", `{admin_listen: "127.0.0.1:8081", admin_hosts: [paygate-admin.example.com]}`, "adm-dev-1",
			`c.yaml:3: admin.token: 9 characters, and server.admin_hosts names paygate-admin.example.com, by which other machines reach server.admin_listen 127.0.0.1:8081 through a proxy: anyone who guesses it approves orders and settles reviews; use at least 16 random characters (openssl rand -hex 16)`},
		{"a long token behind a proxy", `{admin_listen: "127.0.0.1:8081", admin_hosts: [paygate-admin.example.com]}`, "0123456789abcdef", ""},
		{"loopback alone", `{admin_listen: "127.0.0.1:8081"}`, "adm-dev-1", ""},
		{"no admin API", `{admin_listen: "127.0.0.1:8081", admin_hosts: [paygate-admin.example.com]}`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "server: " + tc.server + "\nadmin:\n  token: \"" + tc.token + "\"\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded with admin token %q; want %s", cfg.Admin.Token, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got %q; want %q", err, tc.want)
			}
		})
	}
}

// TestShortAdminTokenLoopbackHostNames: admin_hosts that name only this
// machine (localhost, a *.localhost name, a loopback address, which the
// listener on loopback answers anyway) tell of no proxy that others reach
// it through: a short token on a loopback admin_listen loads as it did
// before such a list refused it, saying other machines reach the listener
// by "localhost". Beside a name others use, the error names that one.
func TestShortAdminTokenLoopbackHostNames(t *testing.T) {
	tests := []struct {
		name, hosts string
		want        string // the error; "" when it loads
	}{
		{"localhost", "[localhost]", ""},
		{"a .localhost name and a loopback address", "[admin.localhost, 127.0.0.1, LOCALHOST.]", ""},
		{"localhost and a name others use", "[localhost, paygate-admin.example.com]",
			`c.yaml:3: admin.token: 9 characters, and server.admin_hosts names paygate-admin.example.com, by which other machines reach server.admin_listen 127.0.0.1:8081 through a proxy: anyone who guesses it approves orders and settles reviews; use at least 16 random characters (openssl rand -hex 16)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "server: {admin_listen: \"127.0.0.1:8081\", admin_hosts: " + tc.hosts + "}\nadmin:\n  token: \"adm-dev-1\"\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded with admin_hosts %q; want %s", cfg.Server.AdminHosts, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got %q; want %q", err, tc.want)
			}
		})
	}
}

// TestDevKeyOnAReachableAddress: the built-in development key on a listen
// address other machines can reach is warned about (check-config prints
// it, serve logs it); on loopback it is the quick start and says nothing.
func TestDevKeyOnAReachableAddress(t *testing.T) {
	tests := []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:8080", false}, {"localhost:8080", false}, {"[::1]:8080", false},
		{"0.0.0.0:8080", true}, {":8080", true}, {"10.0.0.5:8080", true},
	}
	for _, tc := range tests {
		t.Run(tc.listen, func(t *testing.T) {
			cfg, err := Parse([]byte("server: {listen: \""+tc.listen+"\"}\n"), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			warned := slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, "built-in development client") })
			if warned != tc.warn {
				t.Errorf("warnings %q; want a development-key warning: %v", cfg.Warnings, tc.warn)
			}
			// The simulator (the default backend) on such an address takes
			// orders no one can pay: said the same way.
			simulated := slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, "no real payment is made") })
			if simulated != tc.warn {
				t.Errorf("warnings %q; want a simulator warning: %v", cfg.Warnings, tc.warn)
			}
		})
	}
}

// TestWrittenEmptyClientList: the built-in development client (its key,
// sk-paygate-dev, is in the README) stands in for a clients key the file
// leaves unset only. A written empty list said "no bot" and brought the
// public key back, on any listen address; it is an error at its line. A
// key with no value ("clients:", a ${VAR} that expands to empty) is unset,
// as everywhere.
func TestWrittenEmptyClientList(t *testing.T) {
	const listen = "server: {listen: \"0.0.0.0:8080\"}\n"
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
		warning   string // with want "": a warning that starts so; "" for none about the clients
	}{
		{"an empty list on every interface", listen + "clients: []\n",
			"c.yaml:2: clients: an empty list: no client could call paygate; list the bots, each with a name and a key", ""},
		{"an empty list on loopback", "clients: []\n",
			"c.yaml:1: clients: an empty list: no client could call paygate; list the bots, each with a name and a key", ""},
		{"an empty block list", "clients:\n  []\n",
			"c.yaml:1: clients: an empty list: no client could call paygate; list the bots, each with a name and a key", ""},
		{"no clients key on every interface", listen, "",
			"c.yaml: clients: not set: the built-in development client \"default\" with the key sk-paygate-dev, and server.listen 0.0.0.0:8080 takes connections from other machines"},
		{"clients with no value on every interface", listen + "clients:\n", "",
			"c.yaml:2: clients: not set: the built-in development client \"default\" with the key sk-paygate-dev, and server.listen 0.0.0.0:8080 takes connections from other machines"},
		{"clients from an empty variable", listen + "clients: ${EMPTY}\n", "",
			"c.yaml:2: clients: not set: the built-in development client \"default\" with the key sk-paygate-dev"},
		{"the development key written on every interface", listen + "clients: [{name: bot, key: sk-paygate-dev}]\n", "",
			"c.yaml:2: clients[0].key: the built-in development key sk-paygate-dev, and server.listen 0.0.0.0:8080 takes connections from other machines"},
		{"no clients key on loopback", "log: {level: info}\n", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(map[string]string{"EMPTY": ""}))
			switch {
			case tc.want != "" && err == nil:
				t.Fatalf("loaded with clients %+v (warnings %q); want %s", cfg.Clients, cfg.Warnings, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Fatalf("got %v; want %s", err, tc.want)
			case tc.want != "":
				return
			case err != nil:
				t.Fatalf("got %v; want it to load", err)
			}
			var clientWarnings []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "clients") {
					clientWarnings = append(clientWarnings, w)
				}
			}
			switch {
			case tc.warning == "" && len(clientWarnings) > 0:
				t.Errorf("warnings %q; want none about the clients", clientWarnings)
			case tc.warning != "" && (len(clientWarnings) != 1 || !strings.HasPrefix(clientWarnings[0], tc.warning)):
				t.Errorf("warnings %q; want one that starts with %q", clientWarnings, tc.warning)
			}
		})
	}
}

// TestDefaultProviderNamesItsVariables: with no providers in the file, the
// provider comes from PAYGATE_PROVIDER_* (and its model from PAYGATE_MODEL
// and PAYGATE_PROVIDER_MODEL). A problem with one of those values is at no
// line of the file, at a key the file does not have: the error names the
// variable it came from.
func TestDefaultProviderNamesItsVariables(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"a base URL without a scheme", map[string]string{"PAYGATE_PROVIDER_BASE_URL": "openrouter.ai/api/v1"},
			`x.yaml: providers[0].base_url (from PAYGATE_PROVIDER_BASE_URL): not an http(s) URL: scheme ""`},
		{"values that are fine", map[string]string{"PAYGATE_PROVIDER_NAME": "or", "PAYGATE_PROVIDER_BASE_URL": "https://or.example/v1",
			"PAYGATE_MODEL": "m", "PAYGATE_PROVIDER_MODEL": "x/m", "PAYGATE_PROVIDER_API_KEY": "sk-or-0123"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("log: {level: info}\n"), "x.yaml", envMap(tc.env))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("got %v; want %s", err, tc.want)
			}
		})
	}
	// A warning about the default provider names its variables too.
	cfg, err := Parse([]byte("log: {level: info}\n"), "x.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := `x.yaml: providers[0].api_key (from PAYGATE_PROVIDER_API_KEY or OPENROUTER_API_KEY): empty: provider "openrouter" will answer 401 until a key is set`
	if !slices.Contains(cfg.Warnings, want) {
		t.Errorf("warnings %q; want %q", cfg.Warnings, want)
	}
}

// TestProvidersNeedModels: a file that lists providers but no models used
// to load ("ok (1 providers, 0 models, ...)"); serve then answered every
// chat 404 model_not_found. Providers from the environment alone still
// come with their model.
func TestProvidersNeedModels(t *testing.T) {
	const provider = "providers:\n  - {name: a, base_url: \"https://a.example/v1\", api_key: sk-a-0123}\n"
	tests := []struct {
		name, src string
		want      string // "" when it loads
	}{
		{"no models key", "log: {level: info}\n" + provider,
			"x.yaml:2: models: none: the bots ask for a model by name, and no name leads to these providers (add models, each with targets)"},
		{"an empty list", provider + "models: []\n",
			"x.yaml:3: models: none: the bots ask for a model by name, and no name leads to these providers (add models, each with targets)"},
		{"a model", provider + "models: [{name: m, targets: [{provider: a, model: x}]}]\n", ""},
		{"the provider and model from the environment", "log: {level: info}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "x.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted with %d models; want %s", len(cfg.Models), tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got %q; want %q", err, tc.want)
			}
		})
	}
}

// priceWarnings are cfg's warnings about a provider's prices.
func priceWarnings(cfg *Config) []string {
	var got []string
	for _, w := range cfg.Warnings {
		if strings.Contains(w, ".prices") {
			got = append(got, w)
		}
	}
	return got
}
