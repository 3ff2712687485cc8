package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
)

// MountAdminAudit adds the audit routes to the admin listener's mux, behind
// AdminAuth (SPEC 2.5, 7):
//
//	GET    /admin/api/audit/head          the chain head {seq, hash, head: "SEQ:HASH"},
//	                                      the outside record `paygate audit verify --head` takes;
//	                                      a query parameter is a 400
//	GET    /admin/api/audit?from=&limit=&text=1
//	                                      records in order, bodies as hashed; without from, the
//	                                      latest page; text=1 adds the kept conversation texts
//	                                      (a page ends early past auditPageTextBytes of them);
//	                                      next_from (with limit) is the newer page, prev_from and
//	                                      prev_limit the older one, which ends just before from;
//	                                      another parameter, or one given twice, is a 400
//	DELETE /admin/api/audit/texts/{user}?client=NAME
//	                                      erase one user's conversation texts (the chain keeps
//	                                      their hashes and still verifies); see eraseClients;
//	                                      another parameter, client given twice, a user
//	                                      over maxErasedUserID bytes, or a body a decision
//	                                      refuses is a 400; the erasure is recorded with
//	                                      its actor as a decision is (readDecision)
//
// erase erases (client, user)'s texts and records the erasure in the chain
// (audit.Worker.Erase), so the chain tells an erased text from a deleted
// one. Mount it before MountAdminAPI's catch-all, or on the same mux in any
// order (the more specific patterns win).
func (s *Server) MountAdminAudit(mux *http.ServeMux, st store.Audit, erase func(ctx context.Context, client, user string) (int, error)) {
	h := func(name string, f http.HandlerFunc) http.Handler { return s.AdminRoute(name, f) }
	a := &adminAudit{s: s, st: st, eraseText: erase}
	mux.Handle("GET /admin/api/audit/head", h("admin_audit", a.head))
	mux.Handle("GET /admin/api/audit", h("admin_audit", a.list))
	mux.Handle("DELETE /admin/api/audit/texts/{user}", h("admin_audit", a.erase))
}

type adminAudit struct {
	s         *Server
	st        store.Audit
	eraseText func(ctx context.Context, client, user string) (int, error)
}

func (a *adminAudit) head(w http.ResponseWriter, r *http.Request) {
	if !AdminQuery(w, r) {
		return
	}
	h, err := a.st.AuditHead(r.Context())
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"seq": h.Seq, "hash": h.Hash, "head": audit.FormatHead(h)})
}

func (a *adminAudit) list(w http.ResponseWriter, r *http.Request) {
	// A misspelt or doubled parameter is refused, as by the other admin
	// lists: ?text=yes answered without the texts, and the orders' ?before=
	// cursor the latest page again, each as if asked for.
	if !AdminQuery(w, r, "limit", "from", "text") {
		return
	}
	limit, ok := adminLimit(r)
	if !ok {
		adminError(w, http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(store.MaxListLimit))
		return
	}
	q := r.URL.Query()
	var texts bool
	switch q.Get("text") {
	case "1", "true":
		texts = true
	case "", "0", "false":
	default:
		adminError(w, http.StatusBadRequest, "text must be 1, true, 0 or false")
		return
	}
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
		if from-1 > h.Seq {
			// Past the head's next record: read as that one, an empty page
			// whose older page is the newest records, as for a chain read to
			// its end. The head in the answer says where it ends.
			from = h.Seq + 1
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
	textBytes := 0
	for _, rec := range recs {
		e, err := audit.NewEntry(r.Context(), a.st, rec, texts)
		if err != nil {
			a.failed(w, r, err)
			return
		}
		n := len(e.TextBase64)
		if e.Text != nil {
			n += len(*e.Text)
		}
		if len(entries) > 0 && textBytes+n > auditPageTextBytes {
			break // the rest on the next page (auditPageTextBytes)
		}
		textBytes += n
		entries = append(entries, e)
	}
	out := map[string]any{"head": map[string]any{"seq": h.Seq, "hash": h.Hash}, "records": entries}
	if n := len(entries); n > 0 && (n < len(recs) || entries[n-1].Seq < h.Seq) {
		out["next_from"] = entries[n-1].Seq + 1
	}
	if from > 1 {
		// The older page ends just before from: prev_limit is smaller than
		// limit when fewer records than that are left before it, so the
		// page never repeats one of this page's.
		n := min(uint64(limit), from-1)
		out["prev_from"], out["prev_limit"] = from-n, n
	}
	// The bodies as hashed: writeJSON's HTML escaping would rewrite a '&',
	// '<' or '>' in them, and sha256 of a body served would not be its hash.
	writeJSONAsIs(w, http.StatusOK, out)
}

// eraseClients resolves the client of an erasure. An OpenID is per app, so
// the same user string under two clients is two people: an erasure names
// its client (?client=NAME, a configured client). Without it, the one
// configured client is meant when there is only one (as before clients
// mattered); with several, the request is refused rather than guessed, and
// ?client=* must be asked for explicitly to erase the user under every
// configured client. A client no longer configured (renamed, removed) is
// named as it was: its users' texts stay erasable for as long as they are
// kept, and the answer lists it as unconfigured (a misspelt name erases
// nothing and says so).
func (a *adminAudit) eraseClients(r *http.Request) ([]string, string) {
	var names []string
	// The configured clients, not the keys that act as them: a client
	// with a previous_key (its key's rotation) is one client still.
	for _, c := range a.s.cfg.Clients {
		names = append(names, c.Name)
	}
	known := "the configured clients: " + strings.Join(names, ", ")
	q := r.URL.Query()
	switch c := q.Get("client"); {
	case !q.Has("client") && len(names) == 1:
		return names, ""
	case !q.Has("client"):
		return nil, "name the client: an OpenID is per app, and the same one under another client is another user; " +
			"?client=NAME (" + known + "), or ?client=* for every client"
	case c == "*":
		return names, ""
	case c == "":
		return nil, "name the client: ?client=NAME (" + known + "), or ?client=* for every client"
	default:
		return []string{c}, ""
	}
}

// maxErasedUserID bounds the user an erasure names. It is well above
// maxUserID, which the bots' API has held an end user's id to only since
// recently (earlier versions kept the texts of longer ids, a token or an
// account blob used as the id), and below what the embedded store can key
// with the client and an event's index around it (32 KiB).
const maxErasedUserID = 16 << 10

// maxErasedClient bounds the client an erasure names (?client=), which the
// store keys with the user: far above any client's name, and with
// maxErasedUserID within what the embedded store can key. Unbounded, a
// client pasted in error failed there as an internal error, or wrote the
// erasure's mark and then failed to queue its record.
const maxErasedClient = 1 << 10

func (a *adminAudit) erase(w http.ResponseWriter, r *http.Request) {
	// ?client=a&client=b erased under a alone, answered 200 as if asked;
	// a parameter it does not take (a dry run it has not) erased as well.
	if !AdminQuery(w, r, "client") {
		return
	}
	user := r.PathValue("user")
	if user == "" {
		adminError(w, http.StatusBadRequest, "name the user")
		return
	}
	// A user longer than maxUserID is erased too: the bots' API refuses
	// such an id now, but earlier versions kept its texts, for as long as
	// audit.retain_text, and they must stay erasable. Past maxErasedUserID
	// it is refused, before anything is written: the embedded store cannot
	// key it (the erasure failed as an internal error).
	// Bounded as erased: the user as the records hold it (audit.AsRecorded),
	// where each byte that is not UTF-8 is a U+FFFD of three, past what the
	// embedded store can key for a user within the bound as sent.
	if n := len(audit.AsRecorded(user)); n > maxErasedUserID {
		msg := "the user is " + strconv.Itoa(n) + " bytes"
		if n != len(user) {
			msg += " as the records hold it (each byte that is not UTF-8 a U+FFFD of 3)"
		}
		adminError(w, http.StatusBadRequest, msg+"; an erasure names one of at most "+strconv.Itoa(maxErasedUserID))
		return
	}
	// The client too, as the records hold it (client=* names the
	// configured ones).
	if c := r.URL.Query().Get("client"); c != "*" {
		if n := len(audit.AsRecorded(c)); n > maxErasedClient {
			msg := "the client is " + strconv.Itoa(n) + " bytes"
			if n != len(c) {
				msg += " as the records hold it (each byte that is not UTF-8 a U+FFFD of 3)"
			}
			adminError(w, http.StatusBadRequest, msg+"; an erasure names one of at most "+strconv.Itoa(maxErasedClient))
			return
		}
	}
	clients, msg := a.eraseClients(r)
	if msg != "" {
		adminError(w, http.StatusBadRequest, msg)
		return
	}
	// Recorded with who asked and why, as a decision is: the erasure
	// deletes what the chain's money records were made from, and its
	// record named the user but no request, address or operator.
	d, err := readDecision(w, r)
	if err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	actor := a.s.adminActor(r, d.Operator, d.Reason)
	ctx := payments.WithActor(r.Context(), actor)
	total, by := 0, map[string]int{}
	var unconfigured []string
	for _, c := range clients {
		if !slices.ContainsFunc(a.s.cfg.Clients, func(k config.Client) bool { return k.Name == c }) {
			unconfigured = append(unconfigured, c)
		}
		n, err := a.eraseText(ctx, c, user)
		if err != nil {
			a.failed(w, r, err)
			return
		}
		total += n
		by[c] = n
		a.s.log.Info("audit texts erased", "request_id", actor.RequestID, "client", c, "texts", n,
			"remote_addr", actor.RemoteAddr, "operator", actor.Operator, "reason", actor.Reason)
	}
	out := map[string]any{"erased": total, "clients": by}
	if unconfigured != nil {
		out["unconfigured_clients"] = unconfigured
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *adminAudit) failed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && clientLeft(r) {
		adminError(w, 499, "the client closed the request") // as adminFailed
		return
	}
	if adminDrainEnded(w, r, err) {
		return
	}
	if errors.Is(err, store.ErrDataLost) {
		adminError(w, http.StatusServiceUnavailable, store.DataLostAdvice)
		return
	}
	if errors.Is(err, store.ErrUnavailable) {
		adminError(w, http.StatusServiceUnavailable, "the store is unavailable")
		return
	}
	a.s.log.Warn("admin audit API failed", "request_id", reqInfo(r).id, "err", err)
	adminError(w, http.StatusInternalServerError, "internal error")
}

// auditPageTextBytes bounds the conversation texts of one page of
// GET /admin/api/audit?text=1: the page ends before the record whose text
// would take it past this (a page holds at least one record, whatever its
// text), and next_from names that record. A text is a turn's whole request
// (up to server.max_body_bytes, and more after payment rounds), so a page
// of up to store.MaxListLimit of them, built whole in memory before it is
// written, took gigabytes in the process that serves the bots' payments.
// A variable only so that a test can lower it (the same pages from texts
// of kilobytes, not megabytes).
var auditPageTextBytes = 8 << 20
