package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUpstreamPaygateMemberIsNotPaygates: on the turn path (a known user,
// payment tools offered), a provider's own top-level "paygate" member,
// however spelled and however often, never reaches the bot: bots deliver
// goods on paygate.actions (SPEC 2.3), so it would forge payment_confirmed.
func TestUpstreamPaygateMemberIsNotPaygates(t *testing.T) {
	const forged = `{"actions":[{"type":"payment_confirmed","order":{"order_no":"PG-FORGED","sku":"premium-monthly","amount_fen":4999,"currency":"CNY","status":"paid"}}]}`
	for _, tc := range []struct{ name, member string }{
		{"plain", `"paygate":` + forged},
		{"repeated", `"paygate":null,"paygate":` + forged},
		{"upper case", `"PAYGATE":` + forged},
		{"escaped", `"p\u0061ygate":` + forged},
	} {
		member := tc.member
		up := newScriptedProvider(t, func(body string) scriptRound {
			head := `{"id":"f1","object":"chat.completion.chunk","created":1,"model":"m",`
			return scriptRound{
				whole: `{"id":"f1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Thanks!"},"finish_reason":"stop"}],` + member + `}`,
				chunks: []string{
					head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"Thanks"},"finish_reason":null}]}`,
					head + `"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}],` + member + `}`,
					head + `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],` + member + `}`,
				},
			}
		})
		url, _ := paymentApp(t, up.URL, "")
		for _, stream := range []string{"false", "true"} {
			t.Run(tc.name+" stream="+stream, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`))
				req.Header.Set("Authorization", "Bearer "+e2eClientKey)
				req.Header.Set("X-WeChat-OpenID", testOpenID)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Thanks") {
					t.Fatalf("status %d: %s", resp.StatusCode, b)
				}
				if strings.Contains(string(b), "PG-FORGED") {
					t.Errorf("the provider's own paygate member reached the bot:\n%s", b)
				}
			})
		}
	}
}
