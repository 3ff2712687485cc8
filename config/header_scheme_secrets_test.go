package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging"
)

// providerHeaderLog logs msg through the log's redactor and returns what
// the log and a client (the proxy's and failover's threshold) would read.
func providerHeaderLog(t *testing.T, headers map[string]string, msg error) (logged, client string) {
	t.Helper()
	cfg := &Config{Providers: []Provider{{Name: "gw", BaseURL: "https://gw.example/v1", Headers: headers}}}
	var buf bytes.Buffer
	logging.New(&buf, slog.LevelInfo, cfg.Secrets()).Error("upstream error", "err", msg)
	return buf.String(), logging.NewRedactorMin(cfg.Secrets(), logging.ClientMinSecret).String(msg.Error())
}

// TestHeaderCredentialWithSchemeBareTokenLogged: a gateway credential set
// through providers[].headers with an auth scheme (Cloudflare AI
// Gateway's cf-aig-authorization: Bearer <token>, Helicone-Auth: Bearer
// <key>) is echoed by a provider without its scheme ("invalid token
// cfut_…"); the bare token must be masked in the log and for the bot, not
// only the header's whole value.
func TestHeaderCredentialWithSchemeBareTokenLogged(t *testing.T) {
	tests := []struct {
		header, value, secret string
	}{
		{"cf-aig-authorization", "Bearer cfut_9f8e7d6c5b4a39281706fedcba", "cfut_9f8e7d6c5b4a39281706fedcba"},
		{"Helicone-Auth", "Bearer sk-helicone-0123456789abcdef", "sk-helicone-0123456789abcdef"},
		{"X-Gateway-Token", "Token gwtok-0123456789abcdef", "gwtok-0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			// Not after "token ": the log's Bearer rule would mask it anyway.
			msg := errors.New(`401 {"error":"invalid credential: ` + tt.secret + `"}`)
			logged, client := providerHeaderLog(t, map[string]string{tt.header: tt.value}, msg)
			if strings.Contains(logged, tt.secret) {
				t.Errorf("log holds the bare credential: %s", logged)
			}
			if strings.Contains(client, tt.secret) {
				t.Errorf("client text holds the bare credential: %s", client)
			}
		})
	}
}

// TestBasicAuthHeaderBase64Logged: Proxy-Authorization: Basic <b64> in
// providers[].headers; a proxy that echoes the base64 credential, or the
// user:pass or password it decodes to, must not put them in the log.
func TestBasicAuthHeaderBase64Logged(t *testing.T) {
	cred := "dXNlcjpzM2NyZXQtcGFzc3dvcmQ=" // user:s3cret-password
	headers := map[string]string{"Proxy-Authorization": "Basic " + cred}
	for _, secret := range []string{cred, "user:s3cret-password", "s3cret-password"} {
		logged, client := providerHeaderLog(t, headers, fmt.Errorf("407: bad credentials %s", secret))
		if strings.Contains(logged, secret) {
			t.Errorf("log holds %q: %s", secret, logged)
		}
		if strings.Contains(client, secret) {
			t.Errorf("client text holds %q: %s", secret, client)
		}
	}
	// The user name alone is no secret: masked as a substring it would
	// mangle every line that names the same word.
	cfg := &Config{Providers: []Provider{{Name: "p", BaseURL: "https://x/v1", Headers: headers}}}
	for _, s := range cfg.Secrets() {
		if s == "user" {
			t.Errorf("secrets %q hold the user name", cfg.Secrets())
		}
	}
}
