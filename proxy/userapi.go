package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// UserPayments is what the user API (SPEC 2.2: the user's orders, the answer
// to a refund proposal) needs from payments; *payments.Service implements it.
// Every call is scoped to the client key and the end user.
type UserPayments interface {
	UserOrders(ctx context.Context, client, user, after string, limit int) ([]*store.Order, bool, error)
	Order(ctx context.Context, client, user, orderNo string) (*store.Order, error)
	PayableParams(ctx context.Context, o *store.Order) (*wechatpay.RequestPayment, string, error)
	ConfirmRefund(ctx context.Context, client, user, refundID string) (*payments.RefundResult, error)
	CancelRefund(ctx context.Context, client, user, refundID string) (*store.RefundProposal, error)
	OpenRefunds(ctx context.Context, client, user string) ([]*store.RefundProposal, error)
	UnsentRefunds(ctx context.Context, orders []*store.Order) []*store.Order
	Confirmable(o *store.Order, p *store.RefundProposal) bool
}

var _ UserPayments = (*payments.Service)(nil)

// User API limits of GET /v1/paygate/orders.
const (
	defaultOrdersLimit = 20
	maxOrdersLimit     = 100
	maxUserBody        = 4 << 10 // a confirm body carries at most {"user": …}
)

// mountUserAPI adds the user's order list and the refund answers. Everything
// under /v1/paygate/ is paygate's own: an unknown path there is a 404, never
// forwarded to a provider.
func (s *Server) mountUserAPI(mux *http.ServeMux) {
	if s.userPay != nil {
		mux.Handle("GET /v1/paygate/orders", s.route("orders", s.authed(s.handleOrders)))
		mux.Handle("GET /v1/paygate/orders/{order_no}", s.route("orders", s.authed(s.handleOrder)))
		mux.Handle("POST /v1/paygate/refunds/{refund_id}/confirm", s.route("refunds", s.authed(s.handleRefundAnswer(true))))
		mux.Handle("POST /v1/paygate/refunds/{refund_id}/cancel", s.route("refunds", s.authed(s.handleRefundAnswer(false))))
		// The same paths with another method: a 405 naming the one served,
		// not the catch-all's "unknown endpoint", which sent a bot's
		// developer looking for a path that exists.
		for _, p := range []struct{ route, path, allow string }{
			{"orders", "/v1/paygate/orders", "GET"},
			{"orders", "/v1/paygate/orders/{order_no}", "GET"},
			{"refunds", "/v1/paygate/refunds/{refund_id}/confirm", "POST"},
			{"refunds", "/v1/paygate/refunds/{refund_id}/cancel", "POST"},
		} {
			mux.Handle(p.path, s.route(p.route, s.authed(methodNotAllowed(p.allow))))
		}
	}
	mux.Handle("/v1/paygate/", s.route("paygate", s.authed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
			Message: "paygate: unknown endpoint " + r.Method + " " + r.URL.Path})
	})))
}

// methodNotAllowed answers a request to a user API path with a method the
// path does not serve: 405, naming the one it does (allow), in OpenAI's
// error shape.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
			Message: "paygate: " + r.Method + " " + r.URL.Path + " is not served; use " + allow})
	}
}

// endUser is the OpenID the bot vouches for: the X-WeChat-OpenID header,
// else (POST only) the body's "user". A header that is present decides,
// empty or not (payingUser): empty, it names no user, and the body's
// "user", which a visitor the bot did not sign in may have written, is
// not read.
func (s *Server) endUser(w http.ResponseWriter, r *http.Request) (string, *apiError) {
	if v := r.Header[openIDKey]; len(v) > 0 && v[0] != "" {
		return v[0], userIDError(v[0], "")
	}
	if _, sent := r.Header[openIDKey]; !sent && r.Method == http.MethodPost && r.Body != nil {
		b, err := readLimited(w, r, maxUserBody)
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			return "", &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Message: "paygate: request body over " + strconv.Itoa(maxUserBody) + ` bytes; this endpoint reads only {"user": …}`}
		}
		if err == nil && gjson.ValidBytes(b) {
			// "user" given twice names no one user, and gjson reads the
			// first: a bot that appends its user to its client's body
			// sends the client's first. Refused, as a chat body's is
			// (interceptors.ReadChat).
			if repeatsUser(b) {
				e := badRequest(`paygate: the member "user" appears more than once; send it once`)
				e.Param = "user"
				return "", e
			}
			if u := gjson.GetBytes(b, "user"); u.Type == gjson.String && u.Str != "" {
				if e := userIDError(u.Str, ""); e != nil {
					e.Param = "user"
					return u.Str, e
				}
				return u.Str, nil
			}
		}
	}
	return "", userRequired(r)
}

// userRequired is the 400 of a user API call that names no user, saying
// where this one is read from (endUser): a POST's X-WeChat-OpenID header or
// its JSON body's "user", a GET's header alone, and a header sent empty,
// which decides: a POST's body is then not read, and naming the user there
// would not help (a GET's never is, and is not mentioned).
func userRequired(r *http.Request) *apiError {
	msg := "paygate: name the end user with the " + headerOpenID + " header"
	post := r.Method == http.MethodPost
	switch _, sent := r.Header[openIDKey]; {
	case sent:
		msg = "paygate: the " + headerOpenID + " header is empty and names no user; send the end user's OpenID in it"
		if post {
			msg += ` (a body's "user" is not read while the header is sent)`
		}
	case post:
		msg += ` or a JSON body {"user": …}`
	}
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "user_required", Message: msg}
}

// repeatsUser reports whether the JSON object b has "user" more than once
// at its top level, however its keys are escaped (gjson reads "\u0075ser"
// as "user" too). The members are counted here, not by
// interceptors.ReadPassthrough, which stops at the first member it
// refuses: a client's body that repeated "model" (or spelled it "Model")
// before its "user" had that refusal reported instead, the repeat of
// "user" went unseen, and the client's user, the first, was acted for.
func repeatsUser(b []byte) bool {
	s := string(b)
	i := jsonscan.SkipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	seen := false
	for i++; ; {
		m, ok := jsonscan.NextMember(s, i, true)
		if !ok {
			return false
		}
		i = m.End
		if jsonscan.KeyName(m.Key) == "user" {
			if seen {
				return true
			}
			seen = true
		}
	}
}

func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// orderJSON is an order object of SPEC 2.3 with, while it can be paid, the
// JSAPI parameters (request_payment) or the Native code_url, and, while
// refunds of it are proposed and open, refunds_proposed: each proposal as
// the refund object of its refund_proposed action. A bot whose SDK drops
// the paygate object (go-openai) learns of a proposal, its confirm_url
// included, only here (SPEC 2.3). open is the user's open proposals, of
// any of their orders; one the order can no longer honour (refunded by
// another proposal, a refund in flight, less left than it asks) is not
// listed: its button would only answer 409.
//
// shown is o as the user's turn reads it (payments.Service.UnsentRefunds):
// an order reserved by a confirmation cut short before anything was sent is
// what it was, paid or partially refunded, not refunding. The proposals are
// judged against o as stored, which a tap acts on.
func (s *Server) orderJSON(ctx context.Context, o, shown *store.Order, open []*store.RefundProposal) map[string]any {
	v := payments.OrderView(shown)
	var proposed []map[string]any
	for _, p := range open {
		if p.OrderNo == o.OrderNo && s.userPay.Confirmable(o, p) {
			proposed = append(proposed, payments.ProposalView(p, o.Currency))
		}
	}
	if len(proposed) > 0 {
		v["refunds_proposed"] = proposed
	}
	p, code, err := s.userPay.PayableParams(ctx, o)
	if err != nil {
		s.log.WarnContext(ctx, "payment parameters unavailable", "order_no", o.OrderNo, "err", err)
	}
	if p != nil {
		v["request_payment"] = p
	}
	if code != "" {
		v["code_url"] = code
	}
	return v
}

// ordersPagingElsewhere are the paging parameters of other list APIs
// (OpenAI's previous-page cursor, Stripe's pair) that GET /v1/paygate/orders
// does not serve. They are refused, not ignored: ignored, they handed a bot
// that pages with one the first page again, for ever.
var ordersPagingElsewhere = []string{"before", "starting_after", "ending_before"}

// handleOrders lists the user's orders in OpenAI's list shape: newest first,
// limit at a time, the next page by after=<last_id of this one> while
// has_more is true. after must be one of the user's own orders at this
// client; any other number, another user's included, is a 400 that says no
// more than an unknown number would.
func (s *Server) handleOrders(w http.ResponseWriter, r *http.Request) {
	user, aerr := s.endUser(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	// URL.Query drops a pair it cannot read (a bad % escape, a ";"), which
	// read ?after=<a mangled cursor> as no cursor: the first page again,
	// has_more true, for ever. Refused, as an admin route's (AdminQuery).
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, badRequest("paygate: the query does not parse: "+err.Error()))
		return
	}
	// One given twice was read as its first: a bot that appended
	// &after=<last_id> to the URL it fetched last got the second page
	// again, has_more true, for ever.
	for _, p := range []string{"limit", "after", "order"} {
		if len(q[p]) > 1 {
			writeError(w, paramError(p, "paygate: "+p+" is given more than once; send it once"))
			return
		}
	}
	limit := defaultOrdersLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxOrdersLimit {
			writeError(w, paramError("limit", "paygate: limit must be a whole number from 1 to "+strconv.Itoa(maxOrdersLimit)))
			return
		}
		limit = n
	}
	for _, p := range ordersPagingElsewhere {
		if q.Has(p) {
			writeError(w, paramError(p, "paygate: "+p+" is not supported here; orders are listed newest first, and the next page is after=<last_id of the previous page>"))
			return
		}
	}
	if o := q.Get("order"); o != "" && o != "desc" {
		writeError(w, paramError("order", "paygate: orders are listed newest first only; order must be desc or absent"))
		return
	}
	orders, more, err := s.userPay.UserOrders(r.Context(), reqInfo(r).client.Name, user, q.Get("after"), limit)
	if errors.Is(err, payments.ErrBadCursor) {
		writeError(w, paramError("after", "paygate: after must be the order_no of one of this user's orders, as the last_id of the previous page"))
		return
	}
	if err != nil {
		writeError(w, s.paymentsError(r, err, "orders"))
		return
	}
	open := s.openRefunds(r, user)
	shown := s.userPay.UnsentRefunds(r.Context(), orders)
	data := make([]map[string]any, 0, len(orders))
	for i, o := range orders {
		data = append(data, s.orderJSON(r.Context(), o, shown[i], open))
	}
	list := map[string]any{"object": "list", "data": data, "first_id": nil, "last_id": nil, "has_more": more}
	if len(orders) > 0 {
		list["first_id"], list["last_id"] = orders[0].OrderNo, orders[len(orders)-1].OrderNo
	}
	writeJSON(w, http.StatusOK, list)
}

// paramError is the 400 of a bad query parameter, naming it as OpenAI does.
func paramError(param, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: msg}
}

func (s *Server) handleOrder(w http.ResponseWriter, r *http.Request) {
	user, aerr := s.endUser(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	o, err := s.userPay.Order(r.Context(), reqInfo(r).client.Name, user, r.PathValue("order_no"))
	if err != nil {
		writeError(w, s.paymentsError(r, err, "order"))
		return
	}
	shown := s.userPay.UnsentRefunds(r.Context(), []*store.Order{o})[0]
	writeJSON(w, http.StatusOK, s.orderJSON(r.Context(), o, shown, s.openRefunds(r, user)))
}

// openRefunds is the user's open refund proposals, for orderJSON: one read
// for every order of the answer. A failed read leaves them out, as a
// failed signing leaves out request_payment: the orders are still the
// answer, and the turn's answer carried each proposal.
func (s *Server) openRefunds(r *http.Request, user string) []*store.RefundProposal {
	open, err := s.userPay.OpenRefunds(r.Context(), reqInfo(r).client.Name, user)
	if err != nil {
		s.log.Warn("open refund proposals unavailable", "request_id", reqInfo(r).id, "err", err)
	}
	return open
}

// handleRefundAnswer serves the user's confirm (or cancel) of a refund
// proposal: single use, bound to the user who was offered it, expiring.
func (s *Server) handleRefundAnswer(confirm bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, aerr := s.endUser(w, r)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		client, id := reqInfo(r).client.Name, r.PathValue("refund_id")
		if !confirm {
			p, err := s.userPay.CancelRefund(r.Context(), client, user, id)
			if err != nil {
				e := s.paymentsError(r, err, "refund")
				if e.Code == "refund_gone" {
					// Ended without a refund (a cancel of one cancelled
					// is answered cancelled): the confirm's "ask again in
					// the chat" had a user who said no ask for the
					// refund they declined.
					e.Message = "paygate: this refund proposal has expired, or its refund was refused or undone: nothing is refunded under it, and there is nothing left to cancel"
				}
				writeError(w, e)
				return
			}
			// The proposal names no currency; paygate's orders are all
			// in CNY, which RefundView says of "".
			writeJSON(w, http.StatusOK, map[string]any{"refund": payments.RefundView(p, "", "cancelled")})
			return
		}
		res, err := s.userPay.ConfirmRefund(r.Context(), client, user, id)
		if err != nil {
			writeError(w, s.paymentsError(r, err, "refund"))
			return
		}
		status := http.StatusOK
		if res.Status == payments.RefundPending {
			status = http.StatusAccepted
		}
		writeJSON(w, status, map[string]any{
			"refund": payments.RefundView(res.Proposal, res.Order.Currency, res.Status),
			"order":  payments.OrderView(res.Order),
		})
	}
}

// paymentsError maps a payments error to the client's OpenAI-style error.
// what names the object ("order", "refund") in not-found messages.
func (s *Server) paymentsError(r *http.Request, err error, what string) *apiError {
	e := &apiError{Type: "invalid_request_error"}
	if errors.Is(err, context.Canceled) && clientLeft(r) {
		// The bot hung up, which ended the call (the Redis driver passes
		// the cancel on as it is): nobody reads an answer, and nothing
		// failed. 499 is for the metrics only, as a chat turn's (failTurn);
		// the default's 500 counted among the server's errors and logged
		// the payment system failed.
		e.Status, e.Message = 499, "paygate: the client closed the request"
		return e
	}
	if drainEnded(r, err) {
		// The drain's deadline ended the call: nothing failed, and the
		// bot is told so, as a chat turn's is (failTurn) and an
		// operator's (adminDrainEnded); the default's 500 counted among
		// the server's errors and logged the payment system failed.
		return drainUnfinished()
	}
	var confirmed *payments.AlreadyConfirmedError
	switch {
	case errors.As(err, &confirmed):
		e.Status, e.Code = http.StatusConflict, "refund_already_confirmed"
		e.Message = "paygate: this refund was already confirmed and cannot be cancelled; it is " + confirmed.Result.Status
		if confirmed.Result.Status == payments.RefundClosed {
			e.Message += ": WeChat Pay closed it, and nothing was refunded"
		}
		e.NoRetry = true // a retry is told the same
		// The refund as the confirm's answer gives it, its status a bot
		// branches on; a failed encoding leaves the message alone to say it.
		e.Refund, _ = json.Marshal(payments.RefundView(confirmed.Result.Proposal, confirmed.Result.Order.Currency, confirmed.Result.Status))
	case errors.Is(err, store.ErrNotFound), errors.Is(err, payments.ErrNotOwner):
		e.Status, e.Code, e.Message = http.StatusNotFound, what+"_not_found", "paygate: no such "+what+" for this user"
	case errors.Is(err, store.ErrGone):
		e.Status, e.Code, e.Message = http.StatusGone, "refund_gone", "paygate: this refund proposal was already used, cancelled or has expired; ask again in the chat"
	case errors.Is(err, payments.ErrRefundInProgress):
		e.Status, e.Code, e.Message = http.StatusConflict, "refund_in_progress", "paygate: another refund of this order is in progress; try again when it is done"
		var busy *payments.RefundInProgressError
		if errors.As(err, &busy) {
			// "Try again when it is done" sent the user back to a tap
			// that, once the other refund went through, was refused as
			// more than is left.
			e.Message = "paygate: another refund of this order (" + payments.FormatAmount(busy.InFlightFen, busy.Currency) +
				") is in progress; once it goes through, " + payments.FormatAmount(busy.LeftAfterFen, busy.Currency) +
				" is left to refund, less than this refund's " + payments.FormatAmount(busy.AskedFen, busy.Currency) +
				", and this one cannot be confirmed: ask again in the chat when it is done (should WeChat Pay refuse or close it instead, this one can be confirmed then)"
			if busy.Never() {
				// Proposed before an earlier refund went through, it asks
				// more than is left whatever this one ends as: "can be
				// confirmed then" sent the user back to a tap refused as
				// more than is left.
				e.Message = "paygate: this refund's " + payments.FormatAmount(busy.AskedFen, busy.Currency) + " is more than the " +
					payments.FormatAmount(busy.LeftNowFen, busy.Currency) + " left now to refund (another refund of this order, " +
					payments.FormatAmount(busy.InFlightFen, busy.Currency) + ", is in progress), and it cannot be confirmed however that one ends: ask again in the chat when it is done"
			}
		}
		// The OpenAI SDKs retry a 409 on their own: the retry would confirm
		// again seconds later, after the bot told the user to try later,
		// and run a refund the user was told had not started. The user
		// decides when to tap again.
		e.NoRetry = true
	case errors.Is(err, payments.ErrNotRefundable), errors.Is(err, payments.ErrRefundAmount):
		e.Status, e.Code, e.Message = http.StatusConflict, "refund_not_possible", "paygate: "+err.Error()
		e.NoRetry = true // a 409 the SDKs would retry, and no retry can mend
	case errors.Is(err, payments.ErrRefundFailed):
		e.Status, e.Type, e.Code, e.Message = http.StatusBadGateway, "payment_error", "refund_failed", "paygate: WeChat Pay refused the refund; nothing was refunded"
		e.NoRetry = true // the confirmation is used: a retry is told "already used"
	case errors.Is(err, payments.ErrUserRequired):
		return userRequired(r)
	case errors.Is(err, store.ErrUnavailable):
		e.Status, e.Type, e.Code, e.Message = http.StatusServiceUnavailable, "payment_error", "payments_unavailable", "paygate: payments are temporarily unavailable"
	default:
		e.Status, e.Type, e.Message = http.StatusInternalServerError, "payment_error", "paygate: the payment system failed"
	}
	if e.Status >= 500 {
		s.log.Warn("user payments API failed", "request_id", reqInfo(r).id, "status", e.Status, "err", err)
	}
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	writeJSONBytes(w, status, b, err)
}

// writeJSONAsIs is writeJSON without HTML escaping: '&', '<' and '>' are
// written as themselves, not as \u0026, \u003c, \u003e, so a compact
// json.RawMessage in v is written byte for byte, for an answer whose raw
// values are hashed, such as the audit records' bodies.
func writeJSONAsIs(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	writeJSONBytes(w, status, bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err)
}

func writeJSONBytes(w http.ResponseWriter, status int, b []byte, err error) {
	if err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: "paygate: encoding the answer failed"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
