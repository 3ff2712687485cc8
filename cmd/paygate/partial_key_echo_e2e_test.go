package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestProviderEchoingMostOfItsKey: a provider whose 400 quotes the
// request's key with only its last bytes starred (or its first, or both
// ends, or a few in its middle) hands the bot, through the error paygate
// passes on, and the debug log most of the key; neither may hold it.
func TestProviderEchoingMostOfItsKey(t *testing.T) {
	const (
		key       = "sk-provA-CANARY-0123456789abcdef"
		clientKey = "sk-client-CANARY-11223344"
	)
	for _, tc := range []struct{ name, echo string }{
		{"tail starred", key[:len(key)-3] + "***"},
		{"head starred", "***" + key[3:]},
		{"both ends starred", "***" + key[4:27] + "***"},
		{"middle starred", key[:14] + "****" + key[18:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+key {
					t.Errorf("upstream Authorization %q", r.Header.Get("Authorization"))
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(400)
				fmt.Fprintf(w, `{"error":{"message":"your request has an unknown field; key %s","type":"invalid_request_error"}}`, tc.echo)
			}))
			defer up.Close()
			logs := &logtest.Buffer{}
			base, _ := serveConfig(t, `
log: {level: debug}
clients: [{name: bot, key: `+clientKey+`}]
store: {path: "`+t.TempDir()+`/p.db"}
providers: [{name: a, base_url: "`+up.URL+`/v1", api_key: `+key+`}]
models: [{name: gpt-4o, targets: [{provider: a, model: x}]}]
`, logs)
			req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Authorization", "Bearer "+clientKey)
			req.Header.Set("X-WeChat-OpenID", "o1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(out), "unknown field") {
				t.Fatalf("answer %d %s; want the provider's 400 passed on", resp.StatusCode, out)
			}
			// Each echo holds more than half of the key, in one run or
			// two: masked, none of it is left, not even 8 bytes in a row.
			for i := 0; i+8 <= len(key); i++ {
				s := key[i : i+8]
				if strings.Contains(string(out), s) {
					t.Errorf("the bot's answer holds %q of the provider key: %s", s, out)
				}
				if strings.Contains(logs.String(), s) {
					t.Errorf("the log holds %q of the provider key", s)
				}
			}
		})
	}
}
