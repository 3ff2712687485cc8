package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// AssetPrefix is where the console's scripts, styles and icon are served; the
// page itself is at /.
const AssetPrefix = "/console/"

// csp allows nothing but the listener's own scripts, styles and API: no
// inline script, no CDN, no framing (clickjacking an approve button), no form
// submission (the token input can never end up in a URL).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// DataPolicy is the Content-Security-Policy of every answer of the admin
// listener other than the console's page and assets: the admin API's JSON
// (orders, OpenIDs, the audit's conversation texts, errors that echo a
// path), the metrics, the profiler's HTML index. None of them is a page
// that should run or load anything, or be framed: opened in a browser tab,
// or put in a frame by another site, it runs nothing and shows nothing
// but itself. The admin listener sets it (with X-Frame-Options and
// Referrer-Policy) on every answer; Handler replaces it with csp.
const DataPolicy = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"

// setSecurityHeaders puts the headers every console response carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

// Handler serves the console: the page at exactly / and its assets under
// AssetPrefix. It needs no token (the page is public, the data behind the
// API is not); anything else is a 404. Mount it on the admin listener with
//
//	mux.Handle("GET /{$}", h)
//	mux.Handle("GET "+console.AssetPrefix, h)
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// The directory is embedded at compile time; this cannot fail.
		panic("console: embedded static directory missing: " + err.Error())
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := assetName(r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if st, err := fs.Stat(sub, name); err != nil || st.IsDir() {
			http.NotFound(w, r) // no directory listings
			return
		}
		setSecurityHeaders(w.Header())
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		if name == "index.html" {
			r2.URL.Path = "/" // FileServer redirects …/index.html to …/
		}
		r2.URL.RawPath = ""
		files.ServeHTTP(w, r2)
	})
}

// assetName maps a request path to a file of the embedded directory: / is
// index.html, AssetPrefix+name is name.
func assetName(p string) (string, bool) {
	if p == "/" {
		return "index.html", true
	}
	rest, ok := strings.CutPrefix(p, AssetPrefix)
	if !ok || rest == "" || rest == "index.html" {
		return "", false
	}
	clean := path.Clean("/" + rest)[1:]
	if clean != rest || !fs.ValidPath(clean) {
		return "", false
	}
	return clean, true
}
