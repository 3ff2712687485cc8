package proxy

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
)

// TestAdminTokenRefusalsAreLoggedPaced: the admin API answers a wrong
// admin token with a plain 401 and nothing slows a guesser down (the
// token's length is the defence), so a run of guesses is the one thing an
// operator can see of it; it wrote no line at all, only a 401 in
// paygate_requests_total. The first refusal is logged, naming the sender's
// address and the route, and a flood of them costs the log one line per
// interval, not one each (the later line says how many were left out,
// logging.Paced). The right token still passes.
func TestAdminTokenRefusalsAreLoggedPaced(t *testing.T) {
	mux, logs := loggedAdminAPI(t)
	ask := func(token string) int {
		req := httptest.NewRequest(http.MethodGet, "/admin/api/providers", nil)
		req.RemoteAddr = "203.0.113.7:40000"
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	const guesses = 100
	for i := range guesses {
		if code := ask("adm-guess-" + strings.Repeat("x", i)); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d; want 401", i, code)
		}
	}
	var refused []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == "admin token refused" {
			refused = append(refused, rec)
		}
	}
	if len(refused) != 1 {
		t.Fatalf("%d lines say an admin token was refused after %d guesses; want 1 (the first, the rest paced); log:\n%.2000s",
			len(refused), guesses, logs.String())
	}
	if got := refused[0]; got["remote_addr"] != "203.0.113.7:40000" || got["pattern"] != "GET /admin/api/providers" {
		t.Errorf("the refusal's line %v; want its remote_addr and route pattern", got)
	}
	if code := ask(auditAdminToken); code != http.StatusOK {
		t.Errorf("the admin token after the guesses: %d; want 200", code)
	}
}

// loggedAdminAPI mounts the admin API of a paygate whose admin token is
// auditAdminToken and whose log, at debug, is the returned buffer: the
// admin token's refusal tests read what a request to it logged.
func loggedAdminAPI(t *testing.T) (*http.ServeMux, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = auditAdminToken })
	s := newPaygate(t, cfg, Options{Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets())})
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	return mux, logs
}
