package console

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Hosts is the set of Host names an admin listener answers to (NewHosts).
type Hosts struct {
	names map[string]bool
}

// NewHosts returns the Host names the admin listener on listen (its
// host:port, server.admin_listen) answers to besides IP literals: its listen
// name when that is a name, localhost when it listens on loopback or every
// interface, and names (server.admin_hosts), each on any port and in any
// case, a final dot ignored.
func NewHosts(listen string, names []string) Hosts {
	h := Hosts{names: map[string]bool{}}
	for _, n := range names {
		h.names[canonicalName(n)] = true
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return h
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case host == "", err == nil && (ip.IsLoopback() || ip.IsUnspecified()):
		h.names["localhost"] = true
	case err != nil:
		h.names[canonicalName(host)] = true // a name, localhost among them
	}
	return h
}

func canonicalName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }

// Allow reports whether the listener answers a request whose Host (host or
// host:port) is hostport. Any IP literal is answered: a browser addresses
// it without DNS, so no page can have it re-pointed. An empty Host (HTTP/1.0)
// is too: no browser sends one.
func (h Hosts) Allow(hostport string) bool {
	if hostport == "" {
		return true
	}
	name, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return false
		}
		name, port = hostport[1:end], hostport[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
		}
		if _, err := netip.ParseAddr(name); err != nil {
			return false // only an IPv6 literal goes in brackets
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		name, port = hostport[:i], hostport[i+1:]
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	return h.names[canonicalName(name)]
}

// OnlyHosts serves h only the requests whose Host hosts allows; any other
// is refused with 421 Misdirected Request and the admin API's JSON error,
// whatever its method and path, before h sees it. A page whose name an
// attacker re-points at the listener (DNS rebinding) is same-origin with it
// in the operator's browser, so without this it could read everything the
// listener serves without a token (the metrics, the readiness) and, with a
// token it guessed, decide on orders: Guard's Origin check compares with
// the Host the page sent itself. refused, when not nil, wraps the handler
// that answers the refusal, as Guard's.
func OnlyHosts(h http.Handler, hosts Hosts, refused func(http.Handler) http.Handler) http.Handler {
	if refused == nil {
		refused = func(h http.Handler) http.Handler { return h }
	}
	misdirected := refused(deny(http.StatusMisdirectedRequest,
		"the admin listener does not answer to this host name: reach it by its IP address, by localhost when it listens on loopback or on every interface, or by a name listed in server.admin_hosts"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hosts.Allow(r.Host) {
			misdirected.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
