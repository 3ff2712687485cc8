package console

import (
	"crypto/tls"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	const self = "http://admin.test:8081"
	tests := []struct {
		name    string
		method  string
		csrf    string
		origin  string
		fetch   string // Sec-Fetch-Site
		tls     bool
		want    int
		reaches bool
	}{
		{name: "GET passes without anything", method: "GET", want: 200, reaches: true},
		{name: "GET from another site passes (reads need the token)", method: "GET", origin: "https://evil.example", fetch: "cross-site", want: 200, reaches: true},
		{name: "HEAD passes", method: "HEAD", want: 200, reaches: true},
		{name: "OPTIONS passes", method: "OPTIONS", want: 200, reaches: true},
		{name: "POST without the header", method: "POST", want: 403},
		{name: "POST with the header, no origin (curl)", method: "POST", csrf: "1", want: 200, reaches: true},
		{name: "POST from the console", method: "POST", csrf: "1", origin: self, fetch: "same-origin", want: 200, reaches: true},
		{name: "POST from another site", method: "POST", csrf: "1", origin: "https://evil.example", want: 403},
		{name: "POST from another site, browser says so", method: "POST", csrf: "1", origin: "https://evil.example", fetch: "cross-site", want: 403},
		{name: "POST same-site subdomain", method: "POST", csrf: "1", origin: "http://other.admin.test:8081", fetch: "same-site", want: 403},
		{name: "POST from another port of the host", method: "POST", csrf: "1", origin: "http://admin.test:9999", want: 403},
		{name: "POST through a TLS-terminating ingress (https Origin, plain listener)", method: "POST", csrf: "1", origin: "https://admin.test:8081", fetch: "same-origin", want: 200, reaches: true},
		{name: "POST from a non-web scheme of the host", method: "POST", csrf: "1", origin: "ftp://admin.test:8081", want: 403},
		{name: "POST over TLS from itself", method: "POST", csrf: "1", origin: "https://admin.test:8081", tls: true, want: 200, reaches: true},
		{name: "POST from an opaque origin", method: "POST", csrf: "1", origin: "null", want: 403},
		{name: "POST claiming same-origin with a foreign Origin", method: "POST", csrf: "1", origin: "https://evil.example", fetch: "same-origin", want: 403},
		{name: "POST cross-site without Origin", method: "POST", csrf: "1", fetch: "cross-site", want: 403},
		{name: "POST without the header from itself", method: "POST", origin: self, fetch: "same-origin", want: 403},
		{name: "DELETE without the header", method: "DELETE", want: 403},
		{name: "DELETE from another site", method: "DELETE", csrf: "1", origin: "https://evil.example", want: 403},
		{name: "DELETE with the header", method: "DELETE", csrf: "1", origin: self, want: 200, reaches: true},
		{name: "PUT without the header", method: "PUT", want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached := false
			h := Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }), nil)
			r := httptest.NewRequest(tt.method, "http://admin.test:8081/admin/api/approvals/PG1/approve", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range map[string]string{CSRFHeader: tt.csrf, "Origin": tt.origin, "Sec-Fetch-Site": tt.fetch} {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want || reached != tt.reaches {
				t.Fatalf("got %d (reached %v); want %d (reached %v)", w.Code, reached, tt.want, tt.reaches)
			}
			if w.Code == 403 {
				if ct := w.Header().Get("Content-Type"); ct != "application/json" || !strings.Contains(w.Body.String(), `"error":`) {
					t.Errorf("403 body %q (%s); want a JSON error", w.Body, ct)
				}
			}
		})
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)
	tests := []struct {
		name, method, path string
		want               int
		ctype, contains    string
	}{
		{name: "the page", method: "GET", path: "/", want: 200, ctype: "text/html; charset=utf-8", contains: `<input id="token" type="password"`},
		{name: "HEAD of the page", method: "HEAD", path: "/", want: 200, ctype: "text/html; charset=utf-8"},
		{name: "the entry module", method: "GET", path: "/console/js/main.js", want: 200, ctype: "text/javascript; charset=utf-8", contains: "import"},
		{name: "the styles", method: "GET", path: "/console/console.css", want: 200, ctype: "text/css; charset=utf-8"},
		{name: "the icon", method: "GET", path: "/console/favicon.svg", want: 200, ctype: "image/svg+xml"},
		{name: "no directory listing", method: "GET", path: "/console/js/", want: 404},
		{name: "no listing of the root", method: "GET", path: "/console/", want: 404},
		{name: "index only at /", method: "GET", path: "/console/index.html", want: 404},
		{name: "unknown asset", method: "GET", path: "/console/nope.js", want: 404},
		{name: "dot segments", method: "GET", path: "/console/js/../console.css", want: 404},
		{name: "encoded dot segments", method: "GET", path: "/console/js/%2e%2e/console.css", want: 404},
		{name: "outside the prefix", method: "GET", path: "/main.js", want: 404},
		{name: "POST", method: "POST", path: "/", want: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: %d; want %d (%s)", tt.method, tt.path, resp.StatusCode, tt.want, b)
			}
			if tt.want != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.ctype {
				t.Errorf("content type %q; want %q", ct, tt.ctype)
			}
			if !strings.Contains(string(b), tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("CSP %q lacks %q", csp, d)
				}
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("security headers %v", resp.Header)
			}
		})
	}
}

// TestAssetsSelfContained checks what the page loads is all embedded and
// local: every src/href and module import names an embedded file, nothing
// comes from another host, and no script builds markup from strings or
// keeps the token anywhere but sessionStorage: localStorage, which outlives
// the tab, holds the operator's name (api.js's OPERATOR_KEY) and nothing
// else.
func TestAssetsSelfContained(t *testing.T) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	ref := regexp.MustCompile(`(?:src|href)="([^"]+)"|from '(\./[^']+)'`)
	external := regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "document.cookie"}
	local := regexp.MustCompile(`localStorage(?:\.(\w+)\((\w*))?`)
	seen := 0
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		seen++
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		text := string(b)
		for _, m := range external.FindAllString(text, -1) {
			if m != "http://www.w3.org" && m != "//www.w3.org" {
				t.Errorf("%s names another host: %s", name, m)
			}
		}
		for _, m := range ref.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if target == "" {
				// A relative import, from the module's own directory.
				dir := name[:strings.LastIndex(name, "/")+1]
				target = "/console/" + dir + strings.TrimPrefix(m[2], "./")
			}
			file, ok := assetName(target)
			if !ok {
				t.Errorf("%s refers to %q, which the handler does not serve", name, target)
				continue
			}
			if _, err := fs.Stat(sub, file); err != nil {
				t.Errorf("%s refers to %q, which is not embedded", name, target)
			}
		}
		if strings.HasSuffix(name, ".js") {
			for _, f := range forbidden {
				if strings.Contains(text, f) {
					t.Errorf("%s uses %s", name, f)
				}
			}
			for _, m := range local.FindAllStringSubmatch(text, -1) {
				if (m[1] != "getItem" && m[1] != "setItem" && m[1] != "removeItem") || m[2] != "OPERATOR_KEY" {
					t.Errorf("%s uses %s: localStorage is the operator's name's alone (OPERATOR_KEY)", name, m[0])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 6 {
		t.Errorf("walked %d files; want the page, styles, icon and modules", seen)
	}
}
