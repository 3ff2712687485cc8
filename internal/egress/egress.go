// Package egress holds what paygate's outbound HTTP clients share about
// the company's egress proxy (HTTPS_PROXY, HTTP_PROXY).
package egress

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// ProxyRefusal is an http.Transport's OnProxyConnectResponse: a proxy that
// would not open the tunnel to an https host fails the request naming the
// proxy's address (never its user or password), the host and the proxy's
// status. net/http's own error is the status's reason phrase alone
// ("Forbidden", "Proxy Authentication Required", "Bad Gateway"), which read
// as the host's refusal: a webhook's "post: Forbidden", WeChat Pay's.
func ProxyRefusal(_ context.Context, proxy *url.URL, connect *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return fmt.Errorf("proxy %s refused the tunnel to %s: %s", proxy.Host, connect.Host, resp.Status)
}
