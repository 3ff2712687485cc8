package proxy

import "net/http"

// MountStats serves GET /admin/api/stats (LLM cost, paid orders and the
// cost per completed transaction, from the ledger) behind the admin token.
func (s *Server) MountStats(mux *http.ServeMux) {
	mux.Handle("GET /admin/api/stats", s.AdminRoute("admin_stats", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.ledger == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "accounting is off"})
			return
		}
		writeJSON(w, http.StatusOK, s.ledger.Stats())
	})))
}
