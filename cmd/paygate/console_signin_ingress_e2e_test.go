package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleSignInThroughAFailingIngressKeepsNoToken: an ingress in front
// of the admin listener that answers the sign-in's read itself (a 502 while
// paygate restarts, a 504 of its own, in HTML or in JSON) never reached
// paygate's token check. The console took any answer but a 401 or "admin
// API off" for a token that passed it: it kept whatever was typed in the
// tab and opened, and the first real 401 then signed the operator out
// saying the token "may have been changed". It keeps no token, stays on
// the sign-in form and says the admin API could not be reached; once the
// ingress passes the read again, the same token signs in.
func TestConsoleSignInThroughAFailingIngressKeepsNoToken(t *testing.T) {
	b := newBrowser(t)
	cases := []struct {
		name, contentType, body string
		status                  int
		header                  map[string]string
	}{
		{"502 in HTML", "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>", http.StatusBadGateway, nil},
		// A gateway's JSON error with a request id of its own (nginx's
		// $request_id) looks like paygate's but for the id.
		{"504 in JSON", "application/json", `{"error":"upstream request timeout"}`, http.StatusGatewayTimeout,
			map[string]string{"X-Request-Id": "5f1c3b9e2a7d4c8b9e0f1a2b3c4d5e6f"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, adminURL, _, _ := consoleApp(t)
			target, err := url.Parse(adminURL)
			if err != nil {
				t.Fatal(err)
			}
			fwd := httputil.NewSingleHostReverseProxy(target)
			var down atomic.Bool
			down.Store(true)
			var answered atomic.Int32
			ingress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if down.Load() && r.URL.Path == "/admin/api/audit/head" && r.Header.Get("Authorization") == "Bearer "+consoleToken {
					answered.Add(1)
					for k, v := range c.header {
						w.Header().Set(k, v)
					}
					w.Header().Set("Content-Type", c.contentType)
					w.WriteHeader(c.status)
					_, _ = io.WriteString(w, c.body)
					return
				}
				fwd.ServeHTTP(w, r)
			}))
			t.Cleanup(ingress.Close)

			signedInOrRefused := waitFor("the console or a message", `!document.getElementById("app").hidden || document.getElementById("signin-error").textContent !== ""`)
			b.do(t, "sign in through the failing ingress", chromedp.Navigate(ingress.URL+"/"),
				waitFor("the sign-in form", `!document.getElementById("signin").hidden`),
				chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
				signedInOrRefused)
			if answered.Load() == 0 {
				t.Fatal("the ingress answered no sign-in read (the test needs it to)")
			}
			kept := evalJS[string](t, b, `sessionStorage.getItem("paygate.admin.token") ?? ""`)
			state := evalJS[string](t, b, `JSON.stringify([document.getElementById("app").hidden, document.getElementById("signin").hidden])`)
			msg := b.text(t, "#signin-error")
			if kept != "" || state != `[true,false]` || !strings.Contains(msg, "could not be reached") || !strings.Contains(msg, "HTTP "+strconv.Itoa(c.status)) {
				t.Fatalf("after the ingress's %d: token kept %q, [app hidden, sign-in hidden] = %s, message %q; "+
					"want no token kept, the sign-in form, and a message that the admin API could not be reached (HTTP %d)",
					c.status, kept, state, msg, c.status)
			}

			down.Store(false)
			b.do(t, "sign in again", chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
				waitFor("the console", `!document.getElementById("app").hidden`))
			if kept := evalJS[string](t, b, `sessionStorage.getItem("paygate.admin.token") ?? ""`); kept != consoleToken {
				t.Errorf("signed in through the ingress passing the read: token kept %q; want it", kept)
			}
			if f := b.pageFaults(); len(f) > 0 {
				t.Errorf("page faults: %v", f)
			}
			b.do(t, "sign out", chromedp.Click(chromedp.ID("signout")), waitFor("the sign-in form", `!document.getElementById("signin").hidden`))
		})
	}
}
