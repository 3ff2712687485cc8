package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// checkProxyEnv refuses an HTTPS_PROXY or HTTP_PROXY (or its lower-case
// form, read when the upper-case one is empty, as net/http does; the
// golang.org/x/net module's httpproxy reads lower-case first) that Go's
// transports cannot use as written. Go drops a value that does not parse
// as a URL without a word, and one with a scheme that fails to parse is
// read as a proxy on a host named after the scheme: a password with a %
// not followed by two hex digits, or a #, / or ? in it, left paygate
// connecting to its providers, WeChat Pay and the merchant's webhooks
// directly, past the proxy the operator named, or nowhere. The value is
// not shown: it may hold the proxy's password.
//
// A NO_PROXY (no_proxy) entry Go never matches is refused only with a
// proxy set: without one Go never reads NO_PROXY, and a list shared by a
// cluster's or a desktop's environment (192.168.*;<local>) must not stop
// a paygate that connects directly anyway.
func checkProxyEnv(getenv func(string) string) error {
	proxied := false
	for _, name := range []string{"HTTPS_PROXY", "HTTP_PROXY"} {
		v := getenv(name)
		if v == "" {
			name = strings.ToLower(name)
			v = getenv(name)
		}
		proxied = proxied || v != ""
		if v != "" && !usableProxy(v) {
			return fmt.Errorf("%s is not a URL paygate can use (value not shown: it may hold a password); "+
				"write it as http://user:password@host:port (or https://, socks5://, socks5h://), with any of %% # / ? @ : or a space in the user or password "+
				"percent-encoded (%% as %%25, # as %%23)", name)
		}
	}
	if !proxied {
		return nil
	}
	name, v := "NO_PROXY", getenv("NO_PROXY")
	if v == "" {
		name, v = "no_proxy", getenv("no_proxy")
	}
	if e := unmatchedNoProxy(v); e != "" {
		return fmt.Errorf("%s entry %q is one Go never matches, and the requests it was to keep off the proxy would go through it: "+
			"list host names (merchant.internal), .domain suffixes (.corp.example), IP addresses or CIDR ranges (10.0.0.0/8), "+
			"each with an optional :port, no scheme or path, * alone for every host, separated by commas", name, e)
	}
	return nil
}

// unmatchedNoProxy is the first entry of v, a NO_PROXY, that Go's
// transports (net/http's copy of golang.org/x/net/http/httpproxy) read
// without an error but never match, or "": a URL (https://merchant.internal), a path, a CIDR
// range that does not parse, a wildcard anywhere but alone or as a
// leading "*.", a port without a host, or hosts split by ; or spaces (a
// Windows bypass list, 192.168.*;<local>: Go splits on commas alone, and
// no host is named "localhost;merchant.internal"). The webhooks to a receiver in
// the cluster, or WeChat Pay's API, meant to go direct went to the proxy.
// A list with a * entry is "": Go then skips the proxy for every host and
// reads no other entry.
func unmatchedNoProxy(v string) string {
	entries := strings.Split(v, ",")
	for _, e := range entries {
		if strings.TrimSpace(e) == "*" {
			return ""
		}
	}
	for _, e := range entries {
		p := strings.TrimSpace(e)
		if p == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err == nil {
			continue
		}
		host := p
		if h, port, err := net.SplitHostPort(p); err == nil {
			if _, err := strconv.ParseUint(port, 10, 16); port != "" && err != nil {
				return p // https://merchant.internal: a "port" of //merchant.internal
			}
			host = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		}
		host = strings.TrimPrefix(host, "*.")
		if host == "" || host == "." || strings.ContainsAny(host, "/*:@?#;<> \t") && net.ParseIP(host) == nil {
			return p
		}
	}
	return ""
}

// usableProxy reports whether v names a proxy as Go's transports read it
// (net/http's copy of golang.org/x/net/http/httpproxy): a URL with a
// scheme and a host, or a host[:port] that is one once http:// is put
// before it. What Go drops
// without a word is refused too: a path past "/", a query or a fragment
// (a password of digits, then a # / or ?, made the user and those digits
// the proxy's host and port, the credentials dropped), and a scheme the
// transports do not speak (taken for an HTTP proxy's, a SOCKS4 proxy was
// sent HTTP CONNECTs).
func usableProxy(v string) bool {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if strings.Contains(v, "://") {
			return false // a scheme, then what does not parse
		}
		if u, err = url.Parse("http://" + v); err != nil {
			return false
		}
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return false
	}
	return u.Host != "" && (u.Path == "" || u.Path == "/") && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && u.Opaque == ""
}
