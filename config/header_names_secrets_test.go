package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestCredentialHeaderNamesBeyondKeyAndToken: a provider reached through
// an auth proxy or a gateway takes its credential in a header whose name
// says password, credential or cookie (X-Api-Password, X-Client-Credential,
// a Cookie an oauth2-proxy or Cloudflare Access session rides in), not
// key, token, auth or secret. Such a value was no secret to paygate: a
// provider or proxy that echoes it (a 401 "session … expired", a debug
// page quoting the request) put it in the log and in the bot's error, and
// a config error about it printed it. Each is masked now, a cookie by the
// value of each of its pairs long enough to be a credential (a session id)
// and not by a short one (theme=dark), which masked as a substring would
// mangle every line that says "dark".
func TestCredentialHeaderNamesBeyondKeyAndToken(t *testing.T) {
	const (
		password   = "pw-0123456789abcdef"
		credential = "cred-0123456789abcdef"
		session    = "sess-0123456789abcdefABCDEF"
	)
	tests := []struct {
		header, value, secret string
	}{
		{"X-Api-Password", password, password},
		{"X-Upstream-Passwd", password, password},
		{"X-Client-Credential", credential, credential},
		{"X-Credentials", credential, credential},
		{"Cookie", "_oauth2_proxy=" + session + "; theme=dark", session},
		{"Cookie", "CF_Authorization=" + session, session},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			headers := map[string]string{tt.header: tt.value}
			msg := errors.New(`401 {"error":"refused: ` + tt.secret + ` expired"}`)
			logged, client := providerHeaderLog(t, headers, msg)
			if strings.Contains(logged, tt.secret) {
				t.Errorf("log holds the credential: %s", logged)
			}
			if strings.Contains(client, tt.secret) {
				t.Errorf("client text holds the credential: %s", client)
			}
			if !secretKey("providers[0].headers." + tt.header) {
				t.Errorf("providers[0].headers.%s is not a secret to config errors", tt.header)
			}
		})
	}
	cfg := &Config{Providers: []Provider{{Name: "p", BaseURL: "https://x/v1",
		Headers: map[string]string{"Cookie": "_oauth2_proxy=" + session + "; theme=dark"}}}}
	if slices.Contains(cfg.Secrets(), "dark") {
		t.Errorf("secrets %q hold a cookie's short value", cfg.Secrets())
	}
	// Names that only look alike stay no credential: their values (a
	// bypass flag) would be masked wherever the word appears.
	for _, name := range []string{"X-Cache-Bypass", "X-Passthrough", "X-Title", "HTTP-Referer"} {
		if credentialHeader(name) {
			t.Errorf("credentialHeader(%q) = true; want false", name)
		}
	}
}

// TestCredentialHeaderValueNotInConfigErrors: a config error about such a
// header's value never prints it.
func TestCredentialHeaderValueNotInConfigErrors(t *testing.T) {
	for _, name := range []string{"Cookie", "X-Api-Password", "X-Client-Credential"} {
		src := "providers:\n  - name: p\n    base_url: http://x/v1\n    headers: {" + name + ": \"ab${SECRET\"}\n"
		_, err := Parse([]byte(src), "c.yaml", envMap(nil))
		if err == nil {
			t.Fatalf("%s: got no error", name)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error prints the value: %v", name, err)
		}
	}
}
