package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// adminStats is GET /admin/api/stats of a's admin handler, with token.
func adminStats(t *testing.T, a *app, token string) gjson.Result {
	t.Helper()
	admin := httptest.NewServer(a.adminHandler())
	defer admin.Close()
	req, _ := http.NewRequest(http.MethodGet, admin.URL+"/admin/api/stats", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: %d %s", resp.StatusCode, b)
	}
	return gjson.ParseBytes(b)
}

// TestStatsCountsUnansweredTurns: a turn is a chat request that went to the
// providers, answered or not. A payment turn (the bot sent the user) that
// every provider failed counted, while a plain turn (no user) that every
// provider failed did not: the console's turns were a mix of two rules.
func TestStatsCountsUnansweredTurns(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"message":"down","type":"server_error"}}`)
	}))
	defer down.Close()
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
admin: {token: adm-stats-1}
store: {path: "` + t.TempDir() + `/p.db"}
providers:
  - name: only
    base_url: "` + down.URL + `/v1"
    api_key: k1
    prices: {"openai/gpt-4o": {input: "2.50", output: "10.00"}}
models:
  - {name: gpt-4o, targets: [{provider: only, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
	for _, tc := range []struct {
		name, user string
	}{
		{"plain turn", ""},
		{"payment turn", testOpenID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, a := serveConfig(t, src, io.Discard)
			resp := postAs(t, base, e2eClientKey, tc.user, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 || !strings.Contains(string(b), "error") {
				t.Fatalf("chat with every provider down: %d %s; want a 5xx error", resp.StatusCode, b)
			}
			a.ledger.Flush()
			st := adminStats(t, a, "adm-stats-1")
			if got := st.Get("turns").Int(); got != 1 {
				t.Errorf("turns %d; want 1 (the unanswered turn): %s", got, st.Raw)
			}
			if got := st.Get("series.0.turns").Int(); got != 1 {
				t.Errorf("this hour's turns %d; want 1: %s", got, st.Raw)
			}
		})
	}
}
