package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestValuesThatDoNotParseDoNotHideTheRest: a value that does not parse (a
// bad decimal, a bad duration, a word for a number) used to end the load
// with the values' errors, so a problem validation finds (a written 0 on an
// earlier line, say) showed only once they were fixed. One load reports
// them all, in the file's order, each at its line; a value that does not
// parse is not reported a second time as missing or 0.
func TestValuesThatDoNotParseDoNotHideTheRest(t *testing.T) {
	src := `failover:
  max_attempts: 0
server:
  shutdown_timeout: 5 sec
  max_body_bytes: lots
providers:
  - name: p
    base_url: "http://127.0.0.1:1/v1"
    timeouts: {idle: 5 sec}
models:
  - {name: m, targets: [{provider: p, model: x}]}
payments:
  catalog:
    - {sku: a, name: A, price: "4x.99"}
log:
  level: loud
`
	_, err := Parse([]byte(src), "c.yaml", envMap(nil))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		"c.yaml:2: failover.max_attempts: at least 1 (0 would mean the default, 4)",
		`c.yaml:4: server.shutdown_timeout: "5 sec" is not a duration (use e.g. "500ms", "30s", "10m")`,
		"c.yaml:5: server.max_body_bytes: cannot unmarshal !!str `lots` into int64",
		`c.yaml:9: providers[0].timeouts.idle: "5 sec" is not a duration (use e.g. "500ms", "30s", "10m")`,
		`c.yaml:14: payments.catalog[0].price: "4x.99": not a decimal amount (use e.g. "49.99")`,
		`c.yaml:16: log.level: "loud": want debug, info, warn or error`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestFractionalWholeNumbers: yaml decodes a fractional number into an
// integer key by cutting the fraction, so the config ran with a value the
// file does not say (max_payment_calls: 0.5 ran 0: every money tool off).
// A number with a fraction, for a key that counts, is an error at its
// line; a whole number written as a float (2.0, 1e3) is that number.
func TestFractionalWholeNumbers(t *testing.T) {
	const models = "models:\n  - name: m\n    targets: [{provider: p, model: x, weight: %s}]\n"
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
		check     func(*Config) bool
	}{
		{"max_attempts", "failover:\n  max_attempts: 1.5\n", "c.yaml:2: failover.max_attempts: want a whole number, not 1.5", nil},
		{"max_payment_calls", "payments:\n  budget:\n    max_payment_calls: 0.5\n",
			"c.yaml:3: payments.budget.max_payment_calls: want a whole number, not 0.5", nil},
		{"max_orders_per_user_per_day", "payments:\n  rules:\n    max_orders_per_user_per_day: 2.9\n",
			"c.yaml:3: payments.rules.max_orders_per_user_per_day: want a whole number, not 2.9", nil},
		{"max_body_bytes", "server:\n  max_body_bytes: 1048576.9\n", "c.yaml:2: server.max_body_bytes: want a whole number, not 1048576.9", nil},
		{"max_quantity", "payments:\n  catalog:\n    - {sku: a, name: A, price: \"10.00\", max_quantity: 3.7}\n",
			"c.yaml:3: payments.catalog[0].max_quantity: want a whole number, not 3.7", nil},
		{"negative recovery attempts", "failover:\n  recovery: {max_attempts: -1.5}\n",
			"c.yaml:2: failover.recovery.max_attempts: want a whole number, not -1.5", nil},
		{"from a variable", "failover:\n  breaker:\n    failures: ${N}\n", "c.yaml:3: failover.breaker.failures: want a whole number, not 2.5", nil},
		{"not a number", "failover:\n  max_attempts: .nan\n", "c.yaml:2: failover.max_attempts: want a whole number, not .nan", nil},
		{"the next errors too", "failover:\n  max_attempts: 1.5\nstore:\n  redis: {db: 0.5}\n",
			"c.yaml:2: failover.max_attempts: want a whole number, not 1.5\nc.yaml:4: store.redis.db: want a whole number, not 0.5", nil},
		{"a whole float", "failover:\n  max_attempts: 2.0\n", "",
			func(c *Config) bool { return c.Failover.MaxAttempts == 2 }},
		{"an exponent", "server:\n  max_body_bytes: 1e6\n", "",
			func(c *Config) bool { return c.Server.MaxBodyBytes == 1_000_000 }},
		{"a weight", "providers: [{name: p, base_url: \"http://x/v1\"}]\n" + fmt.Sprintf(models, "1.5"),
			"c.yaml:4: models[0].targets[0].weight: want a whole number, not 1.5", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(map[string]string{"N": "2.5"}))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want == "" && !tc.check(cfg):
				t.Errorf("loaded max_attempts %d, max_body_bytes %d", cfg.Failover.MaxAttempts, cfg.Server.MaxBodyBytes)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded: max_attempts %d, max_payment_calls %d, max_orders %d, max_body %d, catalog %+v; want %s",
					cfg.Failover.MaxAttempts, cfg.Payments.Budget.MaxPaymentCalls, cfg.Payments.Rules.MaxOrdersPerUserPerDay,
					cfg.Server.MaxBodyBytes, cfg.Payments.Catalog, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestLeadingZeroNumbers: yaml reads a whole number written with a leading
// zero as octal (max_quantity: 012 loaded as 10, 010 as 8), while 08,
// which is no octal number, is 8: a zero-padded cap silently became
// another number. A number with a leading zero, for a key that counts, is
// an error at its line; 0, hexadecimal (0x10) and YAML 1.2's octal (0o12)
// say what they mean and load.
func TestLeadingZeroNumbers(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
		check     func(*Config) bool
	}{
		{"max_quantity 012", "payments:\n  catalog:\n    - {sku: a, name: A, price: \"10.00\", max_quantity: 012}\n",
			"c.yaml:3: payments.catalog[0].max_quantity: 012 has a leading zero, which YAML reads as an octal number (10): write 12", nil},
		{"max_orders_per_user_per_day 010", "payments:\n  rules:\n    max_orders_per_user_per_day: 010\n",
			"c.yaml:3: payments.rules.max_orders_per_user_per_day: 010 has a leading zero, which YAML reads as an octal number (8): write 10", nil},
		{"08, not octal", "failover:\n  max_attempts: 08\n",
			"c.yaml:2: failover.max_attempts: 08 has a leading zero: write 8", nil},
		{"negative", "failover:\n  recovery: {max_attempts: -01}\n",
			"c.yaml:2: failover.recovery.max_attempts: -01 has a leading zero: write -1", nil},
		{"from a variable", "failover:\n  breaker:\n    failures: ${N}\n",
			"c.yaml:3: failover.breaker.failures: 012 has a leading zero, which YAML reads as an octal number (10): write 12", nil},
		{"0", "payments:\n  budget:\n    max_payment_calls: 0\n", "", func(c *Config) bool { return c.Payments.Budget.MaxPaymentCalls == 0 }},
		{"hexadecimal", "failover:\n  max_attempts: 0x10\n", "", func(c *Config) bool { return c.Failover.MaxAttempts == 16 }},
		{"YAML 1.2 octal", "failover:\n  max_attempts: 0o12\n", "", func(c *Config) bool { return c.Failover.MaxAttempts == 10 }},
		{"quoted text for a string key", "payments:\n  wechatpay:\n    mch_id: 0123\n", "", func(c *Config) bool { return c.Payments.WeChatPay.MchID == "0123" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.src), "c.yaml", envMap(map[string]string{"N": "012"}))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want == "" && !tc.check(cfg):
				t.Errorf("loaded max_attempts %d, max_payment_calls %d, mch_id %q", cfg.Failover.MaxAttempts, cfg.Payments.Budget.MaxPaymentCalls, cfg.Payments.WeChatPay.MchID)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded: max_attempts %d, recovery %d, failures %d, max_orders %d, catalog %+v; want %s",
					cfg.Failover.MaxAttempts, cfg.Failover.Recovery.MaxAttempts, cfg.Failover.Breaker.Failures,
					cfg.Payments.Rules.MaxOrdersPerUserPerDay, cfg.Payments.Catalog, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestLeadingZeroWithUnderscores: yaml drops the underscores of a number
// (digit grouping, 1_000) before it reads it, so 0_12 and 010_000 are
// octal as 012 is (10 and 4096), and 08_0 is 80: a leading zero is an
// error at its line however the digits are grouped; 1_000 loads as 1000.
func TestLeadingZeroWithUnderscores(t *testing.T) {
	tests := []struct {
		value string
		want  string // the error; "" when it loads
		n     int    // with want "": the loaded max_orders_per_user_per_day
	}{
		{"0_12", "c.yaml:1: payments.rules.max_orders_per_user_per_day: 0_12 has a leading zero, which YAML reads as an octal number (10): write 12", 0},
		{"010_000", "c.yaml:1: payments.rules.max_orders_per_user_per_day: 010_000 has a leading zero, which YAML reads as an octal number (4096): write 10000", 0},
		{"08_0", "c.yaml:1: payments.rules.max_orders_per_user_per_day: 08_0 has a leading zero: write 80", 0},
		{"1_000", "", 1000},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			cfg, err := Parse([]byte("payments: {rules: {max_orders_per_user_per_day: "+tc.value+"}}\n"), "c.yaml", envMap(nil))
			switch {
			case tc.want != "" && err == nil:
				t.Fatalf("loaded max_orders_per_user_per_day %d; want %s", cfg.Payments.Rules.MaxOrdersPerUserPerDay, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want == "" && cfg.Payments.Rules.MaxOrdersPerUserPerDay != tc.n:
				t.Errorf("loaded %d; want %d", cfg.Payments.Rules.MaxOrdersPerUserPerDay, tc.n)
			}
		})
	}
}
