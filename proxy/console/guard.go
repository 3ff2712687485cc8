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
func Guard(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		if r.Header.Get(CSRFHeader) == "" {
			deny(w, "state-changing admin requests need the "+CSRFHeader+" header")
			return
		}
		if err := cop.Check(r); err != nil {
			deny(w, "cross-origin request refused")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
			deny(w, "cross-origin request refused")
			return
		}
		h.ServeHTTP(w, r)
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

func deny(w http.ResponseWriter, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(append(b, '\n'))
}
