package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// TestAdminTokenRotation: README (admin.token): the token is read at each
// request and kept in no session, cookie or link, so from the restart
// with a new token the old one is a 401 on the admin API (a console tab
// signed in with it asks again) and the new one is taken.
func TestAdminTokenRotation(t *testing.T) {
	const (
		oldToken = "adm-rotate-old-0123456789"
		newToken = "adm-rotate-new-0123456789"
	)
	db := filepath.Join(t.TempDir(), "paygate.db")
	serve := func(token string) (*app, string) {
		_, a := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+db+`"}
admin: {token: `+token+`}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
`, io.Discard)
		admin := httptest.NewServer(a.adminHandler())
		t.Cleanup(admin.Close)
		return a, admin.URL
	}
	a, url := serve(oldToken)
	if status, _ := httpCall(t, http.MethodGet, url+"/admin/api/orders", "Bearer "+oldToken, ""); status != http.StatusOK {
		t.Fatalf("the old token before the change: %d", status)
	}
	a.close()
	_, url = serve(newToken)
	for token, want := range map[string]int{oldToken: http.StatusUnauthorized, newToken: http.StatusOK} {
		for _, path := range []string{"/admin/api/orders", "/admin/api/approvals"} {
			if status, _ := httpCall(t, http.MethodGet, url+path, "Bearer "+token, ""); status != want {
				t.Errorf("after the change, %s with %s: %d; want %d", path, token, status, want)
			}
		}
	}
	if status, _ := httpCall(t, http.MethodPost, url+"/admin/api/approvals/PG000000000000000000000000/approve", "Bearer "+oldToken, ""); status != http.StatusUnauthorized {
		t.Errorf("a decision with the old token: %d; want 401", status)
	}
}
