package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestWrittenZeroIsRefused: a 0 written for these keys used to become the
// default without a word (max_attempts: 0 ran 4 attempts, shutdown_timeout:
// 0s drained for 30s). Each is refused at its file:line and key.
func TestWrittenZeroIsRefused(t *testing.T) {
	tests := []struct{ src, want string }{
		{"failover:\n  max_attempts: 0\n", "c.yaml:2: failover.max_attempts: at least 1"},
		{"failover:\n  breaker:\n    failures: 0\n", "c.yaml:3: failover.breaker.failures: at least 1"},
		{"payments:\n  budget:\n    max_rounds: 0\n", "c.yaml:3: payments.budget.max_rounds: at least 2"},
		{"server:\n  shutdown_timeout: 0s\n", "c.yaml:2: server.shutdown_timeout: must be above 0: SIGTERM would cut every in-flight stream"},
		{"failover:\n  retry_after_max_wait: 0s\n", "c.yaml:2: failover.retry_after_max_wait: must be above 0"},
		{"providers:\n  - name: p\n    base_url: http://x\n    timeouts: {idle: 0s}\n", "c.yaml:4: providers[0].timeouts.idle: must be above 0"},
		{"providers:\n  - {name: p, base_url: \"http://x\"}\nmodels:\n  - name: m\n    strategy: weighted\n    targets:\n      - {provider: p, model: a}\n      - {provider: p, model: b, weight: 0}\n",
			"c.yaml:8: models[0].targets[1].weight: at least 1"},
		{"payments:\n  catalog:\n    - {sku: a, name: A, price: \"1.00\", max_quantity: 0}\n", "c.yaml:3: payments.catalog[0].max_quantity: at least 1"},
		{"payments:\n  reconcile: {sweep_interval: 0s}\n", "c.yaml:2: payments.reconcile.sweep_interval: must be above 0"},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(nil))
			if err == nil {
				t.Fatalf("accepted; in effect: max_attempts=%d failures=%d max_rounds=%d shutdown=%v retry_wait=%v; want %s",
					cfg.Failover.MaxAttempts, cfg.Failover.Breaker.Failures, cfg.Payments.Budget.MaxRounds,
					cfg.Server.ShutdownTimeout.D(), cfg.Failover.RetryAfterMaxWait.D(), tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) && !strings.Contains(err.Error(), "\n"+tc.want) {
				t.Fatalf("got %q; want a line that starts with %q", err, tc.want)
			}
		})
	}
}

// TestWrittenZeroKept: where 0 means something the code honours, a written
// 0 stands.
func TestWrittenZeroKept(t *testing.T) {
	cfg, err := Parse([]byte("payments: {state_injection: {settled_after: 0s}}\n"), "c.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Payments.StateInjection.SettledAfter; got != 0 {
		t.Errorf("settled_after: got %v; want 0", got.D())
	}
	cfg, err = Parse([]byte("log: {level: info}\n"), "c.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Payments.StateInjection.SettledAfter.D(); got != 24*time.Hour {
		t.Errorf("settled_after unset: got %v; want 24h", got)
	}
}

// TestEveryWrittenZeroStandsOrIsRefused writes 0 for every number and
// duration of the config, one at a time: the load either keeps the 0 or
// refuses it at the key, never replaces it with a default.
func TestEveryWrittenZeroStandsOrIsRefused(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"providers": []any{map[string]any{"name": "p", "base_url": "http://x"}},
			"models": []any{map[string]any{"name": "m", "targets": []any{
				map[string]any{"provider": "p", "model": "u"}}}},
			"payments": map[string]any{"catalog": []any{
				map[string]any{"sku": "a", "name": "A", "price": "1.00"}}},
		}
	}
	paths := numericPaths(reflect.TypeOf(Config{}), "")
	if len(paths) < 30 {
		t.Fatalf("found %d numeric keys; the walk is broken", len(paths))
	}
	for _, p := range paths {
		t.Run(p.path, func(t *testing.T) {
			doc := base()
			var zero any = 0
			if p.duration {
				zero = "0s"
			}
			setPath(doc, p.path, zero)
			src, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(src, "c.yaml", envMap(nil))
			if err != nil {
				if !strings.Contains(err.Error(), ": "+p.path+": ") {
					t.Errorf("refused, but not at the key: %v", err)
				}
				return
			}
			v, ok := fieldAt(reflect.ValueOf(cfg).Elem(), p.path)
			if !ok {
				t.Fatalf("no value at %s", p.path)
			}
			if !v.IsZero() {
				t.Errorf("a written 0 became %v", v.Interface())
			}
		})
	}
}

type numericPath struct {
	path     string
	duration bool
}

// numericPaths lists the key paths of every int and Duration in t, with
// the first element ("[0]") of each list of structs.
func numericPaths(t reflect.Type, path string) []numericPath {
	var out []numericPath
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := childPath(path, name)
		switch ft := f.Type; {
		case ft == reflect.TypeOf(Duration(0)):
			out = append(out, numericPath{p, true})
		case ft.Kind() == reflect.Int || ft.Kind() == reflect.Int64:
			out = append(out, numericPath{p, false})
		case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Decimal{}):
			out = append(out, numericPaths(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, numericPaths(ft.Elem(), p+"[0]")...)
		}
	}
	return out
}

// setPath sets path ("models[0].targets[0].weight") in doc, creating the
// mappings on the way; lists must exist.
func setPath(doc map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	cur := doc
	for i, part := range parts {
		name, idx, indexed := strings.Cut(part, "[")
		if i == len(parts)-1 {
			cur[name] = v
			return
		}
		if indexed {
			_ = idx // only [0] is used
			cur = cur[name].([]any)[0].(map[string]any)
			continue
		}
		next, ok := cur[name].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[name] = next
		}
		cur = next
	}
}

// TestEmptyValueIsUnset: a key with no value, or a ${VAR} that expands to
// nothing, is unset and gets its default, as a missing key does; only a
// written 0 is kept or refused.
func TestEmptyValueIsUnset(t *testing.T) {
	for _, src := range []string{
		"failover:\n  max_attempts:\n  retry_after_max_wait: ${WAIT:-}\naudit:\n  retain_text: ${RETAIN}\nserver:\n  max_body_bytes: null\n",
		"failover: {max_attempts: ~, retry_after_max_wait: \"${WAIT:-}\"}\naudit:\n  retain_text: '${RETAIN:-}'\n",
	} {
		cfg, err := Parse([]byte(src), "c.yaml", envMap(map[string]string{"RETAIN": ""}))
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if cfg.Failover.MaxAttempts != 4 || cfg.Failover.RetryAfterMaxWait.D() != 5*time.Second ||
			cfg.Audit.RetainText.D() != 4320*time.Hour || cfg.Server.MaxBodyBytes != DefaultMaxBodyBytes {
			t.Errorf("%s: max_attempts %d retry_after_max_wait %v retain_text %v max_body_bytes %d; want the defaults", src,
				cfg.Failover.MaxAttempts, cfg.Failover.RetryAfterMaxWait.D(), cfg.Audit.RetainText.D(), cfg.Server.MaxBodyBytes)
		}
	}
}

// TestQuotedEmptyVariableIsUnset: a quoted ${VAR} that expands to nothing
// is unset, as an unquoted one is (the README quotes ${…} in flow
// mappings, where a bare "}" ends the mapping). Only a string or a
// duration key took it so: a price, a number or a bool read the quoted ""
// as a value and refused the file ("": not a decimal amount, cannot
// unmarshal !!str into int).
func TestQuotedEmptyVariableIsUnset(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(*Config) bool
	}{
		{"a decimal", "payments:\n  rules: {approval_above: \"${A:-}\"}\n", func(c *Config) bool { return c.Payments.Rules.ApprovalAbove.Text == "500.00" }},
		{"a number", "failover: {max_attempts: \"${A:-}\"}\n", func(c *Config) bool { return c.Failover.MaxAttempts == 4 }},
		{"a bool", "server: {pprof: '${A}'}\n", func(c *Config) bool { return !c.Server.Pprof }},
		{"a duration", "failover: {retry_after_max_wait: \"${A:-}\"}\n", func(c *Config) bool { return c.Failover.RetryAfterMaxWait.D() == 5*time.Second }},
		{"a string", "log: {level: \"${A:-}\"}\n", func(c *Config) bool { return c.Log.Level == "info" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(map[string]string{"A": ""}))
			if err != nil {
				t.Fatalf("got %v; want it to load with the default", err)
			}
			if !tc.check(cfg) {
				t.Errorf("loaded approval_above %q, max_attempts %d, pprof %v, retry_after_max_wait %v, log.level %q; want the defaults",
					cfg.Payments.Rules.ApprovalAbove.Text, cfg.Failover.MaxAttempts, cfg.Server.Pprof, cfg.Failover.RetryAfterMaxWait.D(), cfg.Log.Level)
			}
		})
	}
}
