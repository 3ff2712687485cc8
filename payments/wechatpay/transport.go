package wechatpay

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/paygate/paygate/internal/egress"
)

// DefaultAPIBase is WeChat Pay's production API, which the SDK hard-codes.
const DefaultAPIBase = "https://api.mch.weixin.qq.com"

// hostRewriter sends every request to another scheme and host, keeping path and
// query. The SDK builds absolute URLs on DefaultAPIBase and signs only the
// request URI, so rewriting the host below the SDK keeps signatures valid.
type hostRewriter struct {
	base   http.RoundTripper
	scheme string
	host   string
}

// NewHostRewriter returns a RoundTripper that sends each request to apiBase's
// scheme and host (apiBase may carry no path, query, fragment or userinfo)
// through base (nil: Go's default transport, a proxy's refusal named as
// one: egress.ProxyRefusal). Its errors do not print
// apiBase: a userinfo would hold a password.
func NewHostRewriter(apiBase string, base http.RoundTripper) (http.RoundTripper, error) {
	u, err := url.Parse(apiBase)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error's text holds the URL
		}
		return nil, fmt.Errorf("%w: api_base: not a URL: %v (value not shown)", ErrConfig, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%w: api_base: scheme must be https or http", ErrConfig)
	}
	if u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: api_base: want scheme://host[:port] only (value not shown)", ErrConfig)
	}
	if base == nil {
		// Go's default transport (its proxy from the environment), with a
		// proxy's refusal named as one.
		if def, ok := http.DefaultTransport.(*http.Transport); ok {
			tr := def.Clone()
			tr.OnProxyConnectResponse = egress.ProxyRefusal
			base = tr
		} else {
			base = http.DefaultTransport
		}
	}
	return &hostRewriter{base: base, scheme: u.Scheme, host: u.Host}, nil
}

// RoundTrip implements http.RoundTripper without modifying the caller's request.
func (t *hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.URL.Scheme = t.scheme
	out.URL.Host = t.host
	out.Host = ""
	return t.base.RoundTrip(out)
}
