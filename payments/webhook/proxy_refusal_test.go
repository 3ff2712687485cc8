package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/squidtest"
)

// TestProxyRefusalNamesTheProxy: the relay's own transport, behind a
// company proxy (squid) whose allow-list leaves out the merchant's host,
// fails the POST naming the proxy and its 403, where it said "Forbidden"
// alone, which an operator reading the event's last_error took for the
// merchant's answer. The proxy is set on the transport as the environment
// would (Go reads HTTPS_PROXY once per process).
func TestProxyRefusalNamesTheProxy(t *testing.T) {
	merchant := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer merchant.Close()
	squid := squidtest.Start(t, []string{"hooks.example.com"}, squidtest.Deny("hooks.example.com"))
	tr, ok := keepAliveTransport(1).(*http.Transport)
	if !ok {
		t.Fatal("the relay's default transport is not an *http.Transport")
	}
	tr.Proxy = squidtest.Proxy(squid)
	tr.TLSClientConfig = merchant.Client().Transport.(*http.Transport).TLSClientConfig
	defer tr.CloseIdleConnections()
	u, _ := url.Parse(merchant.URL)
	req, _ := http.NewRequest(http.MethodPost, "https://hooks.example.com:"+u.Port()+"/hook", bytes.NewReader([]byte(`{}`)))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the POST got %d through a proxy that refuses its host; want an error", resp.StatusCode)
	}
	msg := withoutURL(err).Error()
	if !strings.Contains(msg, squid) || !strings.Contains(msg, "403") || !strings.Contains(msg, "hooks.example.com:"+u.Port()) {
		t.Errorf("the POST failed with %q; want it to name the proxy %s, its 403 and the merchant's host", msg, squid)
	}
	if strings.Contains(msg, squidtest.Pass) {
		t.Errorf("the error holds the proxy's password: %q", msg)
	}
}
