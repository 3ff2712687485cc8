package config

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

var (
	toolName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	skuName  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)
)

// periodFloors are the shortest periods of work paygate repeats: below
// them a typo (1ms for 1m, 1ns) runs the work, and its log line, thousands
// of times a second. A 0 is not checked here: it is "never" for
// sse_keepalive, and refused for the others (zeroKeys). The comments in
// types.go state each floor.
var periodFloors = []struct {
	path string
	min  time.Duration
	what string
}{
	{"server.sse_keepalive", time.Second, "each period writes a keep-alive (a blank line, not a comment) to every stream waiting between rounds; 0 sends none"},
	{"payments.reconcile.sweep_interval", time.Second, "each sweep reads the pending orders and may query WeChat Pay"},
	{"audit.head_every", time.Second, "each period logs the chain head"},
}

// maxOrderTTL is the longest payments.order_ttl: the validity of WeChat
// Pay's prepay_id and code_url (JSAPI and Native prepay).
const maxOrderTTL = 2 * time.Hour

// minOrderTTL is the shortest payments.order_ttl: WeChat Pay raises a
// time_expire under a minute after the order is placed to that minute, and
// an order left creating is opened by the sweep after its grace (30s) only
// with a minute to go.
const minOrderTTL = 2 * time.Minute

// notifyRoute is where paygate serves WeChat Pay's notifications
// (payments.NotifyPath, which config does not import).
const notifyRoute = "/wechatpay/notify"

// minDedupeWindow is the shortest payments.dedupe_window: within it a
// purchase asked for again after its payment is answered already_paid
// (SPEC 4), and a window of milliseconds (10ms typed for 10m) leaves no
// time for the model's next create_order of the same purchase.
const minDedupeWindow = time.Minute

// minDecisionTTL is the shortest payments.refunds.confirm_ttl and
// payments.rules.approval_ttl: below it a proposal or a held order expires
// before a person can answer it. It catches a unit slip (15ms for 15m).
const minDecisionTTL = time.Second

// maxConfirmTTL is the longest payments.refunds.confirm_ttl (the payments
// service's MaxRefundConfirmTTL): a refund proposal must not outlive the
// claim that keeps it the only open one of its amount, which is kept well
// inside the store's tombstones.
const maxConfirmTTL = 72 * time.Hour

// validate checks every rule a running paygate depends on. It reports all
// problems, each at the line of the key it concerns.
func (l *loader) validate(c *Config) {
	l.validateServer(c)
	l.validateClients(c)
	l.validateStore(c)
	providers := l.validateProviders(c)
	l.validateModels(c, providers)
	l.validatePrices(c)
	l.validateFailover(c)
	l.validatePayments(c)
	l.validateMisc(c)
	l.ownSecrets(c)
	for _, f := range periodFloors {
		v, _ := fieldAt(reflect.ValueOf(c).Elem(), f.path)
		if d := time.Duration(v.Int()); d > 0 && d < f.min {
			l.at(f.path, "%v is below %v: %s", d, f.min, f.what)
		}
	}
}

func (l *loader) validateServer(c *Config) {
	type listener struct{ path, addr, host, port string }
	var ls []listener
	for _, kv := range []struct{ path, addr string }{
		{"server.listen", c.Server.Listen},
		{"server.admin_listen", c.Server.AdminListen},
		{"server.notify_listen", c.Server.NotifyListen},
	} {
		switch {
		case kv.addr == "" && kv.path == "server.notify_listen":
			continue // the notify route is on server.listen
		case kv.addr == "off" && kv.path == "server.admin_listen":
			continue
		case kv.addr == "off" && kv.path == "server.notify_listen":
			// serve would try to listen on "off": the way to have no
			// listener of its own is to leave the key empty.
			l.at(kv.path, `"off" is not an address: leave it empty ("") to serve the notify route on server.listen`)
			continue
		}
		host, port, ok := l.listenAddr(kv.path, kv.addr)
		if ok {
			ls = append(ls, listener{kv.path, kv.addr, host, port})
		}
	}
	// Two listeners on one address: the second net.Listen fails at start
	// ("address already in use"), with no line to point at.
	for i := range ls {
		for j := i + 1; j < len(ls); j++ {
			a, b := ls[i], ls[j]
			if a.port == "0" || a.port != b.port || !(a.host == b.host || wildcardHost(a.host) || wildcardHost(b.host)) {
				continue
			}
			at, other := b, a
			if _, written := l.lines[b.path]; !written {
				at, other = a, b
			}
			l.at(at.path, "%q and %s %q are one address: each listener needs a port of its own", at.addr, other.path, other.addr)
		}
	}
	if c.Server.MaxBodyBytes < 0 {
		l.at("server.max_body_bytes", "must be positive")
	}
	if n := c.Server.MaxBodyBytesInFlight; n < -1 || n > 0 && n < c.Server.MaxBodyBytes {
		l.at("server.max_body_bytes_in_flight", "%d: at least server.max_body_bytes (%d), else a body it allows could never be read; 0 derives it from the memory limit, -1 sets no bound", n, c.Server.MaxBodyBytes)
	}
	for i, h := range c.Server.AdminHosts {
		if !hostName(h) {
			l.at(fmt.Sprintf("server.admin_hosts[%d]", i), "%q: a host name without port or scheme, such as paygate-admin.example.com (the admin listener answers it on any port)", h)
		}
	}
}

// hostName reports whether h is a host name as a Host header carries it
// without its port: dot-separated labels of letters, digits, '-' and '_',
// with an optional final dot.
func hostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// listenAddr checks a listen address as net.Listen("tcp", addr) will take
// it: host:port with a numeric port in 0-65535 (0 or empty picks a free port). A
// service name such as "http" is refused: it depends on the machine's
// /etc/services. It returns the host (localhost as 127.0.0.1) and the port.
func (l *loader) listenAddr(path, addr string) (host, port string, ok bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		l.at(path, "%q is not host:port", addr)
		return "", "", false
	}
	if port == "" {
		port = "0" // net.Listen reads an empty port as 0
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		l.at(path, "%q: the port must be a number from 0 to 65535", addr)
		return "", "", false
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return host, strconv.FormatUint(n, 10), true
}

// wildcardHost reports whether a listen host takes every interface, so it
// shares its port with any other host.
func wildcardHost(h string) bool {
	return h == "" || h == "0.0.0.0" || h == "::"
}

func (l *loader) validateClients(c *Config) {
	names, keys := map[string]bool{}, map[string]bool{}
	var skus map[string]struct{} // the catalog's SKUs (hasSKU)
	for i, cl := range c.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		l.uniqueName(names, p, "client", cl.Name)
		switch {
		case cl.Key == "":
			l.at(p+".key", "required (the bearer token the bot sends)")
		case keys[cl.Key]:
			if q := previousKeyOf(c.Clients[:i], cl.Key); q != "" {
				// Not "two clients share one key": the other holds it as
				// its outgoing key, which the operator may not think of.
				l.at(p+".key", "the same as %s: that client's bots still on their old key would act as this one", q)
				break
			}
			l.at(p+".key", "two clients share one key")
		default:
			// One ${VAR} for both (the bots kept the OpenAI key they had):
			// the provider gets the bot's key with every request.
			if pk, pn := providerCredential(c, cl.Key); pk != "" {
				l.at(p+".key", "the same as %s: provider %q, which receives it with every request, could call paygate as this bot for any of its users, their orders and refunds; give the bot a key of its own", pk, pn)
			}
		}
		keys[cl.Key] = true
		l.bearerCredential(p+".key", cl.Key, false)
		l.previousClientKey(c, i, p, cl, keys)
		if cl.Key != "" && cl.Key != DefaultClientKey && len(cl.Key) < minClientKey && !loopbackListen(c.Server.Listen) {
			// As a short admin token is refused: nothing slows a guesser
			// down (every wrong key is a plain 401), and the key acts
			// for any user the bot vouches for. The development key has
			// its own warning below.
			l.at(p+".key", "%d characters, and server.listen %s takes connections from other machines: anyone who guesses it acts as this bot for any of its users, their orders and refunds; use at least %d random characters (openssl rand -hex 16)",
				len(cl.Key), c.Server.Listen, minClientKey)
		}
		const realMoney = "anyone who can reach it acts as this bot for any of its users: reads their orders, and proposes a refund of a real payment and confirms it as the user"
		switch {
		case cl.Key != DefaultClientKey || loopbackListen(c.Server.Listen):
		case c.Payments.Backend == "wechatpay" && l.defaultClient:
			// Refused, as a short key of one's own is: the published key
			// is the first one a guesser tries. The simulator's quick start
			// (the container image's) keeps the warning below.
			e := l.errorAt("clients", "not set: the built-in development client %q with the key %s, which the README publishes, with payments.backend wechatpay, and server.listen %s takes connections from other machines: %s; list your bots under clients, each with a key of its own",
				cl.Name, DefaultClientKey, c.Server.Listen, realMoney)
			if _, written := l.lines["clients"]; !written {
				e.Line = l.line("payments.backend")
			}
			l.errs = append(l.errs, e)
		case c.Payments.Backend == "wechatpay":
			l.at(p+".key", "the built-in development key %s, which the README publishes, with payments.backend wechatpay, and server.listen %s takes connections from other machines: %s; set a key of your own (PAYGATE_CLIENT_KEY)",
				DefaultClientKey, c.Server.Listen, realMoney)
		case l.defaultClient:
			// The file has no clients[0].key to point at: the key is
			// the one the file leaves unset.
			l.warn("clients", "not set: the built-in development client %q with the key %s, and server.listen %s takes connections from other machines: anyone who can reach it can use your providers and create orders; list your bots under clients, each with a key of its own",
				cl.Name, DefaultClientKey, c.Server.Listen)
		default:
			// Printed by check-config and logged at start: the README and
			// the sample configs name this key, so on a reachable address
			// anyone can spend the provider keys and create orders.
			l.warn(p+".key", "the built-in development key %s, and server.listen %s takes connections from other machines: anyone who can reach it can use your providers and create orders; set a key of your own (PAYGATE_CLIENT_KEY)",
				DefaultClientKey, c.Server.Listen)
		}
		// payments reads an empty allow-list as "every SKU", as it reads
		// the key left out. A written empty list (what a template renders
		// for a bot given no SKUs) more likely meant none: read as unset,
		// it offered that bot the whole catalog.
		if _, written := l.lines[p+".allowed_skus"]; written && !l.nulls[p+".allowed_skus"] && len(cl.AllowedSKUs) == 0 {
			l.at(p+".allowed_skus", "an empty list, which would let this client sell every SKU (as leaving the key out does): list the SKUs it may sell, or leave the key out for every SKU")
		}
		for j, sku := range cl.AllowedSKUs {
			if !c.hasSKU(sku, &skus) {
				l.at(fmt.Sprintf("%s.allowed_skus[%d]", p, j), "SKU %q is not in payments.catalog", sku)
			}
		}
		l.payMethods(p+".pay_methods", cl.PayMethods)
		for j, f := range cl.Forward {
			if _, err := ParseForward(f); err != nil {
				l.at(fmt.Sprintf("%s.forward[%d]", p, j), "%q: %v", f, err)
			}
		}
		// A written "forward: []" forwards nothing; the decoder may leave
		// it nil, which would read as unset (every path): keep it non-nil.
		if _, written := l.lines[p+".forward"]; written && !l.nulls[p+".forward"] && cl.Forward == nil {
			c.Clients[i].Forward = []string{}
		}
	}
	// The admin token approves orders above payments.rules.approval_above; a
	// bot holding it could approve its own (one ${VAR} used for both is an
	// easy slip).
	l.bearerCredential("admin.token", c.Admin.Token, true)
	provKey, provName := providerCredential(c, c.Admin.Token)
	switch t := c.Admin.Token; {
	case t == "":
	case keys[t]:
		l.at("admin.token", "the same as a client key: that bot could approve its own orders; give the admin API a token of its own")
	case provKey != "":
		// One ${VAR} used for both: the provider gets the token with
		// every request paygate sends it.
		l.at("admin.token", "the same as %s: provider %q, which receives it with every request, could approve orders and settle reviews; give the admin API a token of its own", provKey, provName)
	case t == DefaultClientKey:
		l.at("admin.token", "the built-in development client key %s, which the README publishes; set a token of your own", DefaultClientKey)
	case len(t) < minAdminToken && c.Server.AdminListen != "off" && !loopbackListen(c.Server.AdminListen):
		// Nothing slows a guesser down (the API answers every wrong token
		// with a plain 401), so on an address other machines can reach
		// the token's length is the only defence. On loopback the quick
		// start's short token stays.
		l.at("admin.token", "%d characters, and server.admin_listen %s takes connections from other machines: anyone who guesses it approves orders and settles reviews; use at least %d random characters (openssl rand -hex 16)",
			len(t), c.Server.AdminListen, minAdminToken)
	case len(t) < minAdminToken && c.Server.AdminListen != "off" && len(othersHosts(c.Server.AdminHosts)) > 0:
		// admin_hosts are the names others reach the listener by, through
		// a proxy that forwards to it: on loopback too, the token is all
		// that stands between them and the API.
		l.at("admin.token", "%d characters, and server.admin_hosts names %s, by which other machines reach server.admin_listen %s through a proxy: anyone who guesses it approves orders and settles reviews; use at least %d random characters (openssl rand -hex 16)",
			len(t), strings.Join(othersHosts(c.Server.AdminHosts), ", "), c.Server.AdminListen, minAdminToken)
	}
}

// previousClientKey checks a client's previous_key, the outgoing key of a
// rotation, by the rules of its key: it acts as the client as surely.
func (l *loader) previousClientKey(c *Config, i int, p string, cl Client, keys map[string]bool) {
	k := cl.PreviousKey
	if k == "" {
		return
	}
	p += ".previous_key"
	switch {
	case k == cl.Key:
		l.at(p, "the same as this client's key: give the outgoing key here and the new one in key")
		return
	case keys[k]:
		if q := previousKeyOf(c.Clients[:i], k); q != "" {
			l.at(p, "the same as %s: a key is one client's; give each client's outgoing key here", q)
			return
		}
		l.at(p, "another client's key: that client's bot would act as this one")
		return
	}
	if pk, pn := providerCredential(c, k); pk != "" {
		l.at(p, "the same as %s: provider %q, which receives it with every request, could call paygate as this bot for any of its users, their orders and refunds; give the bot a key of its own", pk, pn)
	}
	keys[k] = true
	l.bearerCredential(p, k, false)
	if len(k) < minClientKey && !loopbackListen(c.Server.Listen) {
		l.at(p, "%d characters, and server.listen %s takes connections from other machines: anyone who guesses it acts as this bot for any of its users, their orders and refunds; use at least %d random characters (openssl rand -hex 16)",
			len(k), c.Server.Listen, minClientKey)
	}
}

// previousKeyOf is the path of the previous_key among clients that is k
// ("clients[0].previous_key"), or "".
func previousKeyOf(clients []Client, k string) string {
	for j, o := range clients {
		if o.PreviousKey != "" && o.PreviousKey == k {
			return fmt.Sprintf("clients[%d].previous_key", j)
		}
	}
	return ""
}

// providerCredential names the provider credential of c that is v, the
// key path ("providers[1].api_key", "providers[0].headers.api-key") and the
// provider's name, or "" when none is (or v is empty): an api_key, a
// credential in the base_url (urlCredentials: its password, a ?key=), or
// the value of a credential header (credentialHeader), whole or as the
// credential after its auth scheme (schemeCredentials). The provider
// receives it with every request, so a secret meant for another party
// that is the same value is the provider's too.
func providerCredential(c *Config, v string) (path, provider string) {
	if v == "" {
		return "", ""
	}
	for i, p := range c.Providers {
		if p.APIKey == v {
			return fmt.Sprintf("providers[%d].api_key", i), p.Name
		}
		inURL := false
		urlCredentials(p.BaseURL, func(cred string) { inURL = inURL || cred == v })
		if inURL {
			return fmt.Sprintf("a credential in providers[%d].base_url", i), p.Name
		}
		for _, h := range slices.Sorted(maps.Keys(p.Headers)) {
			if !credentialHeader(h) {
				continue
			}
			same := p.Headers[h] == v
			schemeCredentials(p.Headers[h], func(cred string) { same = same || cred == v })
			if same {
				return fmt.Sprintf("providers[%d].headers.%s", i, h), p.Name
			}
		}
	}
	return "", ""
}

// ownCredential reports whether provider p carries a credential other than
// api_key: a provider credential header (providerAuthHeader) with a value
// (Azure OpenAI's api-key, a gateway's x-api-key) or one in its base_url
// (urlCredentials). Such a
// provider is authenticated without api_key, and is not warned of as one
// that answers 401 until a key is set.
func ownCredential(p Provider) bool {
	for h, v := range p.Headers {
		if v != "" && providerAuthHeader(h) {
			return true
		}
	}
	found := false
	urlCredentials(p.BaseURL, func(v string) { found = found || v != "" })
	return found
}

// providerAuthHeader reports whether a header of that name authenticates
// a request to an LLM API: api-key (Azure OpenAI), x-api-key and any
// *-api-key (Anthropic, gateways, Google's x-goog-api-key), apikey,
// x-auth-token and any *-auth-token, Azure API Management's
// ocp-apim-subscription-key. It is narrower than credentialHeader, which
// masks any header that may hold a secret: a header such as X-Max-Tokens or
// X-Idempotency-Key holds no key the provider would take for api_key, and
// Proxy-Authorization is a proxy's, not the provider's.
func providerAuthHeader(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	switch n {
	case "api-key", "apikey", "x-apikey", "x-auth-token", "ocp-apim-subscription-key":
		return true
	}
	return strings.HasSuffix(n, "-api-key") || strings.HasSuffix(n, "-auth-token")
}

// othersHosts is hosts (server.admin_hosts) without the names of this
// machine (localhost, a *.localhost name, a loopback address): listed
// beside a loopback admin_listen, which answers them anyway, they tell of
// no proxy that others reach the listener through.
func othersHosts(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if thisMachine(h) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// thisMachine reports whether a host names this machine: localhost, a
// *.localhost name or a loopback address.
func thisMachine(host string) bool {
	n := strings.ToLower(strings.TrimSuffix(host, "."))
	ip := net.ParseIP(n)
	return n == "localhost" || strings.HasSuffix(n, ".localhost") || ip != nil && ip.IsLoopback()
}

// privateName reports whether a host can only be reached on a private
// network: a private or link-local address, a name of one label (a compose
// service), or a name under a suffix no public DNS serves (a Kubernetes
// Service's .svc and .cluster.local, .internal, .local, .lan, .home.arpa).
func privateName(host string) bool {
	n := strings.ToLower(strings.TrimSuffix(host, "."))
	if ip := net.ParseIP(n); ip != nil {
		return ip.IsPrivate() || ip.IsLinkLocalUnicast()
	}
	if !strings.Contains(n, ".") {
		return n != ""
	}
	for _, suffix := range []string{".svc", ".cluster.local", ".internal", ".local", ".lan", ".home.arpa"} {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// wechatPayHosts are WeChat Pay's own API hosts: the default api_base and
// its backup domain (its cross-city failover guide's api2).
var wechatPayHosts = []string{"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com"}

// sharedAddressSpace is RFC 6598's 100.64.0.0/10 (carrier-grade NAT),
// which net/netip's IsPrivate leaves out and the internet does not route.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// unroutableIP names the kind of address host is when it is an IP literal
// no machine on the internet can reach (loopback, private, link-local,
// unspecified, carrier-grade NAT), and "" otherwise.
func unroutableIP(host string) string {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	a = a.WithZone("").Unmap()
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsPrivate():
		return "a private network address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsUnspecified():
		return "the unspecified address"
	case sharedAddressSpace.Contains(a):
		return "a carrier-grade NAT address (100.64.0.0/10)"
	}
	return ""
}

// checkNotifyHost judges notify_url's host (backend wechatpay): WeChat
// Pay calls it from the internet, and its docs refuse localhost,
// 127.0.0.1 and 192.168.x.x. Such a URL was accepted without a word, and
// every payment and refund notification was lost: payments learnt only
// by querying, late, and the merchant's order.paid with them. An IP
// literal of a loopback or private range is an error when api_base is
// WeChat Pay's own (nothing can make WeChat Pay reach it); with another
// api_base (a simulator or stand-in, which may well call a loopback URL,
// or an egress gateway to WeChat Pay) it is a warning. A name that only
// resolves here or on a private network (localhost, one label, .internal,
// .svc, ...) is a warning either way: split DNS or a tunnel may make it
// reachable.
func (l *loader) checkNotifyHost(host, apiBase string) {
	const path = "payments.wechatpay.notify_url"
	real := false
	if b, err := url.Parse(apiBase); err == nil {
		real = slices.Contains(wechatPayHosts, strings.ToLower(strings.TrimSuffix(b.Hostname(), ".")))
	}
	if kind := unroutableIP(host); kind != "" {
		if real {
			l.at(path, "host %s is %s, which WeChat Pay cannot reach from the internet: every payment and refund notification would be lost; give the public https URL of the notify route (WeChat Pay refuses localhost, 127.0.0.1 and 192.168.x.x there)", host, kind)
			return
		}
		l.warn(path, "host %s is %s, which WeChat Pay cannot reach from the internet: fine for the stand-in api_base names, but against WeChat Pay every notification is lost and payments are learnt only by querying", host, kind)
		return
	}
	if thisMachine(host) || privateName(host) {
		l.warn(path, "host %s is not a public name: WeChat Pay calls notify_url from the internet, so unless public DNS or a tunnel makes it reachable there, every notification is lost and payments are learnt only by querying", host)
	}
}

// minAdminToken is the shortest admin token an admin listener that other
// machines can reach accepts.
const minAdminToken = 16

// minClientKey is the shortest client key a main listener that other
// machines can reach accepts (the built-in development key aside, which is
// warned of).
const minClientKey = 16

// minSigningSecret is the shortest webhooks.secret accepted, and the
// shortest privacy.hash_key taken without a warning: keys of an HMAC whose
// outputs others see, guessed offline when short.
const minSigningSecret = 16

// loopbackListen reports whether a listen address takes connections from
// this machine only.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// payMethods checks a pay_methods list at path: a written empty list, a
// value other than "jsapi" or "native", or one given twice is an error. An
// empty list would offer the model no way to pay (or, read as unset, every
// way: a mini-program merchant without Native had every QR code the model
// offered refused by WeChat Pay with NO_AUTH, closed and paged for).
func (l *loader) payMethods(path string, methods []string) {
	if _, written := l.lines[path]; written && !l.nulls[path] && len(methods) == 0 {
		l.at(path, `an empty list, which would offer no way to pay: list "jsapi", "native" or both, the default first, or leave the key out`)
	}
	seen := map[string]bool{}
	for j, m := range methods {
		at := fmt.Sprintf("%s[%d]", path, j)
		switch {
		case m != "jsapi" && m != "native":
			l.at(at, `%q: "jsapi" (pay inside WeChat) or "native" (a QR code to scan)`, m)
		case seen[m]:
			l.at(at, "%q is listed twice", m)
		}
		seen[m] = true
	}
}

// hasSKU reports whether the catalog has sku, by the set *skus, made on
// the first call: walked for each allowed SKU, a client's allow-list of
// 5,000 SKUs against a catalog of as many took 35 ms of every load, and
// the square of that as both grow.
func (c *Config) hasSKU(sku string, skus *map[string]struct{}) bool {
	if *skus == nil {
		*skus = make(map[string]struct{}, len(c.Payments.Catalog))
		for _, it := range c.Payments.Catalog {
			(*skus)[it.SKU] = struct{}{}
		}
	}
	_, ok := (*skus)[sku]
	return ok
}

// storePathProblem says why the embedded store cannot open path, as serve
// would find at its start: a folder on the way that is a regular file
// (MkdirAll: "not a directory"), or a file there that is not a bbolt store
// (store.path: config.yaml; bbolt: "invalid database"). check-config said
// ok to both. An empty file passes: bbolt makes a store of it.
func storePathProblem(path string) string {
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() || fi.Size() == 0 {
			return ""
		}
		f, err := os.Open(path)
		if err != nil {
			return "" // serve says why it cannot read it
		}
		defer f.Close()
		// A bbolt file starts with its two meta pages, each a 16-byte page
		// header, then the magic 0xED0CDAED in the host's byte order. bbolt
		// writes them in turn and opens a file from either, the second
		// when a crash tore the first: look where it looks, the second
		// page at each page size it tries (1 KiB to 16 MiB, short of the
		// file's last KiB). Only the magic is read: no lock is taken, so a
		// store a running serve holds is read and never blocked on.
		if hasBoltMagic(f, 0) {
			return ""
		}
		for pos := int64(1024); pos < fi.Size()-1024 && pos <= 1024<<14; pos <<= 1 {
			if hasBoltMagic(f, pos) {
				return ""
			}
		}
		return fmt.Sprintf("%q is a file that is not a paygate store: name a new file (paygate makes it) or the store's own", path)
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Sprintf("%q is a file, not a directory, so the store %q cannot be made in it", dir, path)
			}
			return ""
		}
		// Under a file, stat says "not a directory": walk on up to it.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || dir == filepath.Dir(dir) {
			return ""
		}
	}
}

// boltMagic is the magic number of a bbolt file's meta page.
const boltMagic = 0xED0CDAED

// hasBoltMagic reports whether the page at off in f is a bbolt meta page:
// the magic after its 16-byte header, in either byte order.
func hasBoltMagic(f io.ReaderAt, off int64) bool {
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], off+16); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(magic[:]) == boltMagic || binary.BigEndian.Uint32(magic[:]) == boltMagic
}

func (l *loader) validateStore(c *Config) {
	switch c.Store.Driver {
	case "embedded":
		if c.Store.Path == "" {
			l.at("store.path", "required for the embedded driver")
		} else if fi, err := os.Stat(c.Store.Path); err == nil && fi.IsDir() {
			// "path" read as the data directory passed here, and serve
			// stopped at the open with no line to point at.
			l.at("store.path", "%q is a directory: name the store's file, e.g. %s", c.Store.Path, filepath.Join(c.Store.Path, "paygate.db"))
		} else if msg := storePathProblem(c.Store.Path); msg != "" {
			l.at("store.path", "%s", msg)
		}
	case "redis":
		// SetDefaults fills an empty list with the default address, as
		// it fills the key left out; a written empty list (an address a
		// template did not fill in) would quietly be a Redis on this host,
		// which replicas meant to share one store do not share. So would
		// a list of elements with no value ("${REDIS_ADDR}" expanded to
		// empty), which decoding drops.
		_, written := l.lines["store.redis.addrs"]
		_, listed := l.lines["store.redis.addrs[0]"]
		switch {
		case len(c.Store.Redis.Addrs) == 0, written && !l.nulls["store.redis.addrs"] && !listed:
			l.at("store.redis.addrs", "at least one address")
		case written && listed && l.noRedisAddrs:
			l.at("store.redis.addrs", "at least one address: every element has no value (a ${VAR} that expanded to empty?)")
		case c.Store.Redis.MasterName != "" && (!written || l.nulls["store.redis.addrs"]):
			// The default address is a Redis server's, not a sentinel's:
			// every store call would fail at run time, with no line.
			l.at("store.redis.master_name", "set, and store.redis.addrs is not: with master_name the addresses are the sentinels' (usually port 26379), and the default, %s, is a Redis server's; list the sentinels in store.redis.addrs", DefaultRedisAddr)
		}
		for i, a := range c.Store.Redis.Addrs {
			l.redisAddr(fmt.Sprintf("store.redis.addrs[%d]", i), a)
		}
		if c.Store.Redis.WaitReplicas < 0 {
			l.at("store.redis.wait_replicas", "must not be negative")
		}
		r := c.Store.Redis
		if strings.ContainsAny(r.KeyPrefix, "{}") {
			// store/redis.Open refuses it, with no line to point at.
			l.at("store.redis.key_prefix", "must not contain { or }: paygate's keys carry hash tags of their own, which pick their Redis Cluster slots")
		}
		if r.TLSServerName != "" && !r.TLS {
			// Without tls the connections are plain: the name meant
			// verification that never happens.
			l.at("store.redis.tls_server_name", "set, and store.redis.tls is false: the connections are not TLS, and no certificate is verified; set tls: true")
		}
		if r.Cluster && r.MasterName != "" {
			// go-redis's UniversalClient takes master_name first: the
			// cluster would quietly be sentinels.
			l.at("store.redis.cluster", "true, and store.redis.master_name is set: sentinels serve one master, not a cluster; set one of the two")
		}
		// go-redis sends no SELECT for a db below 1, and none to a cluster
		// (several addresses without master_name, or cluster: go-redis's
		// UniversalClient, as serve opens it): a db written there would
		// quietly not be the one used.
		switch {
		case r.DB < 0:
			l.at("store.redis.db", "must not be negative")
		case r.DB != 0 && r.Cluster && r.MasterName == "":
			l.at("store.redis.db", "%d, and store.redis.cluster is true: a Redis Cluster, which has database 0 only", r.DB)
		case r.DB != 0 && len(r.Addrs) > 1 && r.MasterName == "":
			l.at("store.redis.db", "%d, and store.redis.addrs lists %d servers with no master_name: a Redis Cluster, which has database 0 only (one address, or sentinels with master_name, select a database)",
				r.DB, len(r.Addrs))
		}
	default:
		l.at("store.driver", "%q: want embedded or redis", c.Store.Driver)
	}
}

// redisAddr checks a Redis address as go-redis dials it: host:port, the
// port a number. The errors never print the value: a redis:// URL written
// here holds the password, and serve's dial errors would print it in the
// log. An address that passes has nothing of a userinfo in it.
func (l *loader) redisAddr(path, addr string) {
	const hint = " (value not shown: it may hold a password; give the password in store.redis.password)"
	host, port, err := net.SplitHostPort(addr)
	switch {
	case strings.Contains(addr, "://"):
		l.at(path, "not host:port: a URL is not taken%s", hint)
	case err != nil:
		var ae *net.AddrError
		if errors.As(err, &ae) {
			l.at(path, "not host:port: %s (value not shown)", ae.Err)
		} else {
			l.at(path, "not host:port (value not shown)")
		}
	case strings.Contains(host, "@"):
		l.at(path, "not host:port: the host holds '@'%s", hint)
	case host == "":
		l.at(path, "not host:port: no host")
	case !validHost(host):
		l.at(path, "not host:port: the host is neither a name nor an IP address (value not shown)")
	default:
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			l.at(path, "the port must be a number from 1 to 65535")
		}
	}
}

// validHost reports whether h is an IP address (an IPv6 one perhaps with a
// zone) or a DNS name.
func validHost(h string) bool {
	if ip, _, _ := strings.Cut(h, "%"); net.ParseIP(ip) != nil {
		return true
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// notInAHeader is the error for a value an HTTP header cannot carry.
const notInAHeader = "holds a line break or another control character, which an HTTP header cannot carry (value not shown)"

// credential checks a secret that travels in an HTTP header (a bearer
// token, a provider's key): net/http and proxy/h1 refuse to send a control
// character, and HTTP drops the spaces around a value, so a key with one
// there never matches. The errors never print the value.
func (l *loader) credential(path, v string) {
	switch {
	case !httpguts.ValidHeaderFieldValue(v):
		l.at(path, "%s", notInAHeader)
	case strings.TrimLeft(v, " \t") != v || strings.TrimRight(v, " \t") != v:
		l.at(path, "starts or ends with a space or tab, which HTTP drops from a header (value not shown)")
	}
}

// bearerCredential checks a value paygate compares with the bearer token a
// request sends (a client's key or previous_key, the admin token): what
// credential checks, and no other white space at its end, nor, for the
// admin token (console), at its start. paygate reads the token with
// strings.TrimSpace over the header (any Unicode space at the token's
// end), and the console's sign-in trims what is typed or pasted
// (String.prototype.trim: both ends, and U+FEFF too), so a key ending in a
// no-break space (copied from a page) or an ideographic space (a CJK input
// method) loaded, and no request could ever match it.
func (l *loader) bearerCredential(path, v string, console bool) {
	l.credential(path, v)
	if v == "" || !httpguts.ValidHeaderFieldValue(v) || strings.Trim(v, " \t") != v {
		return // credential said what is wrong
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	switch {
	case unicode.IsSpace(last):
		l.at(path, "ends with white space other than a space or tab (a no-break or ideographic space, say), which paygate drops from a bearer token, so no request could match it (value not shown)")
	case console && (unicode.IsSpace(first) || first == '\uFEFF' || last == '\uFEFF'):
		l.at(path, "starts or ends with white space other than a space or tab (a no-break or ideographic space, say), which the console drops from the token typed at its sign-in, so it could not sign in (value not shown)")
	}
}

func (l *loader) validateProviders(c *Config) map[string]bool {
	seen := map[string]bool{}
	for i, p := range c.Providers {
		path := fmt.Sprintf("providers[%d]", i)
		l.uniqueName(seen, path, "provider", p.Name)
		if p.Name == "." || p.Name == ".." {
			// The router cleans these out of /admin/api/providers/{name}/reset
			// (a redirect elsewhere), so the provider's cool-down could be
			// ended by no operator, only by a restart.
			l.at(path+".name", `%q cannot be reached by POST /admin/api/providers/{name}/reset (the path is cleaned of "." and ".."); choose another name`, p.Name)
		}
		u := l.httpURL(path+".base_url", p.BaseURL)
		if u != nil && strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/chat/completions") {
			// The endpoint as a provider's docs show it for curl: every
			// chat went to …/chat/completions/chat/completions, a 404.
			l.at(path+".base_url", "ends in /chat/completions, which paygate appends to it itself: give the API root (the part before /chat/completions, e.g. %s)", DefaultProviderURL)
		}
		if u != nil && u.Scheme == "http" && !thisMachine(u.Hostname()) && !privateName(u.Hostname()) {
			// As webhooks.url: a warning, not an error (a model server on
			// a private network is legitimate), and the URL is not shown.
			l.warn(path+".base_url", "http:// to a host that is not on a private network: the provider's key and every conversation cross the network unencrypted; use https")
		}
		if p.APIKey == "" && !ownCredential(p) {
			l.warn(path+".api_key", "empty: provider %q will answer 401 until a key is set", p.Name)
		}
		l.credential(path+".api_key", p.APIKey)
		switch p.Continuation {
		case "none", "prefill", "prefix_flag", "partial_flag":
		default:
			l.at(path+".continuation", "%q: want none, prefill, prefix_flag or partial_flag", p.Continuation)
		}
		switch p.SystemMessages {
		case SystemMessagesAnywhere, SystemMessagesFirstOnly:
		default:
			l.at(path+".system_messages", "%q: want anywhere or first_only", p.SystemMessages)
		}
		if !ValidFamily(p.Family) {
			l.at(path+".family", "%q: want %s", p.Family, familyValues)
		}
		for j, f := range p.DropFields {
			// Any member may be dropped for a strict provider, but not
			// those without which paygate's exchange with it breaks.
			fp := fmt.Sprintf("%s.drop_fields[%d]", path, j)
			switch f {
			case "":
				l.at(fp, "an empty name drops nothing")
			case "stream":
				l.at(fp, "%q cannot be dropped: paygate keeps the bot's stream mode upstream and reads the answer in it", f)
			case "messages":
				l.at(fp, "%q cannot be dropped: every chat turn would reach the provider without its conversation", f)
			default:
				// A provider's 422 names the member it refused by its
				// path (Mistral: "stream_options.include_usage: Extra
				// inputs are not permitted"), which an operator copies
				// here; escaped as one literal name, it dropped nothing.
				parent, _, nested := strings.Cut(f, ".")
				if !nested || parent == "" {
					break
				}
				whole := fmt.Sprintf(" (name %q to drop it whole)", parent)
				if parent == "messages" {
					whole = ""
				}
				l.at(fp, "%q names a member inside %q, and drop_fields removes top-level members only: it would drop nothing%s", f, parent, whole)
			}
		}
		for _, h := range slices.Sorted(maps.Keys(p.Headers)) {
			hp := path + ".headers." + h
			switch strings.ToLower(h) {
			case "authorization", "content-type", "content-length", "host":
				l.at(hp, "paygate sets this header itself")
				continue
			}
			switch {
			case !httpguts.ValidHeaderFieldName(h):
				// Named as shownPath names it: {X-Api-Key:sk-…}, with no
				// space after the ':', is one name holding the key.
				e := l.errorAt(hp, "not an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~ only)")
				if shown := shownPath(path+".headers", h, p.Headers[h] != ""); shown != hp {
					e.Path = shown
					e.Msg = strings.TrimSuffix(e.Msg, ")") + "; the rest of the name not shown: it may be a secret)"
				}
				l.errs = append(l.errs, e)
			case credentialHeader(h):
				l.credential(hp, p.Headers[h])
			case !httpguts.ValidHeaderFieldValue(p.Headers[h]):
				l.at(hp, "%s", notInAHeader)
			}
		}
		l.headerCases(path, p.Headers)
		if p.Timeouts.Connect == 0 || p.Timeouts.Total == 0 {
			l.at(path+".timeouts", "connect and total must be positive")
		}
	}
	return seen
}

// headerCases reports a header of providers[].headers (at path) written
// twice in two cases ("X-Api-Key" and "x-api-key"): HTTP header names
// ignore case, so the provider would get one of the two values, picked by
// map order, perhaps another at each start. Each one after the first in
// the file is reported; no value is printed (it may be a key).
func (l *loader) headerCases(path string, headers map[string]string) {
	byName := map[string][]string{}
	for _, h := range slices.Sorted(maps.Keys(headers)) {
		if !httpguts.ValidHeaderFieldName(h) {
			continue // reported as no name, without what may be a secret in it
		}
		byName[strings.ToLower(h)] = append(byName[strings.ToLower(h)], h)
	}
	for _, lower := range slices.Sorted(maps.Keys(byName)) {
		names := byName[lower]
		line := func(h string) int { return l.line(path + ".headers." + h) }
		slices.SortStableFunc(names, func(a, b string) int { return line(a) - line(b) })
		for _, h := range names[1:] {
			l.at(path+".headers."+h, "written twice, as %q (line %d) and %q: HTTP header names ignore case; keep one", names[0], line(names[0]), h)
		}
	}
}

func (l *loader) validateModels(c *Config, providers map[string]bool) {
	if len(c.Models) == 0 {
		// serve would start and answer every chat 404. Without a models
		// key, the error is at the providers it leaves unused.
		e := l.errorAt("models", "none: the bots ask for a model by name, and no name leads to these providers (add models, each with targets)")
		if _, written := l.lines["models"]; !written {
			e.Line = l.line("providers")
		}
		l.errs = append(l.errs, e)
	}
	seen := map[string]bool{}
	warned := map[string]bool{} // providers whose family was warned of
	for i, m := range c.Models {
		path := fmt.Sprintf("models[%d]", i)
		l.uniqueName(seen, path, "model", m.Name)
		if strings.TrimSpace(m.Name) != m.Name {
			// A quoted "gpt-4o ", a pasted no-break space, a variable read
			// with its CRLF: every bot sending the name meant got 404
			// model_not_found while the list showed the same-looking name.
			l.at(path+".name", "%q has a leading or trailing space, which the bots would have to send too: remove it", m.Name)
		}
		if m.Name != "" && !retrievableModel(m.Name) {
			l.at(path+".name", `%q cannot be retrieved by GET /v1/models/{name}: the router cleans an empty, "." or ".." segment out of the path (go-openai does not escape "/"); choose another name`, m.Name)
		}
		if unescapedInURL(m.Name) {
			l.at(path+".name", `%q cannot be retrieved by GET /v1/models/{name}: go-openai puts the name in the URL unescaped, where "?" and "#" end the path, "%%" starts an escape and a control character is refused; choose another name`, m.Name)
		}
		switch m.Strategy {
		case "priority", "weighted", "lowest-latency":
		default:
			l.at(path+".strategy", "%q: want priority, weighted or lowest-latency", m.Strategy)
		}
		if len(m.Targets) == 0 {
			l.at(path+".targets", "at least one target")
		}
		first := map[[2]string]int{} // provider and upstream model: the first target's index
		for j, t := range m.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", path, j)
			if !providers[t.Provider] {
				l.at(tp+".provider", "unknown provider %q", t.Provider)
			}
			if k, dup := first[[2]string{t.Provider, t.Model}]; dup && t.Model != "" {
				// A round asks it twice, its retry too: a failing
				// provider's three attempts of failover.max_attempts'
				// four before the next target; and under the weighted
				// strategy it draws twice its weight. A warning, not
				// an error: earlier versions loaded such a config, and
				// an upgraded paygate refusing it would not start.
				l.warn(tp, "provider %q with model %q is %s.targets[%d] already: a round asks it twice, and spends on it the attempts of the targets after it; list it once (under the weighted strategy, with the sum of the weights)",
					t.Provider, t.Model, path, k)
			} else if !dup {
				first[[2]string{t.Provider, t.Model}] = j
			}
			if t.Model == "" {
				l.at(tp+".model", "required (the provider's model name)")
			}
			if t.Weight < 0 {
				l.at(tp+".weight", "must not be negative")
			}
			if t.Weight > MaxWeight {
				// The weighted strategy sums a model's weights: near the
				// largest int the sum wrapped round, and every round drew
				// the same target first.
				l.at(tp+".weight", "%d is above %d, the largest weight", t.Weight, MaxWeight)
			}
			if t.Family != "" && !ValidFamily(t.Family) {
				l.at(tp+".family", "%q: want %s (or leave it out for the provider's)", t.Family, familyValues)
			}
			l.familyOnMistralAPI(c, tp, t, warned)
		}
		l.weightUnread(path, m)
	}
	if fm := c.Payments.FollowupModel; fm != "" && !seen[fm] {
		l.at("payments.followup_model", "%q is not a model of models", fm)
	}
}

// weightUnread warns of a target's weight written under a model whose
// strategy is not weighted, at the first such weight's line: only the
// weighted strategy reads weights, and a split the operator meant
// ("weight: 3" and "weight: 1" under the default priority) sent every
// request to the first target without a word. A warning, not an error: a
// weight kept while a model tries another strategy for a while is
// harmless.
func (l *loader) weightUnread(path string, m Model) {
	if m.Strategy == "weighted" {
		return
	}
	for j := range m.Targets {
		wp := fmt.Sprintf("%s.targets[%d].weight", path, j)
		if _, written := l.lines[wp]; !written {
			continue
		}
		strategy, how := m.Strategy, ""
		if _, written := l.lines[path+".strategy"]; !written {
			how = " (the default)"
		}
		l.warn(wp, "read by the weighted strategy only, and %s.strategy is %q%s: the weights split nothing, and the targets are asked by that strategy's order; set strategy: weighted, or remove the weights",
			path, strategy, how)
		return
	}
}

// validatePrices warns of a price under a model name no target of its
// provider names: accounting prices a round by its provider and upstream
// model exactly, so such a price (a typo, the price put under the wrong
// provider) is used for nothing, and the model it was meant for costs 0 in
// every figure. A warning, not an error: the prices serve the figures
// alone, and a price kept for a target taken out for a while is harmless.
func (l *loader) validatePrices(c *Config) {
	used := map[[2]string]bool{} // provider, upstream model
	for _, m := range c.Models {
		for _, t := range m.Targets {
			used[[2]string{t.Provider, t.Model}] = true
		}
	}
	for i, p := range c.Providers {
		for _, model := range slices.Sorted(maps.Keys(p.Prices)) {
			path := fmt.Sprintf("providers[%d].prices.%s", i, model)
			if !used[[2]string{p.Name, model}] {
				l.warn(path,
					"no target of provider %q has the model %q: the price is used for nothing, and the model it was meant for costs 0 (check it against models[].targets[].model)",
					p.Name, model)
			}
			pr := p.Prices[model]
			l.plausiblePrice(path+".input", pr.Input)
			l.plausiblePrice(path+".cached_input", pr.CachedInput)
			l.plausiblePrice(path+".output", pr.Output)
		}
	}
}

// Bounds of a plausible price per 1M tokens, in micro-units: the cheapest
// real models cost about 0.01 per 1M tokens, the dearest some hundreds
// (o1-pro's output 600 USD, about 4400 billed in CNY). Every real price
// written per token is below the floor (1000 per 1M is 0.001 a token).
const (
	minPriceMicros = 1_000          // 0.001
	maxPriceMicros = 10_000_000_000 // 10000
)

// plausiblePrice warns of a non-zero price per 1M tokens below
// minPriceMicros or above maxPriceMicros: a price written per token, as
// some price lists give it ("0.000002" for 2 per 1M), fits the six
// decimals a Decimal holds, and priced every round of the model near 0, so
// the LLM spend and the cost per completed transaction lied without a
// word; one in micro-units overstated them as much. Zero is a free model.
func (l *loader) plausiblePrice(path string, d Decimal) {
	switch {
	case d.Micros == 0:
	case d.Micros < minPriceMicros:
		l.warn(path, "%q is below %s per 1M tokens, which no model costs: prices are per 1M tokens, so every 1M tokens of this model cost %s and its LLM cost comes out near 0; written per token it would be %q, per 1K tokens %q",
			d.Text, formatScaled(minPriceMicros, 6), formatScaled(d.Micros, 6), formatScaled(d.Micros, 0), formatScaled(d.Micros, 3))
	case d.Micros > maxPriceMicros:
		l.warn(path, "%q is above %s per 1M tokens, more than any model's list price: prices are per 1M tokens, so every 1K tokens of this model cost %s; check its unit",
			d.Text, formatScaled(maxPriceMicros, 6), formatScaled(d.Micros, 9))
	}
}

// formatScaled writes v / 10^decimals as a decimal, without trailing zeros.
func formatScaled(v int64, decimals int) string {
	s := strconv.FormatInt(v, 10)
	if decimals == 0 {
		return s
	}
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	whole, frac := s[:len(s)-decimals], strings.TrimRight(s[len(s)-decimals:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

func (l *loader) validateFailover(c *Config) {
	if c.Failover.MaxAttempts < 1 {
		l.at("failover.max_attempts", "at least 1")
	}
	if c.Failover.Breaker.Failures < 1 {
		l.at("failover.breaker.failures", "at least 1")
	}
	if c.Failover.Recovery.MaxAttempts < -1 {
		l.at("failover.recovery.max_attempts", "at least 1, or -1 for off")
	}
	l.timings(c)
}

// timings warns of timing keys each accepted alone but unworkable
// together, at the line of the one written: a wait that another, shorter
// bound always cuts first.
func (l *loader) timings(c *Config) {
	written := func(path string) bool { _, ok := l.lines[path]; return ok }
	f := &c.Failover
	round := f.MaxRoundTime.D()
	roundTold := false
	for i, p := range c.Providers {
		path := fmt.Sprintf("providers[%d].timeouts", i)
		ft, total := p.Timeouts.FirstToken.D(), p.Timeouts.Total.D()
		// Only a first_token written: the default under a short total
		// written alone is the operator's short attempt, not a mistake.
		if total > 0 && ft > total && written(path+".first_token") {
			l.warn(path+".first_token", "%v is above %s.total (%v), which bounds the whole attempt: a stream's first token is waited for %v at most; lower first_token or raise total", ft, path, total, total)
		}
		if round <= 0 || ft <= round {
			continue
		}
		switch {
		case written(path + ".first_token"):
			l.warn(path+".first_token", "%v is above failover.max_round_time (%v), which bounds the wait for a stream's first token on every target, the round's last too: a first token later than %v is never waited for; raise failover.max_round_time above it", ft, round, round)
		case written("failover.max_round_time") && !roundTold:
			roundTold = true
			l.warn("failover.max_round_time", "%v is below %s.first_token (%v): the round's time bounds the wait for a stream's first token on every target, the round's last too, so a stream whose first token takes longer than %v is cut on each and answered with an error; raise it above first_token", round, path, ft, round)
		}
	}
	if wait := f.RetryAfterMaxWait.D(); round > 0 && wait >= round {
		path, what := "failover.retry_after_max_wait", ""
		if !written(path) {
			path, what = "failover.max_round_time", "failover.retry_after_max_wait "
		}
		l.warn(path, "%s%v is not below failover.max_round_time (%v): a Retry-After is waited out only when it fits in the round's time left, so one of %v or more moves the request on however long retry_after_max_wait is; lower retry_after_max_wait or raise max_round_time", what, wait, round, round)
	}
}

func (l *loader) validatePayments(c *Config) {
	p := &c.Payments
	switch p.Backend {
	case "simulator":
		if !loopbackListen(c.Server.Listen) {
			// The default backend, and the container image's: on an
			// address other machines reach, a deployment that forgot
			// backend: wechatpay takes "orders" no one can pay.
			l.warn("payments.backend", "simulator (the default), and server.listen %s takes connections from other machines: no real payment is made, and orders are paid only through the admin API (POST /admin/api/simulator/orders/{order_no}/pay) or payments.simulator.pay_after; set backend: wechatpay to take real money",
				c.Server.Listen)
		}
		if p.WeChatPay.MchID != "" {
			// A merchant filled in and the backend left to its default:
			// on a loopback listen (behind a front) the warning above is
			// not given, and every user was handed a simulated payment no
			// wallet can pay, the merchant's settings never read.
			l.warn("payments.backend", "simulator, yet payments.wechatpay names merchant %s: the simulator takes no real money and those settings are not used (users are handed payments no wallet can pay); set backend: wechatpay to take real money",
				p.WeChatPay.MchID)
		}
		if c.Store.Driver == "redis" {
			// Replicas share orders through Redis but each runs a simulator
			// of its own: one closes or queries another's order at a
			// WeChat Pay that never saw it, and a purchase could be
			// "charged" twice (a two-replica soak did).
			l.warn("payments.backend", "the simulator keeps its orders in this process: replicas sharing the Redis store each simulate a WeChat Pay of their own and do not see each other's orders; run one replica with it, or set backend: wechatpay")
		}
	case "wechatpay":
	default:
		l.at("payments.backend", "%q: want simulator or wechatpay", p.Backend)
	}
	w := p.WeChatPay
	switch k := w.APIv3PreviousKey; {
	case k == "":
	case strings.ContainsAny(k, " \t\r\n"):
		l.at("payments.wechatpay.apiv3_previous_key", "holds a space, tab or line break (an APIv3 key is 32 letters and digits): a space left at its end, or the key pasted twice? (value not shown)")
	case len(k) != 32:
		l.at("payments.wechatpay.apiv3_previous_key", "must be exactly 32 bytes, got %d", len(k))
	case k == w.APIv3Key:
		l.at("payments.wechatpay.apiv3_previous_key", "the same as apiv3_key: give the new key in apiv3_key and the outgoing one here")
	}
	if strings.ContainsAny(w.APIv3Key, " \t\r\n") {
		// WeChat Pay's APIv3 key is 32 letters and digits: a space an
		// editor left after it was "got 33 bytes" of a key the operator
		// counted 32 characters in, and, after a key cut one character
		// short, 32 bytes that decrypted no notification.
		l.at("payments.wechatpay.apiv3_key", "holds a space, tab or line break (an APIv3 key is 32 letters and digits): a space left at its end, or the key pasted twice? (value not shown)")
	} else if w.APIv3Key != "" && len(w.APIv3Key) != 32 {
		// Decryption would fail at the first notification, and the SDK's
		// deprecated handler swallows that error: refuse it now.
		l.at("payments.wechatpay.apiv3_key", "must be exactly 32 bytes, got %d", len(w.APIv3Key))
	}
	if p.Backend == "wechatpay" {
		for _, req := range []struct{ key, val string }{
			{"mch_id", w.MchID}, {"app_id", w.AppID}, {"mch_cert_serial", w.MchCertSerial},
			{"mch_private_key_file", w.MchPrivateKeyFile}, {"apiv3_key", w.APIv3Key}, {"notify_url", w.NotifyURL},
		} {
			if req.val == "" {
				l.at("payments.wechatpay."+req.key, "required with backend wechatpay")
			}
		}
		if (w.PublicKeyID == "") != (w.PublicKeyFile == "") {
			l.at("payments.wechatpay.public_key_id", "public_key_id and public_key_file go together")
		}
		if w.PublicKeyFile == "" && len(w.PlatformCertFiles) == 0 {
			l.at("payments.wechatpay", "set public_key_id/public_key_file or platform_cert_files to verify WeChat Pay's signatures")
		}
		if w.MchPrivateKeyFile != "" {
			l.checkPrivateKeyFile("payments.wechatpay.mch_private_key_file", w.MchPrivateKeyFile)
		}
		if w.PublicKeyFile != "" {
			l.checkPublicKeyFile("payments.wechatpay.public_key_file", w.PublicKeyFile)
		}
		for i, f := range w.PlatformCertFiles {
			l.checkCertificateFile(fmt.Sprintf("payments.wechatpay.platform_cert_files[%d]", i), f)
		}
	}
	if w.NotifyURL != "" {
		u := l.httpURL("payments.wechatpay.notify_url", w.NotifyURL)
		switch {
		case u == nil:
		case u.RawQuery != "":
			// WeChat Pay refuses a notify_url with parameters (PARAM_ERROR),
			// and it goes into every prepay and refund: each purchase would
			// be refused at run time. The query may hold a token: not shown.
			l.at("payments.wechatpay.notify_url", "WeChat Pay takes no parameters in it: no query (value not shown)")
		case u.Scheme == "http":
			l.warn("payments.wechatpay.notify_url", "http:// accepted for tests; WeChat Pay only calls https")
		}
		if u != nil && u.RawQuery == "" && !strings.HasSuffix(u.Path, notifyRoute) {
			// WeChat Pay posts to the URL as given, and paygate serves
			// notifications at notifyRoute only: a host alone (given as a
			// base URL is) or another path had every notification answered
			// 404, payments learnt only by querying. A warning, as a proxy in
			// front may rewrite the path; the path is not shown (it may
			// carry a token, as a query may).
			l.warn("payments.wechatpay.notify_url", "its path is not %s, where paygate serves WeChat Pay's notifications: WeChat Pay posts to the URL as given, so unless a proxy in front rewrites it to that route, every notification is answered 404 and payments are learnt only by querying (path not shown)", notifyRoute)
		}
		if u != nil && p.Backend == "wechatpay" {
			l.checkNotifyHost(u.Hostname(), w.APIBase)
		}
	}
	if u := l.apiBase("payments.wechatpay.api_base", w.APIBase); u != nil && u.Scheme == "http" && !thisMachine(u.Hostname()) && !privateName(u.Hostname()) &&
		p.Backend == "wechatpay" {
		// As webhooks.url and a provider's base_url: a warning, not an
		// error (a simulator or an egress gateway on a private network is
		// legitimate), and the URL is not shown. WeChat Pay's answers are
		// signed: this is about reading them, not changing them. With the
		// simulator backend serve does not read api_base (its client calls
		// the simulator on a loopback port): no call crosses a network.
		l.warn("payments.wechatpay.api_base", "http:// to a host that is not on a private network: every WeChat Pay call (the payer's OpenID, each order and refund) and its answer cross the network unencrypted; use https")
	}
	l.payMethods("payments.pay_methods", p.PayMethods)
	skus := map[string]bool{}
	for i, it := range p.Catalog {
		path := fmt.Sprintf("payments.catalog[%d]", i)
		switch {
		case !skuName.MatchString(it.SKU):
			l.at(path+".sku", "%q: 1-32 letters, digits, '.', '_' or '-'", it.SKU)
		case skus[it.SKU]:
			l.at(path+".sku", "duplicate SKU %q", it.SKU)
		}
		skus[it.SKU] = true
		switch why := descriptionText(it.Name); {
		case strings.TrimSpace(it.Name) == "":
			l.at(path+".name", "required (it is the order description)")
		case why != "":
			l.at(path+".name", "%s: it is the order description WeChat Pay shows the payer, one line of UTF-8 text", why)
		}
		fen, err := priceFen(it.Price.Text)
		switch {
		case it.Price.IsZero():
			l.at(path+".price", "required, above zero")
		case err != nil:
			l.at(path+".price", "%v", err)
		case fen <= 0:
			l.at(path+".price", "required, above zero")
		}
		switch {
		case it.MaxQuantity < 1:
			l.at(path+".max_quantity", "at least 1")
		case err == nil && fen > 0 && int64(it.MaxQuantity) > maxFen/fen:
			// An order's amount is price × quantity in int64 fen.
			l.at(path+".max_quantity", "%d × %s is above the largest amount, %s", it.MaxQuantity, it.Price.Text, formatFen(maxFen))
		}
	}
	// payments reads a cap of 0 or less as "no cap": a written 0 is
	// refused as ambiguous (zeroKeys), and a negative cap as well.
	for _, c := range []struct {
		key string
		v   int
	}{
		{"max_orders_per_user_per_day", p.Rules.MaxOrdersPerUserPerDay},
		{"max_payment_calls_per_minute", p.Rules.MaxPaymentCallsPerMinute},
	} {
		if c.v < 0 {
			l.at("payments.rules."+c.key, "%d: give the cap, at least 1 (below 1 there would be no cap at all)", c.v)
		}
	}
	if _, exact := p.Rules.ApprovalAbove.Fen(); !exact {
		l.at("payments.rules.approval_above", "%q has more than two decimals", p.Rules.ApprovalAbove.Text)
	} else if c.Admin.Token == "" || c.Server.AdminListen == "off" {
		l.approvalUnreachable(*p)
	}
	if d := p.DedupeWindow.D(); d > 0 && d < minDedupeWindow {
		l.at("payments.dedupe_window", "%v is below %v: a user who has just paid and asks again past it gets a second payable order, not already_paid (10m is the default)", d, minDedupeWindow)
	}
	if d := p.OrderTTL.D(); d > 0 && d < minOrderTTL {
		l.at("payments.order_ttl", "%v is below %v: WeChat Pay keeps an order payable at least a minute after it is placed, past a shorter expires_at, and an order whose prepay went unanswered is opened again only with a minute to go", d, minOrderTTL)
	}
	if d := p.OrderTTL.D(); d > maxOrderTTL {
		// WeChat Pay's prepay_id (JSAPI) and code_url (Native) live 2 hours,
		// whatever time_expire says, and an order is paid with its one
		// prepay, re-signed: past 2 hours wx.requestPayment refuses it.
		l.at("payments.order_ttl", "%v is above %v: WeChat Pay's prepay_id and code_url are valid for 2 hours, so an older order could not be paid", d, maxOrderTTL)
	}
	if d := p.Refunds.ConfirmTTL.D(); d > maxConfirmTTL {
		l.at("payments.refunds.confirm_ttl", "%v is above %v: a proposal living longer could be proposed a second time while open, and both confirmed", d, maxConfirmTTL)
	}
	// A written 0 is refused (zeroKeys); a unit slip (15ms for 15m) was
	// as unanswerable, and loaded without a word.
	if d := p.Refunds.ConfirmTTL.D(); d > 0 && d < minDecisionTTL {
		l.at("payments.refunds.confirm_ttl", "%v is below %v: every refund proposal would expire before the user could confirm it (15m is the default)", d, minDecisionTTL)
	}
	if d := p.Rules.ApprovalTTL.D(); d > 0 && d < minDecisionTTL {
		l.at("payments.rules.approval_ttl", "%v is below %v: every order held for a manager would expire before one could approve it, its user told it awaits approval (72h is the default)", d, minDecisionTTL)
	}
	switch {
	case p.Budget.MaxRounds < 1:
		l.at("payments.budget.max_rounds", "at least 2")
	case p.Budget.MaxRounds == 1:
		// A round's payment calls run only when a round is left to tell
		// the user what they did (SPEC 3): with one round, a turn whose
		// model calls a payment tool ends with the clarification text
		// instead, while the tools are still offered, so a user asking
		// to buy was asked to clarify turn after turn and never got an
		// order, whatever max_payment_calls said.
		l.at("payments.budget.max_rounds", "1 leaves no round to tell the user what a payment tool call did, so none would run but those beside the bot's own tool calls (every other turn whose model calls one would end with payments.budget.clarification): at least 2")
	}
	if p.Budget.MaxPaymentCalls < 0 {
		l.at("payments.budget.max_payment_calls", "must not be negative")
	}
	names := map[string]string{}
	for _, t := range []struct{ key, name string }{
		{"create_order", p.Tools.CreateOrder}, {"query_order", p.Tools.QueryOrder}, {"request_refund", p.Tools.RequestRefund},
	} {
		if !toolName.MatchString(t.name) {
			l.at("payments.tools."+t.key, "%q is not a valid function name", t.name)
		}
		if other, dup := names[t.name]; dup {
			l.at("payments.tools."+t.key, "same name as %s", other)
		}
		names[t.name] = t.key
	}
}

func (l *loader) validateMisc(c *Config) {
	if c.Webhooks.URL != "" {
		if u := l.httpURL("webhooks.url", c.Webhooks.URL); u != nil && u.Scheme == "http" && !thisMachine(u.Hostname()) && !privateName(u.Hostname()) {
			// A warning, not an error, and only for a host that may sit
			// across the internet: a sidecar beside the merchant's backend
			// on a private network (a compose service, a Kubernetes
			// Service, a private address) is legitimate, and warning of
			// it would warn of the shipped Kubernetes example at every
			// start. The URL is not shown (it may carry a token).
			l.warn("webhooks.url", "http:// to a host that is not on a private network: every event, the payer's OpenID and the order with it, crosses the network unencrypted (the signature stops changes, not reading); use https")
		}
		client := slices.IndexFunc(c.Clients, func(cl Client) bool {
			return cl.Key == c.Webhooks.Secret || cl.PreviousKey != "" && cl.PreviousKey == c.Webhooks.Secret
		})
		provKey, provName := providerCredential(c, c.Webhooks.Secret)
		switch s := c.Webhooks.Secret; {
		case s == "":
			l.at("webhooks.secret", "required when webhooks.url is set (receivers verify the signature)")
		case client >= 0:
			// One ${VAR} used for both, as admin.token is refused for:
			// the bot holding the key could sign events the merchant
			// delivers goods on.
			which := "key"
			if c.Clients[client].Key != c.Webhooks.Secret {
				which = "previous_key"
			}
			l.at("webhooks.secret", "the same as a client key (clients[%d].%s): that bot could sign order.paid for an order nobody paid; give the webhooks a secret of its own", client, which)
		case s == c.Admin.Token:
			// The merchant's endpoint holds the secret to verify with.
			l.at("webhooks.secret", "the same as admin.token: the merchant's endpoint, which holds the webhook secret, could approve orders and settle reviews, and whoever holds the admin token could sign order.paid; give each a secret of its own")
		case provKey != "":
			l.at("webhooks.secret", "the same as %s: provider %q, which receives it with every request, could sign order.paid for an order nobody paid; give the webhooks a secret of its own", provKey, provName)
		case strings.TrimSpace(s) != s || strings.ContainsAny(s, "\r\n"):
			// A trailing space an editor left, or the secret pasted twice
			// on two lines of its file: paygate signed under a secret the
			// merchant never holds, and every event failed verification
			// at the merchant's endpoint while paygate started without a
			// word.
			l.at("webhooks.secret", "starts or ends with a space or tab, or holds a line break (pasted twice?): the merchant verifies with the secret as it was given, so no event's signature would verify (value not shown)")
		case len(s) < minSigningSecret:
			// The merchant delivers the goods on order.paid: a secret
			// guessed offline from one signed event forges that.
			l.at("webhooks.secret", "%d characters: anyone who guesses it from one signed event can sign order.paid for an order nobody paid; use at least %d random characters (openssl rand -hex 32)",
				len(s), minSigningSecret)
		}
	}
	// serve mounts the profiles on the admin listener, behind the admin
	// token: without either, pprof: true serves nothing, without a word.
	if c.Server.Pprof {
		switch {
		case c.Server.AdminListen == "off":
			l.warn("server.pprof", "true, and server.admin_listen is off: the profiles are served on the admin listener only, so nothing serves them; give server.admin_listen an address (and admin.token)")
		case c.Admin.Token == "":
			l.warn("server.pprof", "true, and admin.token is not set: /debug/pprof/ is behind the admin token, so it answers 503 admin_disabled; set admin.token")
		}
	}
	if k := c.Privacy.HashKey; k != "" && len(k) < minSigningSecret && c.Privacy.ForwardUser == "hash" {
		// Warned, not refused: a new key re-hashes every user, which a
		// running deployment may not want forced on it at an upgrade.
		l.warn("privacy.hash_key", "%d characters: guessed offline from one user's known hash, it ties the hashes providers see to OpenIDs; use at least %d random characters (openssl rand -hex 32), or leave it empty for one generated and kept in the store",
			len(k), minSigningSecret)
	}
	if k := c.Privacy.HashKey; c.Privacy.ForwardUser == "hash" && (strings.Trim(k, " \t") != k || strings.ContainsAny(k, "\r\n")) {
		// Warned, not refused (nor trimmed): the key as written has keyed
		// every hash a deployment's providers have seen, and another key
		// re-hashes every user.
		l.warn("privacy.hash_key", "starts or ends with a space or tab, or holds a line break (pasted twice?), which is kept as part of the key (value not shown): the hashes providers see are keyed with it as written, and changing the key re-hashes every user, so providers see each as a new one")
	}
	switch c.Privacy.ForwardUser {
	case "hash", "drop", "keep":
	default:
		l.at("privacy.forward_user", "%q: want hash, drop or keep", c.Privacy.ForwardUser)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		l.at("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
}

// ownSecrets refuses a secret paygate keeps to itself that is also a
// provider's credential (providerCredential; one ${VAR} used for both), as
// a client key, the admin token and the webhook secret are refused: the
// provider receives it with every request. Only the secrets of features
// the config uses are checked. No value is printed.
func (l *loader) ownSecrets(c *Config) {
	const notifications = "could open every WeChat Pay notification it gets hold of (the payer's OpenID, each payment and refund)"
	for _, s := range []struct {
		path, v, what string
		used          bool
	}{
		{"privacy.hash_key", c.Privacy.HashKey, "could tie the user hashes it sees to the OpenIDs it knows", c.Privacy.ForwardUser == "hash"},
		{"store.redis.password", c.Store.Redis.Password, "could read and change every order wherever it reaches the store", c.Store.Driver == "redis"},
		{"payments.wechatpay.apiv3_key", c.Payments.WeChatPay.APIv3Key, notifications, c.Payments.Backend == "wechatpay"},
		{"payments.wechatpay.apiv3_previous_key", c.Payments.WeChatPay.APIv3PreviousKey, notifications, c.Payments.Backend == "wechatpay"},
	} {
		if !s.used {
			continue
		}
		if pk, pn := providerCredential(c, s.v); pk != "" {
			l.at(s.path, "the same as %s: provider %q, which receives it with every request, %s; give it a secret of its own", pk, pn, s.what)
		}
	}
}

// Provider returns the provider named name, or nil.
func (c *Config) Provider(name string) *Provider {
	for i := range c.Providers {
		if c.Providers[i].Name == name {
			return &c.Providers[i]
		}
	}
	return nil
}

// PayMethodsOf returns the pay methods client's model is offered: its own
// pay_methods, else payments.pay_methods (SetDefaults fills it); a nil
// client (one removed from the config) has payments.pay_methods.
func (c *Config) PayMethodsOf(client *Client) []string {
	if client != nil && len(client.PayMethods) > 0 {
		return client.PayMethods
	}
	return c.Payments.PayMethods
}

// Secrets lists every secret value in the config, for the redacting logger.
func (c *Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	for _, cl := range c.Clients {
		add(cl.Key)
		add(cl.PreviousKey)
	}
	for _, p := range c.Providers {
		add(p.APIKey)
		// A gateway's key in base_url's query (?key=, ?api_key=) or its
		// userinfo: providers echo their URL in error bodies, which reach
		// the log and the bot.
		urlCredentials(p.BaseURL, add)
		// Keys some providers take in a header of their own (Azure's
		// api-key, x-api-key), set through providers[].headers.
		for name, v := range p.Headers {
			if credentialHeader(name) {
				add(v)
				schemeCredentials(v, add)
				if strings.Contains(strings.ToLower(name), "cookie") {
					cookieCredentials(v, add)
				}
			}
		}
	}
	add(c.Admin.Token)
	add(c.Store.Redis.Password)
	add(c.Payments.WeChatPay.APIv3Key)
	add(c.Payments.WeChatPay.APIv3PreviousKey)
	add(c.Webhooks.Secret)
	urlCredentials(c.Webhooks.URL, add)
	add(c.Privacy.HashKey)
	return out
}

// schemeCredentials hands add the credential of a header value written
// with an auth scheme ("Bearer cfut_…", "Token …", "Basic <base64>"): the
// value after the scheme, and for Basic the user:pass it decodes to and
// the password. A provider or gateway that rejects it echoes the bare
// token ("invalid token cfut_…"), never the header's whole value, so
// masking the whole value alone let the token reach the log and the bot.
// The user name alone is not added, as in urlCredentials. add drops what
// is too short to mask.
func schemeCredentials(v string, add func(string)) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
	cred = strings.TrimSpace(cred)
	if !ok || cred == "" || !authScheme(scheme) {
		return
	}
	add(cred)
	if !strings.EqualFold(scheme, "basic") {
		return
	}
	dec, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		if dec, err = base64.RawStdEncoding.DecodeString(cred); err != nil {
			return
		}
	}
	add(string(dec))
	if _, pass, ok := strings.Cut(string(dec), ":"); ok {
		add(pass)
	}
}

// authScheme reports whether s is an HTTP auth scheme: a token (RFC 9110
// tchar) of letters, digits and the few marks a scheme name may carry.
func authScheme(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("!#$%&'*+-.^_`|~", c):
		default:
			return false
		}
	}
	return true
}

// urlCredentials hands add what in URL raw may be a credential: its
// userinfo password, and the values of query parameters whose name says
// key, token, auth or secret (credentialHeader), or is sig, signature, code
// (an Azure Functions HTTP trigger's function key, ?code=) or a password's
// (an api-version, a design=beta is not), each as written in the URL and
// decoded: a provider that echoes its URL sends the written form.
// A userinfo user name is not one: masked as a substring it would mangle
// every log line that names the same word (a user openai, every
// openai/gpt-4o), and the password is what grants access.
func urlCredentials(raw string, add func(string)) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			add(pw)
			if _, written, ok := strings.Cut(u.User.String(), ":"); ok {
				add(written)
			}
		}
	}
	for _, pair := range strings.Split(u.RawQuery, "&") {
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			name = rawName
		}
		switch n := strings.ToLower(name); {
		case credentialHeader(n), n == "sig", n == "signature", n == "code", strings.Contains(n, "password"), n == "pass", n == "passwd":
		default:
			continue
		}
		add(rawValue)
		if v, err := url.QueryUnescape(rawValue); err == nil {
			add(v)
		}
	}
}

// retrievableModel reports whether GET /v1/models/{name}, the name put in
// the path unescaped as go-openai puts it, reaches the models route with
// that name: ServeMux cleans an empty, "." or ".." segment out of a path
// (path.Clean, a trailing "/" kept) and redirects elsewhere, so such a
// public name was listed by GET /v1/models but never retrieved, or
// retrieved as another model's object.
func retrievableModel(name string) bool {
	p := "/v1/models/" + name
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c == p
}

// unescapedInURL reports whether name holds a byte that go-openai's
// GET /v1/models/{name}, the name put in the URL unescaped, cannot carry
// as itself: "?" and "#" end the path (the model before them retrieved,
// or a 404), "%" starts an escape ("gpt%2D4o" asks for "gpt-4o", "50%off"
// is no URL), and a control character is refused by Go's URL parser.
func unescapedInURL(name string) bool {
	return strings.ContainsFunc(name, func(r rune) bool {
		return r == '?' || r == '#' || r == '%' || r < ' ' || r == 0x7f
	})
}

// uniqueName reports a missing or repeated name of a list entry at path.
func (l *loader) uniqueName(seen map[string]bool, path, what, name string) {
	switch {
	case name == "":
		l.at(path+".name", "required")
	case seen[name]:
		l.at(path+".name", "duplicate %s %q", what, name)
	}
	seen[name] = true
}

// apiBase checks the WeChat Pay API host as serve takes it
// (wechatpay.NewHostRewriter): an http(s) URL of a scheme and host[:port]
// alone. Like httpURL, it never prints the value: a userinfo may hold a
// password. It returns the parsed URL when it is one.
func (l *loader) apiBase(path, raw string) *url.URL {
	u := l.httpURL(path, raw)
	if u == nil {
		return nil
	}
	const only = "want scheme://host[:port] only"
	switch {
	case u.User != nil:
		l.at(path, "%s: no user or password (value not shown)", only)
	case strings.Trim(u.Path, "/") != "":
		l.at(path, "%s: no path (requests keep their own, /v3/...)", only)
	case u.RawQuery != "":
		l.at(path, "%s: no query", only)
	case u.Fragment != "":
		l.at(path, "%s: no fragment", only)
	}
	return u
}

// httpURL reports a value at path that is not an absolute http(s) URL, and
// returns the parsed URL when it is one. The error names what is wrong but
// not the value: a webhook's or a provider's URL may carry a token in its
// query or userinfo, and config errors end up in CI and crash-loop logs.
func (l *loader) httpURL(path, raw string) *url.URL {
	u, err := url.Parse(raw)
	var ue *url.Error
	switch {
	case err != nil && unexpandedVar(raw) != "":
		// "http://llm.example:$LLM_PORT/v1": the port does not parse.
		l.at(path, "%s", unexpandedVarError(unexpandedVar(raw)))
	case errors.As(err, &ue):
		l.at(path, "not a URL: %s (value not shown: it may hold a token)", unquoted(ue.Err))
	case err != nil:
		l.at(path, "not a URL (value not shown: it may hold a token)")
	case u.Scheme != "http" && u.Scheme != "https":
		l.at(path, "not an http(s) URL: scheme %q", u.Scheme)
	case u.Hostname() == "":
		// A port alone (http://:8080, a ${HOST} left unset) is no host
		// either: the dialer reads it as this machine.
		l.at(path, "not an absolute http(s) URL: no host")
	case !portInRange(u.Port()) && strings.Contains(raw, "@"):
		// A userinfo password with a '/', '?' or '#' in it ends the
		// authority there, and its digits before that read as the port
		// (user:9876543210/x@host): not named, as url.Parse's reasons
		// are not (unquoted).
		l.at(path, "the port must be a number from 1 to 65535 (not shown: the value holds an '@', so it may be a password's)")
	case !portInRange(u.Port()):
		// url.Parse takes any digits; the dial refused every request.
		l.at(path, "the port must be a number from 1 to 65535, not %s", u.Port())
	case u.User == nil && strings.Contains(raw, "@"):
		// The same password with a port-like head in range
		// (user:8080/x@host) parses clean as host "user", the rest in
		// the path, query or fragment: the provider's key or the signed
		// webhook would go to the host "user", which a resolver's search
		// domain may answer. An '@' no userinfo took is refused.
		l.at(path, "an '@' after the host (value not shown): a password with a '/', '?' or '#' in it ends the host early, and requests would go to its user name as a host; percent-encode them in a password (%%2F, %%3F, %%23), and an '@' in a path or query as %%40")
	case badHostChar(u.Hostname()) != 0:
		// url.Parse takes a host of any sub-delims ($&'()*+,;=!), which
		// no resolver answers: a shell-style $NAME there (paygate
		// expands ${NAME} only, and a "$" after a value's start is text)
		// sent every request to the host "$name" while check-config said
		// ok.
		if name := unexpandedVar(raw); name != "" {
			l.at(path, "%s", unexpandedVarError(name))
		} else {
			l.at(path, "not an absolute http(s) URL: the host holds %q, which no host name has", badHostChar(u.Hostname()))
		}
	default:
		return u
	}
	return nil
}

// badHostChar is the first character of a URL's host (u.Hostname()) that
// no host name has, or 0: an IP address (an IPv6 one perhaps with a zone)
// has none, and a name is letters, digits, '-', '.' and '_', or characters
// outside ASCII (an internationalized name, which the client converts).
func badHostChar(h string) rune {
	if ip, _, _ := strings.Cut(h, "%"); net.ParseIP(ip) != nil {
		return 0
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r >= 0x80) {
			return r
		}
	}
	return 0
}

// unexpandedVar is the NAME of a shell-style $NAME in the host or port of
// the URL raw, or "". None is looked for in a URL that holds an '@': a
// password with a '/' in it ends the authority early, and the name would
// be a piece of the password.
func unexpandedVar(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok || strings.Contains(raw, "@") {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	for i := 0; i+1 < len(rest); i++ {
		if rest[i] == '$' && nameStart(rest[i+1]) {
			return leadingName(rest[i+1:])
		}
	}
	return ""
}

// unexpandedVarError is the error for a $NAME (name) in a URL's host or
// port, as expandVars words one at a value's start.
func unexpandedVarError(name string) string {
	return fmt.Sprintf("$%s is not expanded: write ${%s} for a variable (paygate expands no $NAME; no host name holds a $)", name, name)
}

// unquoted is err's text without the pieces of the value it quotes:
// url.Parse's reasons quote one (`invalid port ":x9" after host`,
// `invalid URL escape "%zz"`), and a userinfo password with a '/', '?' or
// '#' in it ends the authority there, so the quoted "port" was the
// password's head.
func unquoted(err error) string {
	return strings.Join(strings.Fields(quotedPiece.ReplaceAllString(err.Error(), "")), " ")
}

var quotedPiece = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// portInRange reports whether a URL's port (digits, or "" for the
// scheme's) can be dialled.
func portInRange(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// familyOnMistralAPI warns of a family written for target t (at path tp)
// whose provider is Mistral's own API (a base_url on mistral.ai) and that
// is not mistral_api: the family is used as written, whatever the base_url
// says, and "mistral" (the name one reaches for first) keeps
// stream_options, which Mistral's API refuses with a 422 on every stream,
// while "openai" and "deepseek_api" send it tool call ids and assistant
// members it refuses. A family the target inherits is warned of at its
// provider's line, once (warned).
func (l *loader) familyOnMistralAPI(c *Config, tp string, t Target, warned map[string]bool) {
	i := slices.IndexFunc(c.Providers, func(p Provider) bool { return p.Name == t.Provider })
	if i < 0 {
		return
	}
	p := c.Providers[i]
	family, path := t.Family, tp+".family"
	if family == "" {
		if warned[p.Name] {
			return
		}
		family, path = p.Family, fmt.Sprintf("providers[%d].family", i)
	}
	switch family {
	case FamilyOpenAI, FamilyMistral, FamilyDeepSeekAPI:
	default:
		return
	}
	u, err := url.Parse(p.BaseURL)
	if err != nil {
		return
	}
	if h := strings.ToLower(u.Hostname()); h != "mistral.ai" && !strings.HasSuffix(h, ".mistral.ai") {
		return
	}
	if t.Family == "" {
		warned[p.Name] = true
	}
	// The base_url is named without its userinfo, query and fragment,
	// which may carry a key: check-config prints warnings as they are.
	shown := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	l.warn(path, "%q on Mistral's API (base_url %s) is used as written: it keeps stream_options, which Mistral's API refuses with a 422 on every stream; use mistral_api", family, shown.String())
}

// approvalUnreachable warns when an order of the catalog can exceed
// payments.rules.approval_above while the admin API, the only way a manager
// approves one, is off (no admin.token, or server.admin_listen off): every
// such order would be held for a decision nobody can make, its user told it
// awaits approval, until it expires after approval_ttl. A warning, not an
// error: the quick start runs without an admin token.
func (l *loader) approvalUnreachable(p Payments) {
	if p.Budget.MaxPaymentCalls == 0 {
		return // create_order is not offered: no order is made
	}
	limit, _ := p.Rules.ApprovalAbove.Fen()
	for _, it := range p.Catalog {
		fen, err := priceFen(it.Price.Text)
		if err != nil || fen <= 0 || it.MaxQuantity < 1 || int64(it.MaxQuantity) > maxFen/fen {
			continue // reported above
		}
		// The smallest quantity above the threshold, as the example.
		q := limit/fen + 1
		if q > int64(it.MaxQuantity) {
			continue
		}
		l.warn("payments.rules.approval_above", "orders above %s (%s × %d is %s) wait for a manager's approval, and the admin API that gives it is off (admin.token unset, or server.admin_listen off): such an order is held for a decision nobody can make, its user told it awaits approval, until it expires after payments.rules.approval_ttl; set admin.token, or raise approval_above",
			formatFen(limit), it.SKU, q, formatFen(q*fen))
		return
	}
}

// descriptionText says why name cannot be an order's description, or "":
// payments.NewCatalog refuses the same names. Bytes that are not UTF-8 (a
// ${VAR} set in a GBK shell) reach WeChat Pay as U+FFFD, three bytes
// each, past its 127 bytes of description; a line break (a folded ">"
// or literal "|" block ends in one) or another control character is no
// part of a name the payer reads on one line.
func descriptionText(name string) string {
	if !utf8.ValidString(name) {
		return "not UTF-8 text (an environment variable in another encoding, GBK?)"
	}
	for _, r := range name {
		switch {
		case r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029':
			return "holds a line break (a \">\" or \"|\" block ends in one: write \">-\" or \"|-\", or the name on one line)"
		case unicode.IsControl(r):
			return fmt.Sprintf("holds the control character U+%04X", r)
		}
	}
	return ""
}
