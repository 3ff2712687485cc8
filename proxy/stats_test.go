package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tidwall/gjson"
)

// TestStatsRefusesAFilter: GET /admin/api/stats takes no query parameter,
// so one (an accountant's ?day= or ?from=, looking for a day's figures) is
// a 400 naming it, as on the admin lists, not this replica's figures since
// its start answered as if filtered by it.
func TestStatsRefusesAFilter(t *testing.T) {
	cfg := pricedConfig(t, "http://127.0.0.1:1")
	cfg.Admin.Token = auditAdminToken
	s, ledger, _ := ledgerProxy(t, cfg, nil, nil)
	t.Cleanup(ledger.Close)
	mux := http.NewServeMux()
	s.MountStats(mux)
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"", http.StatusOK},
		{"?day=2026-12-01", http.StatusBadRequest},
		{"?from=2026-12-01T00:00:00%2B08:00&to=2026-12-02T00:00:00%2B08:00", http.StatusBadRequest},
		{"?model=gpt-4o", http.StatusBadRequest},
	} {
		t.Run(tc.query, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/admin/api/stats"+tc.query, nil)
			req.Header.Set("Authorization", "Bearer "+auditAdminToken)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("%d %s; want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.code == http.StatusOK {
				if !gjson.Get(rec.Body.String(), "llm_cost").Exists() {
					t.Errorf("no llm_cost in %s", rec.Body)
				}
				return
			}
			if msg := gjson.Get(rec.Body.String(), "error").String(); msg == "" {
				t.Errorf("no error message in %s", rec.Body)
			}
		})
	}
}
