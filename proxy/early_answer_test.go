package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// TestEarlyRefusalReachesUploadingBot: a bot that posts a chat completion
// with a multi-MB image reads paygate's refusal, sent before paygate read the
// whole body, whatever the refusal: a body over server.max_body_bytes (413)
// or a key paygate does not know (401). The bots' listener must not reset
// the connection under a client still uploading (go-openai, httpx: "write:
// connection reset by peer", then a retry that uploads the image again);
// proxy/h1 closes it as net/http does. A reset came about half the time, so
// ten uploads show it.
func TestEarlyRefusalReachesUploadingBot(t *testing.T) {
	chat := func(image int) string {
		return `{"model":"gpt-test","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` +
			strings.Repeat("A", image) + `"}}]}]}`
	}
	for _, tc := range []struct {
		name       string
		maxBody    int64
		key        string
		body       string
		wantStatus int
	}{
		{"over max_body_bytes", 1 << 20, testClientKey, chat(6 << 20), http.StatusRequestEntityTooLarge},
		{"unknown key", 0, "sk-revoked", chat(2 << 20), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(200, okCompletion))
			url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
				if tc.maxBody > 0 {
					c.Server.MaxBodyBytes = tc.maxBody
				}
			}))
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			for i := range 10 {
				req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tc.key)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("upload %d of 10: %v; want the %d error JSON", i+1, err, tc.wantStatus)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), `"error"`) {
					t.Fatalf("upload %d of 10: %s %s, %v; want the %d error JSON", i+1, resp.Status, b, err, tc.wantStatus)
				}
			}
			if n := len(fp.requests()); n > 0 {
				t.Errorf("the provider was asked %d times; want never", n)
			}
		})
	}
}
