package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleSignsInWithATokenOutsideASCII: admin.token may hold any
// character a header can carry, and curl sends its UTF-8 bytes. The
// console put the token into the Authorization header as a JavaScript
// string, which fetch sends one byte per character: a token with a
// letter such as "ü" reached paygate as other bytes than its config's
// UTF-8 and was refused ("That token was refused"), and one with a
// character above U+00FF (Cyrillic, Chinese) was never sent ("paygate did
// not answer"), so an operator whose token works with curl could not sign
// in to the console at all. Typed into the sign-in form, each signs in
// and the console reads the API with it.
func TestConsoleSignsInWithATokenOutsideASCII(t *testing.T) {
	b := newBrowser(t)
	for _, token := range []string{"schlüssel-für-den-admin-3b8e51d0", "管理令牌-пароль-3b8e51d0c2"} {
		t.Run(token, func(t *testing.T) {
			up := newScriptedProvider(t, purchaseScript)
			_, a := paymentApp(t, up.URL, "admin: {token: \""+token+"\"}\n")
			admin := httptest.NewServer(a.adminHandler())
			t.Cleanup(admin.Close)
			// curl's way: the token's UTF-8 bytes.
			req, err := http.NewRequest("GET", admin.URL+"/admin/api/audit/head", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, body := doRead(t, req); resp.StatusCode != http.StatusOK {
				t.Fatalf("the token's UTF-8 in a header: %d %s; want 200", resp.StatusCode, body)
			}
			b.do(t, "sign in", chromedp.Navigate(admin.URL+"/"),
				waitFor("the sign-in form", `!document.getElementById("signin").hidden`),
				chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("signin-submit")),
				waitFor("the console or a refusal", `!document.getElementById("app").hidden || document.getElementById("signin-error").textContent !== ""`))
			if msg := b.text(t, "#signin-error"); msg != "" {
				t.Fatalf("sign-in refused: %q", msg)
			}
			b.do(t, "the summary", waitFor("the audit count", `/^[0-9]+$/.test(document.querySelector("#sum-audit .v")?.textContent ?? "")`))
			if got := evalJS[string](t, b, `document.documentElement.outerHTML`); strings.Contains(got, token) {
				t.Errorf("the token is in the page")
			}
			if f := b.pageFaults(); len(f) > 0 {
				t.Errorf("page faults: %v", f)
			}
			b.do(t, "sign out", chromedp.Click(chromedp.ID("signout")), waitFor("the sign-in form", `!document.getElementById("signin").hidden`))
		})
	}
}
