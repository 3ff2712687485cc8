package config

import (
	"slices"
	"strings"
	"testing"
)

// TestEnvValueIsTextInStringFields: a ${VAR} is expanded inside the parsed
// scalar, and a string field gets the variable's text as it is, whatever
// YAML would make of it written bare: a number, a bool, null or ~. (A
// secret sent in a header, admin.token, may not start or end with a
// space: TestHeaderValues.)
func TestEnvValueIsTextInStringFields(t *testing.T) {
	for _, v := range []string{"1230000109", "0123", "1e3", "true", "no", "null", "Null", "NULL", "~", "0x1F", "1_000", "a: b", "#x", "[1,2]", "  sp  "} {
		env := envMap(map[string]string{"V": v})
		src := "webhooks:\n  secret: ${V}\npayments:\n  wechatpay:\n    mch_id: ${V}\n    app_id: \"${V}\"\n"
		cfg, err := Parse([]byte(src), "x.yaml", env)
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if w := cfg.Payments.WeChatPay; cfg.Webhooks.Secret != v || w.MchID != v || w.AppID != v {
			t.Errorf("env %q: webhooks.secret %q mch_id %q app_id %q", v, cfg.Webhooks.Secret, w.MchID, w.AppID)
		}
	}
}

// TestEnvValueFillsOtherFields: an unquoted ${VAR} still fills a number,
// while null or ~ in a number is an error at the key rather than a silent
// default.
func TestEnvValueFillsOtherFields(t *testing.T) {
	parse := func(v string) (*Config, error) {
		return Parse([]byte("server:\n  max_body_bytes: ${V}\n"), "x.yaml", envMap(map[string]string{"V": v}))
	}
	if cfg, err := parse("1024"); err != nil || cfg.Server.MaxBodyBytes != 1024 {
		t.Errorf("1024: got %v, %v", cfg, err)
	}
	for _, v := range []string{"null", "~"} {
		if _, err := parse(v); err == nil {
			t.Errorf("%q in a number: accepted", v)
		} else if want := "x.yaml:2: server.max_body_bytes: "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q in a number: got %q; want it to start with %q", v, err, want)
		}
	}
}

// TestUnsetVariableWarned: a ${VAR} with no default whose variable is not
// set reads as empty, and a key left with no value takes its default: an
// operator who moved approval_above to ${APPROVAL_ABOVE} and did not export
// it (a typo in the name, a deployment without it) ran with 500.00, every
// order below it unapproved, and check-config said only "ok". The load
// still goes on (SPEC 8's ${VAR}, as a shell reads it), but a warning names
// the variable and the key's line; check-config prints it and serve logs
// it. A variable set, even to "", or a default, says what was meant.
func TestUnsetVariableWarned(t *testing.T) {
	const warning = "c.yaml:3: payments.rules.approval_above: ${APPROVAL_ABOVE} is not set and has no default (${APPROVAL_ABOVE:-…}): read as empty"
	tests := []struct {
		name, value string
		env         map[string]string
		want        string // the warning; "" for none about the variable
	}{
		{"unset", "${APPROVAL_ABOVE}", nil, warning},
		{"set", "${APPROVAL_ABOVE}", map[string]string{"APPROVAL_ABOVE": "100.00"}, ""},
		{"set to empty", "${APPROVAL_ABOVE}", map[string]string{"APPROVAL_ABOVE": ""}, ""},
		{"a default", "${APPROVAL_ABOVE:-100.00}", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "payments:\n  rules:\n    approval_above: " + tc.value + "\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(tc.env))
			if err != nil {
				t.Fatalf("got %v; want it to load", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "APPROVAL_ABOVE") {
					got = append(got, w)
				}
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warnings %q; want none about the variable", got)
			case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want)):
				t.Errorf("warnings %q; want one that starts with %q", got, tc.want)
			}
		})
	}
	// A secret's variable is named, never a value.
	cfg, err := Parse([]byte("webhooks:\n  url: https://m.example/hook\n  secret: whsec-${WEBHOOK_PART}-0123456789\n"), "c.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := "c.yaml:3: webhooks.secret: ${WEBHOOK_PART} is not set and has no default (${WEBHOOK_PART:-…}): read as empty"
	if !slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.HasPrefix(w, want) }) {
		t.Errorf("warnings %q; want one that starts with %q", cfg.Warnings, want)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w, "whsec") {
			t.Errorf("the warning %q prints the secret", w)
		}
	}
}
