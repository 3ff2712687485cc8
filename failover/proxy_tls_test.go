package failover

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestProxyTLSFailureNamesTheProxy: with HTTPS_PROXY=https://… paygate
// does the proxy's TLS itself (dialProxyTLS). When that fails (the
// proxy's certificate not trusted, or a proxy speaking plain http behind
// https://), the bot's 502 named the provider: "provider a's TLS
// certificate was not accepted", "provider a did not answer in TLS at its
// https:// base_url: check its base_url", for a provider whose base_url
// says http:// and was never reached. It is the proxy's TLS: the 502 says
// so, and nothing of the provider's certificate or base_url.
func TestProxyTLSFailureNamesTheProxy(t *testing.T) {
	never := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the proxy got %s %s", r.Method, r.Host)
	})
	untrusted := httptest.NewTLSServer(never)
	t.Cleanup(untrusted.Close)
	plain := httptest.NewServer(never)
	t.Cleanup(plain.Close)
	for name, c := range map[string]struct{ proxy, want string }{
		"untrusted certificate": {untrusted.URL, "the egress proxy's TLS certificate was not accepted: x509: certificate signed by unknown authority"},
		"plain proxy":           {"https://" + strings.TrimPrefix(plain.URL, "http://"), "the egress proxy did not answer in TLS: check the scheme of HTTPS_PROXY (HTTP_PROXY for a provider over http)"},
	} {
		for _, base := range []string{"http://llm.example.com:1/v1", "https://llm.example.com:1/v1"} {
			t.Run(name+" "+base[:strings.Index(base, ":")], func(t *testing.T) {
				pu, _ := url.Parse(c.proxy)
				tr := newTransport(5 * time.Second)
				tr.Proxy = http.ProxyURL(pu)
				tr.Fallback.(*http.Transport).Proxy = tr.Proxy
				t.Cleanup(tr.CloseIdleConnections)
				r, err := New(testConfig(map[string]string{"a": base}, []string{"a"}), Options{Logger: slog.New(slog.DiscardHandler), Transport: tr})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = r.Close() })
				_, err = r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions",
					Body: chatBody(false), ContentType: "application/json", Accept: "application/json"})
				var ue *UpstreamError
				if !errors.As(err, &ue) {
					t.Fatalf("%v; want an *UpstreamError", err)
				}
				if ue.Status != 502 || !strings.Contains(ue.Message, c.want) || strings.Contains(ue.Message, "provider a's TLS") || strings.Contains(ue.Message, "base_url") {
					t.Errorf("%d %q; want 502 saying %q, nothing of the provider's certificate or base_url", ue.Status, ue.Message, c.want)
				}
			})
		}
	}
}
