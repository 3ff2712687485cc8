package proxy

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
)

// MountAdminAudit adds the audit routes to the admin listener's mux, behind
// AdminAuth (SPEC 2.5, 7):
//
//	GET    /admin/api/audit/head          the chain head {seq, hash, head: "SEQ:HASH"},
//	                                      the outside record `paygate audit verify --head` takes
//	GET    /admin/api/audit?from=&limit=&text=1
//	                                      records in order, bodies as hashed; without from, the
//	                                      latest page; text=1 adds the kept conversation texts
//	DELETE /admin/api/audit/texts/{user}  erase one user's conversation texts (the chain keeps
//	                                      their hashes and still verifies)
//
// Mount it before MountAdminAPI's catch-all, or on the same mux in any order
// (the more specific patterns win).
func (s *Server) MountAdminAudit(mux *http.ServeMux, st store.Audit) {
	h := func(name string, f http.HandlerFunc) http.Handler { return s.AdminRoute(name, f) }
	a := &adminAudit{s: s, st: st}
	mux.Handle("GET /admin/api/audit/head", h("admin_audit", a.head))
	mux.Handle("GET /admin/api/audit", h("admin_audit", a.list))
	mux.Handle("DELETE /admin/api/audit/texts/{user}", h("admin_audit", a.erase))
}

type adminAudit struct {
	s  *Server
	st store.Audit
}

func (a *adminAudit) head(w http.ResponseWriter, r *http.Request) {
	h, err := a.st.AuditHead(r.Context())
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"seq": h.Seq, "hash": h.Hash, "head": audit.FormatHead(h)})
}

func (a *adminAudit) list(w http.ResponseWriter, r *http.Request) {
	limit, ok := adminLimit(r)
	if !ok {
		adminError(w, http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(store.MaxListLimit))
		return
	}
	q := r.URL.Query()
	texts := q.Get("text") == "1" || q.Get("text") == "true"
	h, err := a.st.AuditHead(r.Context())
	if err != nil {
		a.failed(w, r, err)
		return
	}
	var from uint64
	if v := q.Get("from"); v != "" {
		if from, err = strconv.ParseUint(v, 10, 64); err != nil || from < 1 {
			adminError(w, http.StatusBadRequest, "from must be a record number from 1")
			return
		}
	} else {
		from = 1
		if h.Seq > uint64(limit) {
			from = h.Seq - uint64(limit) + 1
		}
	}
	recs, err := a.st.ReadAudit(r.Context(), from, limit)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	entries := make([]audit.Entry, 0, len(recs))
	for _, rec := range recs {
		e, err := audit.NewEntry(r.Context(), a.st, rec, texts)
		if err != nil {
			a.failed(w, r, err)
			return
		}
		entries = append(entries, e)
	}
	out := map[string]any{"head": map[string]any{"seq": h.Seq, "hash": h.Hash}, "records": entries}
	if n := len(recs); n > 0 && recs[n-1].Seq < h.Seq {
		out["next_from"] = recs[n-1].Seq + 1
	}
	if from > 1 {
		out["prev_from"] = max(1, int64(from)-int64(limit))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *adminAudit) erase(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if user == "" {
		adminError(w, http.StatusBadRequest, "name the user")
		return
	}
	n, err := a.st.EraseAuditText(r.Context(), user)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	a.s.log.Info("audit texts erased", "request_id", reqInfo(r).id, "texts", n)
	writeJSON(w, http.StatusOK, map[string]any{"erased": n})
}

func (a *adminAudit) failed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		adminError(w, http.StatusServiceUnavailable, "the store is unavailable")
		return
	}
	a.s.log.Warn("admin audit API failed", "request_id", reqInfo(r).id, "err", err)
	adminError(w, http.StatusInternalServerError, "internal error")
}
