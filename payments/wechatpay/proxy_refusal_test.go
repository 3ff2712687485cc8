package wechatpay

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/squidtest"
)

// TestProxyRefusalNamesTheProxy: the client's default transport, behind a
// company proxy (squid) whose allow-list leaves out WeChat Pay's host,
// fails the call naming the proxy and its 403, where it said "Forbidden"
// alone, read as WeChat Pay's own refusal in the retry log. The proxy is
// set on the transport as the environment would (Go reads HTTPS_PROXY
// once per process).
func TestProxyRefusalNamesTheProxy(t *testing.T) {
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer api.Close()
	squid := squidtest.Start(t, []string{"api.mch.example.com"}, squidtest.Deny("api.mch.example.com"))
	u, _ := url.Parse(api.URL)
	rt, err := NewHostRewriter("https://api.mch.example.com:"+u.Port(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := rt.(*hostRewriter).base.(*http.Transport)
	if !ok {
		t.Fatal("the default transport is not an *http.Transport")
	}
	oldProxy, oldTLS := tr.Proxy, tr.TLSClientConfig
	defer func() { tr.Proxy, tr.TLSClientConfig = oldProxy, oldTLS }() // http.DefaultTransport before the fix
	tr.Proxy = squidtest.Proxy(squid)
	tr.TLSClientConfig = api.Client().Transport.(*http.Transport).TLSClientConfig
	req, _ := http.NewRequest(http.MethodGet, DefaultAPIBase+"/v3/pay/transactions/out-trade-no/PG1?mchid=1", nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the call got %d through a proxy that refuses WeChat Pay's host; want an error", resp.StatusCode)
	}
	msg := err.Error()
	if !strings.Contains(msg, squid) || !strings.Contains(msg, "403") || !strings.Contains(msg, "api.mch.example.com:"+u.Port()) {
		t.Errorf("the call failed with %q; want it to name the proxy %s, its 403 and WeChat Pay's host", msg, squid)
	}
	if strings.Contains(msg, squidtest.Pass) {
		t.Errorf("the error holds the proxy's password: %q", msg)
	}
}
