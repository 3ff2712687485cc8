package proxy

import "net/http"

// MountStats serves GET /admin/api/stats (LLM cost, paid orders and the
// cost per completed transaction, from the ledger) behind the admin token.
// It takes no query parameter, and refuses one (400), as the admin lists
// refuse one they do not take: the figures are this replica's since its
// start, and an accountant's ?day= or ?from=, ignored, got them answered as
// if they were that day's.
func (s *Server) MountStats(mux *http.ServeMux) {
	mux.Handle("GET /admin/api/stats", s.AdminRoute("admin_stats", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.ledger == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "accounting is off"})
			return
		}
		if !AdminQuery(w, r) {
			return
		}
		writeJSON(w, http.StatusOK, s.ledger.Stats())
	})))
}
