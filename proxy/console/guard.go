package console

import (
	"encoding/json"
	"net/http"
	"net/url"
)

// CSRFHeader must be on every state-changing admin request. A page on another
// site cannot send it without a CORS preflight, which the admin listener never
// grants, and an HTML form cannot send it at all. The console sends
// "X-Paygate-CSRF: 1".
const CSRFHeader = "X-Paygate-CSRF"

// Guard refuses cross-site state-changing requests with 403 before h sees
// them. Safe methods (GET, HEAD, OPTIONS) pass untouched. Any other method
// must carry CSRFHeader, must not come from another origin by the browser's
// own account (Sec-Fetch-Site, checked by http.CrossOriginProtection), and,
// when it names an Origin, that origin's host must be the request's Host.
//
// The admin token travels in the Authorization header, which a browser never
// adds on its own, so the token alone already defeats classic CSRF; the guard
// is the second lock, for a console left signed in while its operator browses
// elsewhere.
//
// refused, when not nil, wraps the handlers that answer the 403s: the admin
// listener gives them the request id and the count every admin API answer
// has.
func Guard(h http.Handler, refused func(http.Handler) http.Handler) http.Handler {
	if refused == nil {
		refused = func(h http.Handler) http.Handler { return h }
	}
	noHeader := refused(deny(http.StatusForbidden, "state-changing admin requests need the "+CSRFHeader+" header"))
	crossOrigin := refused(deny(http.StatusForbidden, "cross-origin request refused"))
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		switch {
		case r.Header.Get(CSRFHeader) == "":
			noHeader.ServeHTTP(w, r)
		case cop.Check(r) != nil, r.Header.Get("Origin") != "" && !sameOrigin(r.Header.Get("Origin"), r):
			crossOrigin.ServeHTTP(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// sameOrigin reports whether origin (an Origin header) names the host the
// request was addressed to. The scheme is not compared: the console usually
// sits behind a TLS-terminating ingress, so the browser says https while the
// listener sees plain HTTP, and one host:port cannot serve an attacker's page
// over the other scheme anyway (http.CrossOriginProtection compares the host
// only for the same reason).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host == r.Host
}

// deny answers status with msg as the admin API's JSON error.
func deny(status int, msg string) http.Handler {
	b, _ := json.Marshal(map[string]string{"error": msg})
	b = append(b, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	})
}
