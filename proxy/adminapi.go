package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// AdminPayments is what the admin API (SPEC 2.5) needs from payments;
// *payments.Service implements it.
type AdminPayments interface {
	ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error)
	OrderByNumber(ctx context.Context, orderNo string) (*store.Order, error)
	ApprovalsPage(ctx context.Context, p payments.Page) ([]*store.Order, error)
	Approve(ctx context.Context, orderNo string) (*payments.CreateResult, error)
	Reject(ctx context.Context, orderNo string) (*store.Order, error)
	RefundsPage(ctx context.Context, p payments.Page) ([]payments.RefundEntry, error)
	Resolve(ctx context.Context, orderNo string, to store.OrderStatus) (*store.Order, error)
}

var _ AdminPayments = (*payments.Service)(nil)

// MountAdminAPI adds the admin JSON API to the admin listener's mux: orders,
// the approval queue and its decisions, refunds. Every route is behind
// AdminAuth. Errors are {"error": "…"}; a method a known path does not
// serve is a 405 with Allow, an unknown path a 404.
func (s *Server) MountAdminAPI(mux *http.ServeMux) {
	h := func(name string, f http.HandlerFunc) http.Handler { return s.AdminRoute(name, f) }
	if s.adminPay != nil {
		mux.Handle("GET /admin/api/orders", h("admin_orders", s.handleAdminOrders))
		mux.Handle("GET /admin/api/orders/{order_no}", h("admin_orders", s.handleAdminOrder))
		mux.Handle("GET /admin/api/approvals", h("admin_approvals", s.handleAdminApprovals))
		mux.Handle("POST /admin/api/approvals/{order_no}/approve", h("admin_approvals", s.handleAdminDecision(true)))
		mux.Handle("POST /admin/api/approvals/{order_no}/reject", h("admin_approvals", s.handleAdminDecision(false)))
		mux.Handle("GET /admin/api/refunds", h("admin_refunds", s.handleAdminRefunds))
		mux.Handle("POST /admin/api/orders/{order_no}/resolve", h("admin_orders", s.handleAdminResolve))
	}
	if pa, ok := s.up.(ProviderAdmin); ok {
		mux.Handle("GET /admin/api/providers", h("admin_providers", s.handleAdminProviders(pa)))
		mux.Handle("POST /admin/api/providers/{name}/reset", h("admin_providers", s.handleAdminProviderReset(pa)))
	}
	mux.Handle("/admin/api/", h("admin", func(w http.ResponseWriter, r *http.Request) {
		// This catch-all matches every method, so ServeMux never answers
		// its own 405 under /admin/api/: a wrong method on a known path
		// lands here and is told apart from an unknown path by asking the
		// mux which methods the path has (whoever mounted them).
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			adminError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; use "+strings.Join(allow, " or "))
			return
		}
		adminError(w, http.StatusNotFound, "unknown admin endpoint "+r.Method+" "+r.URL.Path)
	}))
}

// ProviderAdmin is what the admin API needs of the upstream router to show
// each provider's live state and to end a cool-down: SPEC 5 puts a provider
// whose account is out of money out of service "until an operator acts or
// a long cool-down ends" (30 minutes), and an operator who fixed the
// billing or the key had no way to act short of a restart. *failover.Router
// implements it.
type ProviderAdmin interface {
	Status() []failover.ProviderStatus
	ResetProvider(name string) error
}

var _ ProviderAdmin = (*failover.Router)(nil)

// adminProvider is a provider's live state as the admin API shows it:
// its own breaker and cool-down, and cooling_targets, the targets of it
// (public model, upstream model) cooling on their own while it serves its
// other models; always an array, empty when none is.
func adminProvider(st failover.ProviderStatus) map[string]any {
	v := map[string]any{"name": st.Name, "breaker": st.Breaker, "cooling_until": nil, "cooling_cause": nil}
	if !st.CoolingUntil.IsZero() {
		v["cooling_until"], v["cooling_cause"] = st.CoolingUntil.UTC().Format(time.RFC3339), st.CoolingCause
	}
	targets := make([]map[string]any, 0, len(st.CoolingTargets))
	for _, t := range st.CoolingTargets {
		targets = append(targets, map[string]any{"model": t.Model, "target": t.Target,
			"cooling_until": t.Until.UTC().Format(time.RFC3339), "cooling_cause": t.Cause})
	}
	v["cooling_targets"] = targets
	lat := make([]map[string]any, 0, len(st.Targets))
	for _, t := range st.Targets {
		lat = append(lat, map[string]any{"model": t.Model, "target": t.Target,
			"stream_latency_ms": latencyMS(t.Stream, t.StreamAt), "stream_measured_at": measuredAt(t.StreamAt),
			"latency_ms": latencyMS(t.Whole, t.WholeAt), "measured_at": measuredAt(t.WholeAt)})
	}
	v["targets"] = lat
	return v
}

// latencyMS is a measured latency in milliseconds (fractional), null when
// never measured.
func latencyMS(d time.Duration, at time.Time) any {
	if at.IsZero() {
		return nil
	}
	return float64(d) / float64(time.Millisecond)
}

// measuredAt is when a latency was last measured, null when never.
func measuredAt(at time.Time) any {
	if at.IsZero() {
		return nil
	}
	return at.UTC().Format(time.RFC3339Nano)
}

// handleAdminProviders lists the providers in config order with their
// breaker state and cool-down: {"providers": […]}.
func (s *Server) handleAdminProviders(pa ProviderAdmin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !AdminQuery(w, r) { // a ?name= filters nothing
			return
		}
		out := []map[string]any{}
		for _, st := range pa.Status() {
			out = append(out, adminProvider(st))
		}
		writeJSON(w, http.StatusOK, map[string]any{"providers": out})
	}
}

// handleAdminProviderReset ends a provider's cool-down (out of quota, a
// refused key, a rate limit) at once: {"provider": {…}} as it now stands;
// 404 for a name the config has no provider of. Only this replica's: each
// keeps its own cool-downs (failover.Router), which the README says, so an
// operator of several replicas resets each rather than finding the model
// still refused behind the load balancer.
func (s *Server) handleAdminProviderReset(pa ProviderAdmin) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !AdminQuery(w, r) { // a ?dry_run=1 resets nothing, for real or not
			return
		}
		name := r.PathValue("name")
		err := pa.ResetProvider(name)
		// At warn, as the breaker's transitions: the cool-down it ends was
		// logged as an error ("out of service until reset or cool-down
		// end"), and under log.level warn the log said the provider went
		// out of service and never that an operator brought it back.
		level := slog.LevelWarn
		if err != nil {
			level = slog.LevelInfo
		}
		s.log.Log(r.Context(), level, "admin provider reset", "request_id", reqInfo(r).id, "provider", name, "ok", err == nil, "remote_addr", r.RemoteAddr)
		if errors.Is(err, failover.ErrUnknownProvider) {
			adminError(w, http.StatusNotFound, "no provider named "+strconv.Quote(name))
			return
		}
		if err != nil {
			adminError(w, http.StatusInternalServerError, "resetting provider "+strconv.Quote(name)+" failed")
			return
		}
		for _, st := range pa.Status() {
			if st.Name == name {
				writeJSON(w, http.StatusOK, map[string]any{"provider": adminProvider(st)})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"provider": map[string]any{"name": name}})
	}
}

// probeMethods are the methods allowedMethods asks the mux about.
var probeMethods = []string{
	http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
	http.MethodPatch, http.MethodPost, http.MethodPut,
}

// allowedMethods lists, sorted as ServeMux's own Allow is, the methods that
// reach a handler other than the "/admin/api/" catch-all for r's path; none
// for an unknown path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range probeMethods {
		probe := &http.Request{Method: m, Host: r.Host, URL: r.URL}
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/admin/api/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// AdminRoute is how every admin API route is served: behind AdminAuth, with
// the request id (X-Request-Id) and counted in paygate_requests_total under
// name (admin_orders, admin_audit, …), whoever mounts it.
func (s *Server) AdminRoute(name string, h http.Handler) http.Handler {
	return s.Route(name, s.AdminAuth(h))
}

// Route serves h with what every answer of the API carries: a request id
// (X-Request-Id, and in the request's context for the logs), and a count
// and duration in paygate_requests_total and
// paygate_request_duration_seconds under name. It is for a handler mounted
// outside this package, such as the admin listener's CSRF refusal.
func (s *Server) Route(name string, h http.Handler) http.Handler { return s.route(name, h.ServeHTTP) }

// AdminDisabled is the code of the admin API's answer while admin.token is
// empty: 503 {"error": "the admin API is off: …", "code": "admin_disabled"},
// whatever the request carries, so the console (and a script) can tell an
// operator to set the token rather than that theirs was refused.
const AdminDisabled = "admin_disabled"

// AdminAuth lets a request through only with "Authorization: Bearer
// <admin.token>", compared in constant time (of digests, so the length of the
// token leaks nothing either). An empty admin.token refuses every request
// with AdminDisabled: the admin API is off until an operator sets one.
func (s *Server) AdminAuth(h http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.Admin.Token))
	if s.cfg.Admin.Token == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"code": AdminDisabled,
				"error": "the admin API is off: set admin.token in the config paygate was started with and restart it (the repository's config.yaml reads it from PAYGATE_ADMIN_TOKEN; the built-in default, an empty config, has none)"})
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			if ok {
				// A token sent and refused: a guess, or a changed
				// token. None sent (the console's sign-in page asks
				// without one) guesses nothing.
				s.logAdminRefusal(r)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="paygate admin"`)
			adminError(w, http.StatusUnauthorized, "a valid admin token is required (Authorization: Bearer <admin.token>)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// adminRefusalLogEvery is how often a refused admin token is logged at
// most. Nothing slows a guesser down (the token's length is the defence),
// so the refusals are what an operator can see of one, yet each costs its
// sender nothing: the first is logged at once, a run of them one line per
// interval, the next saying how many were left out since (suppressed).
const adminRefusalLogEvery = 10 * time.Second

// logAdminRefusal logs a request AdminAuth refused for the token it sent
// (one that sent none is not logged), paced
// (adminRefusalLogEvery): its sender's address and the route it asked for
// (the mux's pattern, paygate's words, never the sender's path). The token
// it sent is never named.
func (s *Server) logAdminRefusal(r *http.Request) {
	attrs := []any{"remote_addr", r.RemoteAddr, "pattern", r.Pattern}
	if rc := reqInfo(r); rc != nil {
		attrs = append(attrs, "request_id", rc.id)
	}
	s.adminRefusals.Log(r.Context(), s.log, slog.LevelWarn, "admin_token", time.Now(), "admin token refused", attrs...)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// adminOrder is an order as an operator sees it: the SPEC 2.3 object plus
// who it belongs to and WeChat Pay's references.
func adminOrder(o *store.Order) map[string]any {
	v := payments.OrderView(o)
	v["client"], v["user"], v["app_id"] = o.Client, o.User, o.AppID
	v["transaction_id"], v["review_reason"] = o.TransactionID, o.ReviewReason
	v["updated_at"] = o.UpdatedAt.UTC().Format(time.RFC3339)
	return v
}

func adminOrders(orders []*store.Order) []map[string]any {
	out := make([]map[string]any, 0, len(orders))
	for _, o := range orders {
		out = append(out, adminOrder(o))
	}
	return out
}

// adminLimit reads ?limit= (1..store.MaxListLimit, default
// store.DefaultListLimit).
func adminLimit(r *http.Request) (int, bool) {
	q := r.URL.Query().Get("limit")
	if q == "" {
		return store.DefaultListLimit, true
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > store.MaxListLimit {
		return 0, false
	}
	return n, true
}

// handleAdminOrders lists orders, newest first (orders of one instant by
// number, descending). Filters: status, user (with client, or across every
// configured client and the orders recorded without one: orphan payments,
// kept under the payer's OpenID), client, limit, and before: the
// next_before of the previous page, or an RFC 3339 time. created_at is
// shown to the second, so paging by it would skip the rest of that second's
// orders; next_before names the last order exactly (its creation time to
// the nanosecond and its number) and is null when the page was not full.
func (s *Server) handleAdminOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, ok := adminPage(w, r, "status", "user", "client")
	if !ok {
		return
	}
	limit := p.Limit
	f := store.OrderFilter{Client: q.Get("client"), User: q.Get("user"), Status: store.OrderStatus(q.Get("status")),
		Limit: limit, Before: p.Before, BeforeOrderNo: p.BeforeOrderNo}
	if f.Status != "" && !f.Status.Valid() {
		adminError(w, http.StatusBadRequest, "unknown status "+strconv.Quote(string(f.Status)))
		return
	}
	filters := []store.OrderFilter{f}
	if f.User != "" && f.Client == "" {
		// A user's orders are indexed per client: ask each one, and for the
		// payments WeChat Pay reported for orders paygate did not know
		// (recorded with no client, under the payer's OpenID).
		filters = filters[:0]
		for _, c := range s.cfg.Clients {
			g := f
			g.Client = c.Name
			filters = append(filters, g)
		}
		g := f
		g.NoClient = true
		filters = append(filters, g)
	}
	var all []*store.Order
	for _, g := range filters {
		got, err := s.adminPay.ListOrders(r.Context(), g)
		if err != nil {
			s.adminFailed(w, r, err)
			return
		}
		all = append(all, got...)
	}
	store.SortListed(all)
	if len(all) > limit {
		all = all[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": adminOrders(all), "next_before": nextBefore(all, limit)})
}

// handleAdminOrder answers one order by its number, {"order": {…}} as the
// lists show it; 404 for a number no order has. The lists are newest first
// and paged, so without it an operator holding the number a customer quotes
// had to page back through every newer order to find an old one.
func (s *Server) handleAdminOrder(w http.ResponseWriter, r *http.Request) {
	if !AdminQuery(w, r) {
		return
	}
	o, err := s.adminPay.OrderByNumber(r.Context(), r.PathValue("order_no"))
	if err != nil {
		s.adminFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"order": adminOrder(o)})
}

// orderCursor is the admin order list's next_before after o: its creation
// time to the nanosecond, a comma (never in an RFC 3339 time), and its
// number, which orders the orders of one instant.
func orderCursor(o *store.Order) string {
	return o.CreatedAt.UTC().Format(time.RFC3339Nano) + "," + o.OrderNo
}

// parseOrderCursor reads ?before=: an orderCursor, or a bare RFC 3339 time
// (strictly before it; no order number). A space where a time's offset
// begins is the '+' of a positive offset: a query string carries an
// unescaped '+' as a space, so ?before=2026-12-02T00:00:00+08:00, midnight
// in Beijing as an operator types it in a browser or curl, was refused as
// no RFC 3339 time.
func parseOrderCursor(s string) (time.Time, string, error) {
	ts, no, _ := strings.Cut(s, ",")
	if n := len(ts); n > 6 && ts[n-6] == ' ' {
		ts = ts[:n-6] + "+" + ts[n-5:]
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", err
	}
	return t, no, nil
}

// AdminQuery refuses (400, false) a query parameter other than takes, or
// one given twice, so that an admin list never answers as if a misspelt or
// doubled parameter were absent, nor a route that changes something does it
// for real when asked with one it does not have (?dry_run=1). Every admin
// route reads its query through it, whoever mounts it (the simulator's
// steps are mounted by the binary). A query that does not parse (a ";",
// a bad escape) is refused too: URL.Query drops what it cannot read, so
// …/pay?dry_run=1; read as no parameter and paid the order.
func AdminQuery(w http.ResponseWriter, r *http.Request, takes ...string) bool {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		adminError(w, http.StatusBadRequest, "the query does not parse: "+err.Error())
		return false
	}
	for k, vs := range q {
		switch {
		case !slices.Contains(takes, k):
			these := "none"
			if len(takes) > 0 {
				these = strings.Join(takes, ", ")
			}
			adminError(w, http.StatusBadRequest, "unknown query parameter "+strconv.Quote(k)+"; "+r.URL.Path+" takes "+these)
			return false
		case len(vs) > 1:
			adminError(w, http.StatusBadRequest, strconv.Quote(k)+" is given more than once")
			return false
		}
	}
	return true
}

// adminPage reads the ?limit= and ?before= of a paged admin list, the same
// for each; false after answering 400. A parameter other than those and
// filters (the list's own, which its handler reads), or one given twice, is
// refused: a list that ignored a misspelt ?satus=needs_review, or read only
// the first of two statuses, answered as if filtered, and an operator read
// "nothing needs review" off every order there is.
func adminPage(w http.ResponseWriter, r *http.Request, filters ...string) (payments.Page, bool) {
	if !AdminQuery(w, r, append([]string{"limit", "before"}, filters...)...) {
		return payments.Page{}, false
	}
	limit, ok := adminLimit(r)
	if !ok {
		adminError(w, http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(store.MaxListLimit))
		return payments.Page{}, false
	}
	p := payments.Page{Limit: limit}
	if b := r.URL.Query().Get("before"); b != "" {
		t, no, err := parseOrderCursor(b)
		if err != nil {
			adminError(w, http.StatusBadRequest, "before must be a next_before cursor or an RFC 3339 time")
			return payments.Page{}, false
		}
		if t.IsZero() {
			// The store's "no cursor": listed, the newest page answered
			// for the orders before the beginning of time.
			adminError(w, http.StatusBadRequest, "before must be later than 0001-01-01T00:00:00Z, before which no order was created")
			return payments.Page{}, false
		}
		p.Before, p.BeforeOrderNo = t, no
	}
	return p, true
}

// nextBefore is a page's next_before, the order list's cursor (orderCursor)
// after its last order, or null (nil) when the page was not full: there is
// no more.
func nextBefore(page []*store.Order, limit int) any {
	if len(page) == 0 || len(page) < limit {
		return nil
	}
	return orderCursor(page[len(page)-1])
}

// handleAdminApprovals lists the orders waiting for a manager, newest first,
// paged as the orders are (limit, before, next_before): the oldest, the
// nearest their approval deadline, are on the last page.
func (s *Server) handleAdminApprovals(w http.ResponseWriter, r *http.Request) {
	p, ok := adminPage(w, r)
	if !ok {
		return
	}
	orders, err := s.adminPay.ApprovalsPage(r.Context(), p)
	if err != nil {
		s.adminFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": adminOrders(orders), "next_before": nextBefore(orders, p.Limit)})
}

// Bounds of a decision's optional body: the operator's name and the reason,
// in characters, and the body itself (room for both, escaped).
const (
	maxOperatorLen  = 128
	maxReasonLen    = 1000
	maxDecisionBody = 16 << 10
)

// decision is the optional JSON body of a decision: who decided and why.
type decision struct {
	Operator string `json:"operator"`
	Reason   string `json:"reason"`
}

// readDecision reads a decision's optional body: none (or only white
// space), or one JSON object with at most "operator" and "reason", strings
// (null: not given) within their bounds, the operator's name on one line.
// An unknown member is refused rather than ignored, so a misspelt "reason"
// is not recorded as no reason.
func readDecision(w http.ResponseWriter, r *http.Request) (decision, error) {
	var d decision
	err := readAdminBody(w, r, &d, `{"operator": "…", "reason": "…"}, both optional strings`)
	if err != nil {
		return d, err
	}
	return d, d.check()
}

// AdminActor serves h, an admin route mounted outside this package that
// the audit records (the webhook resend), with the operator's
// payments.Actor on the request's context, as a decision's: the request's
// id and remote address, and the operator's name and reason from the
// optional body (readDecision: a body a decision refuses is a 400 here
// too, and h is not called), masked of the config's secrets.
func (s *Server) AdminActor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := readDecision(w, r)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		actor := s.adminActor(r, d.Operator, d.Reason)
		h.ServeHTTP(w, r.WithContext(payments.WithActor(r.Context(), actor)))
	})
}

// adminActor is the payments.Actor of admin request r, which the audit
// chain records: the request's id and remote address, and the operator's
// name and reason from its body, masked of the config's secrets as its log
// line is (actorRedact). Masked as text for a bot is, only of secrets of
// logging.ClientMinSecret bytes or more, a shorter one (a Redis password,
// an admin token on a loopback listener) pasted into a reason was masked
// in the log and kept whole in the chain.
func (s *Server) adminActor(r *http.Request, operator, reason string) *payments.Actor {
	return &payments.Actor{Kind: payments.ActorAdmin, RequestID: reqInfo(r).id, RemoteAddr: r.RemoteAddr,
		Operator: s.actorRedact.String(operator), Reason: s.actorRedact.String(reason)}
}

// readAdminBody reads an admin mutation's optional JSON body into v (left
// as it is when the body is empty or only white space): one object with no
// member v does not name, and each it names once and spelled exactly
// (exactMembers; shape describes it in the error).
func readAdminBody(w http.ResponseWriter, r *http.Request, v any, shape string) error {
	b, err := readLimited(w, r, maxDecisionBody)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fmt.Errorf("the body is larger than %d bytes", maxDecisionBody)
		}
		return fmt.Errorf("read the body: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("data after the object")
		}
	}
	if err == nil {
		err = exactMembers(string(b), v)
	}
	if err != nil {
		return fmt.Errorf("the body must be a JSON object %s: %w", shape, err)
	}
	return nil
}

// exactMembers refuses a member of the JSON object s (valid JSON, decoded
// into v) that is not spelled exactly as one of v's json names, or that
// comes twice. encoding/json matches a name in any case (and "ſ" as "s")
// and keeps the last of a member named twice, where another reader of the
// same request (a proxy's log, a first-wins parser, the operator reading
// their own script) sees another value: the audit chain would keep for
// good a reason or an outcome nobody else read.
func exactMembers(s string, v any) error {
	names := jsonNames(reflect.TypeOf(v).Elem())
	seen := make(map[string]bool, len(names))
	for i := jsonscan.SkipSpace(s, 0) + 1; ; {
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			return nil
		}
		k := jsonscan.KeyName(m.Key)
		switch {
		case !slices.Contains(names, k):
			return fmt.Errorf("unknown member %s (the names are exact: %s)", strconv.Quote(k), strings.Join(names, ", "))
		case seen[k]:
			return fmt.Errorf("%s is given more than once", strconv.Quote(k))
		}
		seen[k] = true
		i = m.End
	}
}

// jsonNames lists the json names of struct type t's fields, those of its
// embedded structs included.
func jsonNames(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, jsonNames(f.Type)...)
		case name != "":
			out = append(out, name)
		case f.IsExported():
			out = append(out, f.Name)
		}
	}
	return out
}

// check refuses an operator's name or reason out of bounds, once the
// reason's Windows line breaks ("\r\n", a reason pasted from a Windows
// file) are read as the line breaks the reason may hold.
// An operator's name is one line: a line or paragraph separator (U+2028,
// U+2029), which is no control character, breaks it as "\n" does, and is
// refused as in a catalog name (descriptionText).
func (d *decision) check() error {
	d.Reason = strings.ReplaceAll(d.Reason, "\r\n", "\n")
	switch {
	case utf8.RuneCountInString(d.Operator) > maxOperatorLen:
		return fmt.Errorf("operator is longer than %d characters", maxOperatorLen)
	case strings.ContainsFunc(d.Operator, func(c rune) bool { return unicode.IsControl(c) || c == '\u2028' || c == '\u2029' }):
		return errors.New("operator must be one line without control characters")
	case utf8.RuneCountInString(d.Reason) > maxReasonLen:
		return fmt.Errorf("reason is longer than %d characters", maxReasonLen)
	case strings.ContainsFunc(d.Reason, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }):
		return errors.New("reason must not contain control characters other than line breaks and tabs")
	}
	return nil
}

// resolution is the JSON body of a resolution of an order in review: what
// it is settled as, who decided and why (required: the audit chain keeps
// why a person overrode WeChat Pay's disagreement).
type resolution struct {
	Status string `json:"status"`
	decision
}

// handleAdminResolve takes an order out of needs_review, which nothing else
// leaves: {"status": "paid"|"closed", "reason": "…", "operator": "…"}
// (payments.Resolve says when each is allowed). Answers {"order": {…}} as
// it now is; 409 with the order as it stands when it is not in review (a
// retry of a resolution made) or cannot be settled so.
func (s *Server) handleAdminResolve(w http.ResponseWriter, r *http.Request) {
	if !AdminQuery(w, r) { // see handleAdminDecision
		return
	}
	no := r.PathValue("order_no")
	var res resolution
	err := readAdminBody(w, r, &res, `{"status": "paid" or "closed", "reason": "…", "operator": "…"}`)
	if err == nil {
		err = res.check()
	}
	if err == nil && res.Status != string(store.StatusPaid) && res.Status != string(store.StatusClosed) {
		err = errors.New(`status must be "paid" (WeChat Pay's payment is good: the merchant delivers) or "closed" (nothing to deliver)`)
	}
	if err == nil && strings.TrimSpace(res.Reason) == "" {
		err = errors.New("reason is required: the audit records why the order left review")
	}
	if err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	actor := s.adminActor(r, res.Operator, res.Reason)
	o, err := s.adminPay.Resolve(payments.WithActor(r.Context(), actor), no, store.OrderStatus(res.Status))
	s.log.Info("admin resolve", "request_id", actor.RequestID, "order_no", no, "status", res.Status, "ok", err == nil,
		"remote_addr", actor.RemoteAddr, "operator", actor.Operator, "reason", actor.Reason)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"order": adminOrder(o)})
	case (errors.Is(err, payments.ErrNotInReview) || errors.Is(err, payments.ErrCannotResolve)) && o != nil:
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "order": adminOrder(o)})
	default:
		s.adminFailed(w, r, err)
	}
}

// handleAdminDecision approves (prepaying at once) or rejects an order
// waiting for a manager. The decision is audited with who made it and why
// (payments.Actor): the request's id and remote address, and the operator's
// name and reason from the optional body (readDecision), masked of the
// config's secrets as the log is, since the chain keeps them for good. An
// approval made whose prepay's outcome is not known or not recorded is
// answered with the order as it stands and an error that begins
// "approved, but ": 502 when WeChat Pay did not open it (yet) ("approved,
// but WeChat Pay refused the order, and its close was not recorded: " when
// it refused it for good and the order is still creating; a 503 with
// store.DataLostAdvice in parentheses before the colon when the store that
// failed to record the close lost its data), 503 or 500
// when the store failed to record WeChat Pay's answer (a store that lost
// its data told with store.DataLostAdvice, as adminFailed tells it).
func (s *Server) handleAdminDecision(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// It takes no query parameter, and one is a 400 that decides
		// nothing, as a member of the body it does not take is: an
		// operator and reason given as ?operator=&reason= were ignored, and
		// the order decided for good, audited with neither (and a
		// ?dry_run=1 decided it for real).
		if !AdminQuery(w, r) {
			return
		}
		no := r.PathValue("order_no")
		d, err := readDecision(w, r)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		actor := s.adminActor(r, d.Operator, d.Reason)
		ctx := payments.WithActor(r.Context(), actor)
		var o *store.Order
		if approve {
			// Waited for unless the drain's deadline comes first: the
			// prepay is detached from the request (payments' detached),
			// and a slow WeChat Pay held the answer until the whole
			// shutdown_timeout had passed and the connection was closed
			// under it.
			type approval struct {
				res *payments.CreateResult
				err error
			}
			a, cut := unlessCut(r, s.log, "approval", []any{"request_id", actor.RequestID, "order_no", no}, func() approval {
				res, err := s.adminPay.Approve(ctx, no)
				return approval{res, err}
			})
			if cut {
				s.approvalCut(w, r, no, actor)
				return
			}
			err = a.err
			if a.res != nil {
				o = a.res.Order
			}
		} else {
			o, err = s.adminPay.Reject(ctx, no)
		}
		s.log.Info("admin decision", "request_id", actor.RequestID, "order_no", no, "approve", approve, "ok", err == nil,
			"remote_addr", actor.RemoteAddr, "operator", actor.Operator, "reason", actor.Reason)
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, map[string]any{"order": adminOrder(o)})
		case errors.Is(err, payments.ErrPaymentUnavailable), errors.Is(err, payments.ErrPrepayRejected):
			// Approved, but WeChat Pay did not open it (yet): say so with the
			// order as it stands (creating: the reconciler retries; closed).
			// Refused for good with the order still creating, its close was
			// not recorded: said apart, for the reconciler closes it (if
			// WeChat Pay refuses it again) rather than waiting for it to open.
			// A store that lost its data refuses the reconciler's commands
			// too until the replicas restart: told as adminFailed tells it.
			status, what := http.StatusBadGateway, "approved, but WeChat Pay did not open the order: "
			if errors.Is(err, payments.ErrPrepayRejected) && o != nil && o.Status == store.StatusCreating {
				what = "approved, but WeChat Pay refused the order, and its close was not recorded: "
				if errors.Is(err, store.ErrDataLost) {
					status, what = http.StatusServiceUnavailable, "approved, but WeChat Pay refused the order, and its close was not recorded ("+store.DataLostAdvice+"): "
				}
			}
			body := map[string]any{"error": s.redact.String(what + err.Error())}
			if o != nil {
				body["order"] = adminOrder(o)
			}
			writeJSON(w, status, body)
		case errors.Is(err, payments.ErrNotAwaitingApproval) && o != nil:
			// Decided already (a double click, a retry after a lost answer,
			// another manager) or expired: 409 with the order as it now
			// stands, so the caller learns the outcome rather than only
			// that this attempt was refused.
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "order": adminOrder(o)})
		case approve && o != nil:
			// Approved (Approve returns an order with any other error
			// only once its decision is committed), and WeChat Pay asked,
			// but its answer was not recorded (the store failed): the
			// order stays creating for the reconciler. Said as a plain
			// failure, the manager read "could not approve" of an order
			// that left the queue approved.
			// A store that lost its data is told as adminFailed tells it:
			// it refuses every command, the reconciler's too, until the
			// replicas restart, so "unavailable" and "the reconciler asks"
			// sent the operator to the network and to waiting.
			status, msg := http.StatusInternalServerError, "(the store failed): paygate's reconciler asks WeChat Pay about the order"
			switch {
			case errors.Is(err, store.ErrDataLost):
				status, msg = http.StatusServiceUnavailable, "("+store.DataLostAdvice+")"
			case errors.Is(err, store.ErrUnavailable):
				status, msg = http.StatusServiceUnavailable, "(the store is unavailable): paygate's reconciler asks WeChat Pay about the order"
			}
			s.log.Warn("admin approval made, its prepay not recorded", "request_id", reqInfo(r).id, "order_no", no, "err", err)
			writeJSON(w, status, map[string]any{"error": "approved, but WeChat Pay's answer was not recorded " + msg, "order": adminOrder(o)})
		default:
			s.adminFailed(w, r, err)
		}
	}
}

// adminShutdown is the code of the admin API's answer to a request the
// drain's deadline (server.shutdown_timeout, ErrShuttingDown) ended before
// it was done: 503 {"error": "…", "code": "server_shutdown"}, the code a
// bot's request so ended gets; the error begins adminCut, or says an
// approval was made first ("approved, but " adminCut…, approvalCut).
const (
	adminShutdown = "server_shutdown"
	adminCut      = "paygate is shutting down (server.shutdown_timeout passed)"
)

// adminDrainEnded answers a request whose call err the drain's deadline
// ended (ErrShuttingDown; the Redis driver passes the cancel on as it is),
// and reports whether it did: nothing failed, and the operator is told so,
// as a bot is, where it was a 500 "internal error" logged as a failure.
// The request may be sent again at once, to a replica still serving or to
// this one restarted.
func adminDrainEnded(w http.ResponseWriter, r *http.Request, err error) bool {
	if !drainEnded(r, err) {
		return false
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"code": adminShutdown,
		"error": adminCut + " and did not finish this request; send it again"})
	return true
}

// approvalCut answers a manager's approval still running when the drain's
// deadline came (unlessCut): it runs on while the process lasts, and the
// operator is told what is known of it, from the order as it stands (read
// apart from the request, which is over), with the order. Creating, the
// approval is recorded and WeChat Pay not yet heard: paygate records its
// answer if it comes before the process exits, and otherwise the
// reconciler settles the order after the restart (it asks WeChat Pay, and
// prepays again under the same number, which WeChat Pay takes as the same
// order). Still approval_required (or unread), the approval is not known
// to be recorded, and may be while the process lasts: a second approval
// after the restart either makes it or is told it was made (409). The
// error begins "approved, but " when the order shows it was (creating, or
// a status only an approval leads to: approvedBefore), and only then, as
// the other answers of an approval made do.
func (s *Server) approvalCut(w http.ResponseWriter, r *http.Request, no string, actor *payments.Actor) {
	// Read within half of what the drain keeps back for the answers
	// (CutReserve), the rest left for the answer's write: unbounded, a
	// store that stopped answering (a stalled Redis, whose driver waits
	// 3 s a read) held it until the connection was closed under it at the
	// whole shutdown_timeout. Unread, the approval is not known to be
	// recorded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), CutReserve(s.cfg.Server.ShutdownTimeout.D())/2)
	defer cancel()
	o, err := s.adminPay.OrderByNumber(ctx, no)
	if err != nil {
		o = nil
	}
	var msg string
	switch {
	case o != nil && o.Status == store.StatusCreating:
		msg = "approved, but " + adminCut + " before WeChat Pay answered the order's prepay: paygate records the answer if it comes before the process exits; otherwise the order stays creating, and paygate's reconciler asks WeChat Pay about it after the restart"
	case o == nil || o.Status == store.StatusApprovalRequired:
		msg = adminCut + " before this approval was known to be recorded; it may still be before the process exits: read the order after the restart, and approve it again if it still awaits approval"
	case approvedBefore(o.Status):
		// Past creating (its prepay answered between the cut and the
		// read): approved. Said without "approved, but ", the console
		// read "Could not approve" of an order that left the queue
		// approved.
		msg = "approved, but " + adminCut + " before this approval's answer; the order is " + string(o.Status) + " now"
	default:
		msg = adminCut + " before this approval's answer; the order is " + string(o.Status) + " now"
	}
	s.log.Warn("admin approval still running at the drain deadline; answered without its outcome", "request_id", actor.RequestID,
		"order_no", no, "status", orderStatus(o), "remote_addr", actor.RemoteAddr, "operator", actor.Operator, "reason", actor.Reason)
	body := map[string]any{"error": msg, "code": adminShutdown}
	if o != nil {
		body["order"] = adminOrder(o)
	}
	writeJSON(w, http.StatusServiceUnavailable, body)
}

// approvedBefore reports whether an order that awaited approval and now
// has status st was approved: every status it can reach but through
// creating (rejected, expired, needs_review; approval_required itself)
// says nothing of an approval, and every other comes after one.
func approvedBefore(st store.OrderStatus) bool {
	switch st {
	case store.StatusApprovalRequired, store.StatusRejected, store.StatusExpired, store.StatusNeedsReview:
		return false
	}
	return true
}

// orderStatus is o's status, "" for none.
func orderStatus(o *store.Order) store.OrderStatus {
	if o == nil {
		return ""
	}
	return o.Status
}

// handleAdminRefunds lists the orders with a refund, newest first, each with
// its refund in flight, paged as the orders are (limit, before,
// next_before): a refund still in flight behind newer finished ones is on a
// later page.
func (s *Server) handleAdminRefunds(w http.ResponseWriter, r *http.Request) {
	p, ok := adminPage(w, r)
	if !ok {
		return
	}
	entries, err := s.adminPay.RefundsPage(r.Context(), p)
	if err != nil {
		s.adminFailed(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(entries))
	orders := make([]*store.Order, 0, len(entries))
	for _, e := range entries {
		orders = append(orders, e.Order)
		v := map[string]any{"order": adminOrder(e.Order), "in_flight": nil}
		if p := e.InFlight; p != nil {
			v["in_flight"] = map[string]any{
				"refund_id": p.RefundID, "out_refund_no": p.OutRefundNo, "amount_fen": p.AmountFen,
				"reason": p.Reason, "confirmed_at": e.ConfirmedAt.UTC().Format(time.RFC3339),
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"refunds": out, "next_before": nextBefore(orders, p.Limit)})
}

// adminFailed maps a payments error to an admin JSON error.
func (s *Server) adminFailed(w http.ResponseWriter, r *http.Request, err error) {
	if adminDrainEnded(w, r, err) {
		return
	}
	switch {
	case errors.Is(err, context.Canceled) && clientLeft(r):
		// The operator's console or script went away, which ended the
		// call (the Redis driver passes the cancel on as it is): nothing
		// failed. 499 is for the metrics only, as a chat turn's.
		adminError(w, 499, "the client closed the request")
	case errors.Is(err, store.ErrNotFound):
		adminError(w, http.StatusNotFound, "no such order")
	case errors.Is(err, payments.ErrNotAwaitingApproval):
		adminError(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrDataLost):
		adminError(w, http.StatusServiceUnavailable, store.DataLostAdvice)
	case errors.Is(err, store.ErrUnavailable):
		adminError(w, http.StatusServiceUnavailable, "the store is unavailable")
	default:
		s.log.Warn("admin API failed", "request_id", reqInfo(r).id, "err", err)
		adminError(w, http.StatusInternalServerError, "internal error")
	}
}
