package proxy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/httpwire"
	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/sse"
)

// headerOpenID names the end user; the bot vouches for it (SPEC 2.2).
const headerOpenID = "X-WeChat-OpenID"

// openID is the end user a request names in headerOpenID. The header map's
// key is read directly: Header.Get would allocate the canonical form of
// the mixed-case name on every request.
func openID(h http.Header) string {
	return httpwire.Field(h, openIDKey)
}

var openIDKey = http.CanonicalHeaderKey(headerOpenID)

// endUser is the end user a request speaks for: the OpenID header, else the
// body's user (SPEC 2.2), on every path that forwards one.
func endUser(h http.Header, bodyUser string) string {
	if v := openID(h); v != "" {
		return v
	}
	return bodyUser
}

// otherOpenIDHeader is the first value of a header other than
// X-WeChat-OpenID whose name says OpenID (X-OpenID, X-Wx-Openid:
// interceptors.OpenIDLike), the least such name first, "" for none: the
// end user of a bot that names it where paygate does not read it
// (sayNoUser logs it), taken toward the provider as a metadata OpenID is
// (metadataOpenID), never as a paying one. Read only when nothing else
// names the end user: such a bot put the OpenID in its prompt too, and it
// reached the provider as written.
func otherOpenIDHeader(h http.Header) string { return leastHeader(h, otherOpenIDName) }

func otherOpenIDName(k string) bool { return k != openIDKey && interceptors.OpenIDLike(k) }

// leastHeader is the first value of the header of the least name that
// named takes, of those sent with a value, "" for none. A map range: no
// allocation.
func leastHeader(h http.Header, named func(string) bool) string {
	name, v := "", ""
	for k, vs := range h {
		if len(vs) == 0 || vs[0] == "" || !named(k) {
			continue
		}
		if name == "" || k < name {
			name, v = k, vs[0]
		}
	}
	return v
}

// unionIDHeader is the first value of a header whose name says UnionID
// (X-WX-UNIONID, which WeChat Cloud hosting sets beside X-WX-OPENID:
// interceptors.UnionIDLike), the least such name first, "" for none.
func unionIDHeader(h http.Header) string { return leastHeader(h, interceptors.UnionIDLike) }

// withoutUnionID is body, rewritten toward a provider under u, with the
// UnionID a header names (unionIDHeader) taken out of its text
// (interceptors.TextWithoutID), as the end user is: the same person across
// every app of the merchant, more telling than an OpenID. A bot that
// forwards Cloud hosting's headers puts it in its prompt as it puts the
// OpenID there, and the provider got it as written. The header itself
// reaches no provider: the upstream request's headers are paygate's own.
func withoutUnionID(h http.Header, body []byte, u interceptors.Upstream) []byte {
	if id := unionIDHeader(h); id != "" && id != u.EndUser {
		return interceptors.TextWithoutID(body, u, id)
	}
	return body
}

// payingUser is the end user payments act for (the payment tools, the
// payment state): the OpenID header when the request has one, else the
// body's user. A header that is present decides, empty or not: a bot
// that names its users there sends it empty for a visitor its OAuth did
// not sign in, and forwards the body its client wrote, whose "user" the
// visitor chose; taken then, as endUser takes it, it let a visitor act as
// any OpenID, see that user's orders and propose and confirm refunds of
// them. The body's user still names the end user toward providers
// (endUser), so that privacy.forward_user hashes it.
func payingUser(h http.Header, bodyUser string) string {
	if v := h[openIDKey]; len(v) > 0 {
		return v[0]
	}
	return bodyUser
}

// maxUserID bounds the end user's id and the session's, which name the
// user's payment state in the store: an OpenID is 28 bytes, and other
// ids (a UnionID, an account number, a UUID) are short too. Unbounded,
// a bot's megabyte id became a megabyte key per request in Redis, and
// one over 32 KiB failed every write of the embedded store.
const maxUserID = 256

// userIDError is the 400 of an end user's or a session's id over
// maxUserID bytes, else nil. The user's is checked first: a session
// defaults to the user, and a long OpenID was reported as an
// X-Paygate-Session the bot never sent.
//
// An id that is not valid UTF-8, or that holds U+FFFD, is a 400 too
// (user_id_not_utf8): the orders, proposals, announcements and texts kept
// for it hold it as their JSON carries it, each byte that is not UTF-8 a
// U+FFFD, so two ids that differ only in such bytes (GBK nicknames) were
// one stored user, and one sent as those U+FFFD (valid UTF-8) was handed
// that user's orders and could confirm its refunds. An OpenID is ASCII.
// One holding a control character or surrounding whitespace, which only
// the body's user can carry, is a 400 user_id_invalid (noHeaderCarries).
//
// The user is judged whole (encoding, form, then length) before the session, so
// that a user refused for either cause is the one told: the chat turn
// names the body's user as the error's param when it refused it, and a
// user too long with a session not in UTF-8 was told as the session's
// error under the user's param.
func userIDError(user, session string) *apiError {
	// A session the bot did not name is the user's id, read once.
	if plainID(user) && (session == user || plainID(session)) {
		return nil
	}
	return userIDChecks(user, session)
}

// userIDChecks is userIDError without its fast path (plainID): each check
// in turn, which FuzzPlainIDPassesEveryCheck holds the fast path to.
func userIDChecks(user, session string) *apiError {
	for _, id := range []struct{ what, v, advice string }{
		{"end user's id (" + headerOpenID + " or the body's user)", user, "send the OpenID as WeChat gives it, in ASCII, not a nickname in another encoding"},
		{"X-Paygate-Session", session, "name the conversation in UTF-8 (an id of the bot's own, not a title in another encoding)"},
	} {
		if notUTF8ID(id.v) {
			return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "user_id_not_utf8",
				Message: "paygate: the " + id.what + " is not valid UTF-8 (or holds U+FFFD); " + id.advice}
		}
		if noHeaderCarries(id.v) {
			return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "user_id_invalid",
				Message: "paygate: the " + id.what + " holds a control character or begins or ends with whitespace, which no header carries; send it as WeChat gives it"}
		}
		if n := len(id.v); n > maxUserID {
			return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "user_id_too_long",
				Message: "paygate: the " + id.what + " is " + strconv.Itoa(n) + " bytes; at most " + strconv.Itoa(maxUserID)}
		}
	}
	return nil
}

// plainID reports whether id is printable ASCII, not beginning or ending
// with a space, and at most maxUserID bytes: an id every check of
// userIDError passes, as OpenIDs and the bots' session ids are, known by
// one pass over it (the checks cost a chat turn about 1,500 instructions).
func plainID(id string) bool {
	if len(id) > maxUserID || id != "" && (id[0] == ' ' || id[len(id)-1] == ' ') {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// noHeaderCarries reports whether id holds a control character other
// than a tab, or begins or ends with a space or a tab: a header value
// carries neither (the listener and net/http trim the whitespace, a
// client's fetch strips it and Go's refuses the rest), so only the body's
// user could. Taken, such an id named a user that the header naming the
// same OpenID does not ("oABC\n" from a bot's variable with a newline
// is "oABC" in its header, and GET /v1/paygate/orders reads the header
// alone), and an id holding NUL made the conversation keys that join
// the client, user and session with NUL ambiguous. An OpenID is
// letters, digits, '-' and '_'.
func noHeaderCarries(id string) bool {
	if id == "" {
		return false
	}
	if c := id[0]; c == ' ' || c == '\t' {
		return true
	}
	if c := id[len(id)-1]; c == ' ' || c == '\t' {
		return true
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// notUTF8ID reports whether id is not valid UTF-8 or holds U+FFFD, which
// the records make of a byte that is not (userIDError).
func notUTF8ID(id string) bool {
	return !utf8.ValidString(id) || strings.ContainsRune(id, utf8.RuneError)
}

// readBody reads the whole client body (failover may resend it) within the
// configured limit and the budget of bodies in flight (bodyBudget), adding
// the bytes it took of the budget to *held, which the caller gives back
// when the request ends, refused or not.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, held *bodyHeld) ([]byte, *apiError) {
	limit := s.cfg.Server.MaxBodyBytes
	if ce := r.Header["Content-Encoding"]; len(ce) > 0 && !identity(ce) {
		// A compressed body would reach a provider as JSON it cannot read,
		// or fail paygate's own parse with a misleading "not valid JSON".
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Type: "invalid_request_error",
			Message: "paygate: request bodies with Content-Encoding " + strconv.Quote(strings.Join(ce, ", ")) + " are not supported; send the body uncompressed"}
	}
	if r.ContentLength > limit {
		// Refused before a byte is read: a client waiting on "Expect:
		// 100-continue" is told at once and never uploads the body.
		return nil, bodyTooLarge(limit)
	}
	if n := r.ContentLength; n >= 0 {
		// The usual case: the length is declared and allowed. A small one
		// is read into one buffer of its size (io.ReadAll would grow one);
		// a large one is not reserved before its bytes come (a client that
		// declares megabytes and sends one byte would hold them: a hundred
		// such connections pin the whole limit a hundred times), so its
		// buffer grows as bytes arrive, never past the declared length.
		if n > reserveUpTo && !s.bodies.fits(n) {
			// Refused before a byte is read, as one over the limit is.
			return nil, bodiesBusy(s.bodies.limit)
		}
		body := make([]byte, min(n, reserveUpTo))
		s.bodies.take(held, int64(len(body)), true)
		for got := 0; ; {
			m, err := io.ReadFull(r.Body, body[got:])
			got += m
			if err != nil {
				return nil, bodyReadError(err)
			}
			if int64(got) == n {
				return body, nil
			}
			// Doubled, or the whole length once that is near: the sizes
			// allocated sum to at most about twice the body.
			next := 2 * int64(got)
			if 2*next > n {
				next = n
			}
			if !s.bodies.take(held, next-int64(len(body)), false) {
				return nil, bodiesBusy(s.bodies.limit)
			}
			grown := make([]byte, next)
			copy(grown, body[:got])
			body = grown
		}
	}
	// A body of undeclared length (chunked) takes the budget as its bytes
	// arrive.
	br := &budgetReader{r: http.MaxBytesReader(w, r.Body, limit), b: &s.bodies}
	body, err := io.ReadAll(br)
	// Added after, not through a pointer the reader keeps: held would
	// escape, an allocation on every request.
	held.forced += br.held.forced
	held.large += br.held.large
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, bodyTooLarge(limit)
		}
		if err == errBodiesBusy {
			return nil, bodiesBusy(s.bodies.limit)
		}
		return nil, bodyReadError(err)
	}
	return body, nil
}

// budgetReader reads a body of undeclared length, taking the budget of
// bodies in flight for its bytes as they come: its first reserveUpTo
// always, the rest while the budget has room, else errBodiesBusy.
type budgetReader struct {
	r    io.Reader
	b    *bodyBudget
	held bodyHeld // what it took, added to the request's after the read
	took int64
}

var errBodiesBusy = errors.New("paygate: over the budget of request bodies in flight")

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 {
		if !br.b.take(&br.held, int64(n), br.took+int64(n) <= reserveUpTo) {
			return n, errBodiesBusy
		}
		br.took += int64(n)
	}
	return n, err
}

// bodyReadError is the client's answer to a body that could not be read:
// 408 when the client went silent mid-body (the server's body stall bound),
// else a 400 for a body shorter than declared. Fixed words: a read error's
// text names both ends' addresses.
func bodyReadError(err error) *apiError {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &apiError{Status: http.StatusRequestTimeout, Type: "invalid_request_error",
			Message: "paygate: the request body stopped arriving before it was complete"}
	}
	return badRequest("paygate: the request body ended before it was complete")
}

// reserveUpTo is the largest declared body length readBody reserves
// before its bytes arrive.
const reserveUpTo = 64 << 10

func bodyTooLarge(limit int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
		Message: "paygate: request body over " + strconv.FormatInt(limit, 10) + " bytes (server.max_body_bytes)"}
}

// identity reports a Content-Encoding that leaves the body as it is.
func identity(ce []string) bool {
	for _, v := range ce {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "identity") {
				return false
			}
		}
	}
	return true
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	rc := reqInfo(r)
	var held bodyHeld // of the budget of bodies in flight, given back at the end
	defer func() { s.bodies.give(held) }()
	body, aerr := s.readBody(w, r, &held)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	chat, err := interceptors.ReadChat(body, s.dropFields...)
	if err != nil {
		writeError(w, requestError("", err))
		return
	}
	if !s.up.HasModel(chat.Model) {
		writeError(w, modelNotFound(chat.Model))
		return
	}
	user := endUser(r.Header, chat.User)
	if user == "" {
		// A bot that names its user in metadata alone ({"openid": …})
		// sent the OpenID to the provider as it was, there and in its
		// prompt: taken as the end user toward the provider (hashed as a
		// named user's is), though never as a paying one (payingUser).
		user = metadataOpenID(chat.RawMetadata())
	}
	if user == "" {
		// Named in a header of another name alone (X-OpenID): taken
		// toward the provider as a metadata OpenID is.
		user = otherOpenIDHeader(r.Header)
	}
	up := interceptors.Upstream{Client: rc.client.Name, EndUser: user, Privacy: s.forwardPrivacy(user), ForceUsage: true}
	out, err := interceptors.RewriteChat(body, chat, up)
	if err != nil {
		writeError(w, requestError("", err))
		return
	}
	out = withoutUnionID(r.Header, out, up)
	// The conversation a plain turn's cost is counted to: none without a
	// payment user, the user's session for one served plainly below.
	var costUser, costSession string
	if user := payingUser(r.Header, chat.User); s.tools != nil && user == "" {
		if _, hdr := r.Header[openIDKey]; !hdr {
			s.sayNoUser(rc.client, rc.id, r.Header, &chat)
		}
	} else if s.tools != nil {
		session := httpwire.Field(r.Header, "X-Paygate-Session")
		if session == "" {
			session = user
		}
		if aerr := userIDError(user, session); aerr != nil {
			// The body's user refused (not the session), for either
			// cause, names its member, as the user API's does.
			if _, hdr := r.Header[openIDKey]; !hdr && userIDError(user, "") != nil {
				aerr.Param = "user" // the body's
			}
			writeError(w, aerr)
			return
		}
		if chat.Choices <= 1 || paymentToolsOffered(chat, out, s.tools.IsPayment) {
			c := rc.client
			s.runTurn(w, r, chat, body, out, payments.Caller{Client: c.Name, AppID: c.AppID, User: user, Session: session, AllowedSKUs: c.AllowedSKUs, PayMethods: s.cfg.PayMethodsOf(c)})
			return
		}
		// Several choices, and the bot's tool_choice or legacy functions
		// leave the payment tools out: no payment call can come, so the
		// choices go to the bot as they would without a user. runTurn
		// refuses n above 1 because it continues one conversation and a
		// payment call in a choice the bot may not show would run or reach
		// the bot raw; refused here too, a bot that turned tools off to get
		// several phrasings got a 400 saying the payment tools were offered.
		costUser, costSession = user, session
	}
	req := &failover.Request{
		Model:       chat.Model,
		Method:      http.MethodPost,
		Path:        "/chat/completions",
		Body:        out,
		Stream:      chat.Stream,
		Choices:     chat.Choices,
		ContentType: "application/json",
		Accept:      s.acceptFor(r.Header, user),
		Affinity:    conversationAffinity(rc.client.Name, user, cmp.Or(httpwire.Field(r.Header, "X-Paygate-Session"), user)),
	}
	if !chat.Stream && chat.HasTools {
		// A name a provider streams in pieces into events answering the
		// request is joined as a payment turn's is (turn.nameGoesOn), by
		// the bot's tools' names: without them, every name under a call's
		// index before its arguments was a piece, and the bot's get_time
		// after its get_weather without arguments came as one call
		// "get_weatherget_time".
		req.Names = &botNames{body: body}
	}
	resp, err := s.up.Open(r.Context(), req)
	cost := s.accountRefused(r.Context(), resp, err)
	if err != nil {
		s.failTurn(w, r, err, nil)
		if s.ledger != nil {
			// A turn the providers did not answer is a turn, as a
			// payment turn's is (accounting.Stats.Turns).
			s.ledger.Turn(r.Context(), rc.client.Name, costUser, costSession, cost)
		}
		return
	}
	defer resp.Close()
	s.setPaygateHeaders(w.Header(), resp)
	if !chat.Stream {
		writeChatAnswer(w, resp)
		u := ledgerUsage(interceptors.ReadUsage(gjson.GetBytes(resp.Body, "usage")))
		cost += s.roundCost(r.Context(), resp, u)
		if countsNothing(u) {
			s.unmetered(r.Context(), resp) // no usage, or none the ledger prices
		}
	} else {
		s.streamRound(w, r, req, resp, !chat.WantsUsage, chat.Choices > 1, &cost)
	}
	if s.ledger != nil {
		s.ledger.Turn(r.Context(), rc.client.Name, costUser, costSession, cost)
	}
}

// roundCost prices an attempt's usage to its provider and target's
// upstream model, and is 0 without a ledger.
func (s *Server) roundCost(ctx context.Context, resp *failover.Response, u accounting.Usage) accounting.Pico {
	if s.ledger == nil {
		return 0
	}
	return s.ledger.Round(ctx, resp.Provider, resp.Model, u)
}

// accountRefused prices the usage of the round's attempts whose 2xx answers
// were refused as malformed (failover.Attempt.Usage: no choices, a member
// named twice), or whose streams failed before their first token after
// sending a usage, which the provider billed though no answer came of them,
// and returns their cost. Left out, the tokens and cost metrics and the
// conversation's cost missed what such a provider charged, asked again.
// An attempt whose answer its provider cut before any usage came
// (cutBeforeUsage) is recorded with no token, as a stream cut mid-answer is.
func (s *Server) accountRefused(ctx context.Context, resp *failover.Response, err error) accounting.Pico {
	var tried []failover.Attempt
	if resp != nil {
		tried = resp.Tried
	} else if err != nil {
		tried = triedOf(err)
	}
	var cost accounting.Pico
	for _, a := range tried {
		switch {
		case s.ledger == nil:
		case a.Usage != nil:
			cost += s.ledger.Round(ctx, a.Provider, a.Model, ledgerUsage(interceptors.ReadUsage(gjson.ParseBytes(a.Usage))))
		case cutBeforeUsage(a):
			s.ledger.Round(ctx, a.Provider, a.Model, accounting.Usage{})
		}
	}
	return cost
}

// cutBeforeUsage reports a failed attempt whose provider took the request,
// answered a 2xx head and then lost its answer: its connection cut, silent
// past the idle, first-token or total timeout or the round's time
// (failover.max_round_time), or the bot gone (canceled): a non-stream
// answer cut mid-body, a stream cut before its first token. The provider
// bills what it generated: one that sent no usage before its cut
// (Attempt.Usage, which its callers price first) is recorded with no token
// under its provider and model, as a stream cut mid-answer is
// (streamRound), where it was recorded nowhere, as if not asked. Without
// a 2xx head nothing says the provider took the request (a connection
// refused, no head before first_byte, or before a non-stream answer's
// total: a provider down may still accept connections), and an error
// answer is no bill: neither is recorded.
func cutBeforeUsage(a failover.Attempt) bool {
	switch a.Cause {
	case failover.CauseConnectionLost, failover.CauseIdleTimeout, failover.CauseFirstTokenTimeout,
		failover.CauseTotalTimeout, failover.CauseRoundTime, failover.CauseCanceled:
		return a.Status >= 200 && a.Status <= 299
	}
	return false
}

// triedOf is the attempts of a round that ended in err, an
// *failover.UpstreamError, and nil for any other error. Apart from
// accountRefused so that the error's holder, which errors.As moves to the
// heap, is allocated only on a round that failed, not on every turn.
func triedOf(err error) []failover.Attempt {
	var ue *failover.UpstreamError
	if errors.As(err, &ue) {
		return ue.Tried
	}
	return nil
}

// providerRefused reports a round that ended with a provider's refusal
// of the request, a 4xx (not a rate limit's 429) that reaches the client
// with that provider's status and reason: the attempt's line
// (failover's "upstream attempt failed") already names them.
func providerRefused(err error) bool {
	var ue *failover.UpstreamError
	return errors.As(err, &ue) && ue.Provider != "" && len(ue.Tried) > 0 && ue.Class != failover.CauseCanceled &&
		ue.Status >= 400 && ue.Status < 500 && ue.Status != http.StatusTooManyRequests
}

// unmetered tells the ledger of an answer that came whole without usage, or
// with a usage that counts nothing the ledger prices (countsNothing,
// accounting.Ledger.Unmetered), or of a stream cut after its finish, before
// its usage could come (accounting.Ledger.UsageCut).
func (s *Server) unmetered(ctx context.Context, resp *failover.Response) {
	if s.ledger == nil {
		return
	}
	if cut := resp.CutAfterFinish(); cut != nil {
		s.ledger.UsageCut(ctx, resp.Provider, resp.Model, cut)
		return
	}
	s.ledger.Unmetered(ctx, resp.Provider, resp.Model)
}

// failTurn answers a turn that got no upstream answer at all. ext, when
// not nil, is the paygate object of what the turn's payment calls did
// before it failed (turn.extension), sent in the error (apiError.Paygate).
func (s *Server) failTurn(w http.ResponseWriter, r *http.Request, err error, ext []byte) {
	setFailedRoundHeaders(w.Header(), err)
	if shutDown(r) {
		s.log.Warn("request ended by the drain deadline before its answer began",
			"request_id", reqInfo(r).id)
		var ue *failover.UpstreamError
		if errors.As(err, &ue) && ue.MayHaveActed {
			// A call sent at most once (a batch, an upload) that the
			// provider had whole: it may have acted on it, so the bot is
			// not told to send it again, nor are the SDKs, which retry a
			// 503 on their own (failover.UpstreamError.MayHaveActed).
			e := shutdownError(http.StatusGatewayTimeout,
				"paygate: the server is shutting down (server.shutdown_timeout passed) before the provider answered this request, "+
					"which it may have acted on; check before sending it again")
			e.NoRetry, e.Paygate = true, ext
			writeError(w, e)
			return
		}
		e := drainUnfinished()
		e.Paygate = ext
		writeError(w, e)
		return
	}
	if r.Context().Err() != nil {
		// The client left; nobody reads an answer. 499 is for the metrics only.
		w.WriteHeader(499)
		return
	}
	ae := s.upstreamError(err)
	level := slog.LevelWarn
	if providerRefused(err) {
		// The provider's own 4xx, passed on: its attempt's line says it
		// all (provider, target, status, code, the reason), and a
		// second warning per refused request repeated it, the whole
		// message beside it (625 bytes a request, up to 64 KB).
		level = slog.LevelDebug
	}
	s.log.Log(r.Context(), level, "turn failed before any byte reached the client",
		"request_id", reqInfo(r).id, "status", ae.Status, "err", err)
	ae.Paygate = ext
	writeError(w, ae)
}

func (s *Server) setPaygateHeaders(h http.Header, resp *failover.Response) {
	v, ok := s.providerValues[resp.Provider]
	if !ok {
		v = []string{resp.Provider}
	}
	h["X-Paygate-Provider"] = v
	h["X-Paygate-Attempts"] = attemptsValue(resp.Attempts)
}

// setFailedRoundHeaders puts paygate's headers on the error answer of a
// round no target answered (SPEC 5: provider and attempts on every
// answer): the attempts it made, and the provider whose error the client
// reads (failover.UpstreamError.Provider), which is not always the one
// asked last: whoever debugs a 400 or a Retry-After looks there. Without
// them an operator or a bot's log could tell a round that tried three
// providers from one that tried none only by parsing the message. An
// answer whose headers an earlier round of the turn already set keeps
// those (the turn's first round, as on success); an error that is no
// round's (a canceled or refused request) sets none.
func setFailedRoundHeaders(h http.Header, err error) {
	var ue *failover.UpstreamError
	if !errors.As(err, &ue) || h["X-Paygate-Attempts"] != nil {
		return
	}
	if ue.Provider != "" {
		h["X-Paygate-Provider"] = []string{ue.Provider}
	}
	h["X-Paygate-Attempts"] = attemptsValue(ue.Attempts)
}

// attemptsValue is the X-Paygate-Attempts value for n attempts.
func attemptsValue(n int) []string {
	if n >= 0 && n < len(attemptValues) {
		return attemptValues[n]
	}
	return []string{strconv.Itoa(n)}
}

// Header values every answer carries, built once. net/http only reads a
// header's value slice, and Header.Add on one of these (capacity 1)
// reallocates rather than writing into the shared array.
var (
	attemptValues = func() (v [][]string) {
		for i := range 10 {
			v = append(v, []string{strconv.Itoa(i)})
		}
		return v
	}()
	jsonType    = []string{"application/json"}
	eventStream = []string{"text/event-stream"}
	noCache     = []string{"no-cache"}
	noBuffering = []string{"no"}
)

// setStreamHeaders marks an answer as an event stream, one a front must
// pass on as it comes: nginx (and NGINX's own Ingress Controller) buffers
// an upstream's answer by default (proxy_buffering on), which held every
// event of a stream until its end; X-Accel-Buffering: no turns
// that off for this answer, and nginx does not pass the header on.
func setStreamHeaders(h http.Header) {
	h["Content-Type"] = eventStream
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = noBuffering
}

// writeChatAnswer sends a non-stream chat completion as writeUpstreamBody
// does, but as application/json whatever the provider's server labelled
// it: failover took it only as a JSON object with choices, and the Node
// and Python SDKs read a body by its Content-Type, so one a server sent as
// text/plain (mistral.rs's did) reached the bot as a string, not a
// completion, as it never did on a payment turn (writeCompletion).
func writeChatAnswer(w http.ResponseWriter, resp *failover.Response) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(interceptors.DropPaygate(resp.Body))
}

// writeUpstreamBody sends an upstream's answer as it came, but for a
// top-level "paygate" member of its own: that is paygate's word to the bot
// (SPEC 2.3), and an upstream's would be a forgery.
func writeUpstreamBody(w http.ResponseWriter, resp *failover.Response) {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(interceptors.DropPaygate(resp.Body))
}

// streamRound relays one upstream stream to the client, event by event, each
// flushed. withholdUsage drops the usage-only chunk paygate asked for on its
// own account. A stream cut after its first byte is recovered as in the turn
// loop (relayRound): another provider is asked for the rest of the answer
// and only the rest reaches the client, under the same id (with the
// client's tool calls already received, as a fresh answer matched against
// them: see turn.relayRound); not for several choices (n above 1), whose
// texts the sent log does not tell apart. Each attempt's usage, broken
// ones' and those a recovery's round refused as malformed included, is
// added to *cost.
func (s *Server) streamRound(w http.ResponseWriter, r *http.Request, req *failover.Request, resp *failover.Response,
	withholdUsage, severalChoices bool, cost *accounting.Pico) {
	h := w.Header()
	setStreamHeaders(h)
	w.WriteHeader(http.StatusOK)
	sw := sse.NewWriter(w)
	sent := sentLogs.Get().(*sentLog)
	defer func() {
		if sent.reusable() {
			sent.b, sent.over, sent.peak = sent.b[:0], false, 0
			sentLogs.Put(sent)
		}
	}()
	var (
		resume                  *interceptors.Resume
		first                   *failover.StreamError
		excluded                []string
		tooSmall                []failover.TargetName // addTooSmall: never asked again by a recovery
		id, sentText, sentReasn string
		sentRefusal             string
		calls                   []sentCall // the client's tool calls, as received
		names                   *botNames  // judges a call's name sent in pieces (readSent)
	)
	rec := &recoveries{limit: s.cfg.Failover.Recovery}
	for {
		tooSmall = addTooSmall(tooSmall, resp)
		u, err := s.relayPlain(sw, resp, resume, sent, withholdUsage)
		resp.Close()
		*cost += s.roundCost(r.Context(), resp, u)
		if err == nil && countsNothing(u) {
			s.unmetered(r.Context(), resp) // no usage, or none the ledger prices
		}
		if err == nil {
			if first != nil {
				s.countRecovery(first, recoveryRecovered)
			}
			_ = sw.End() // sent with the end of the response
			return
		}
		if errors.Is(err, errClientGone) {
			if first != nil {
				s.countRecovery(first, recoveryClientGone)
			}
			return
		}
		if errors.Is(err, interceptors.ErrDiverged) {
			s.endUnrecovered(sw, r, first, recoveryDiverged, "the new answer diverges from what was already sent")
			return
		}
		var se *failover.StreamError
		if !errors.As(err, &se) || se.Cause == failover.CauseCanceled {
			if !s.recoveryAbandoned(r, first, err) {
				s.endStreamWithError(sw, r, err)
			}
			return
		}
		if se.Refused() {
			s.endRefused(sw, r, first, se)
			return
		}
		if first == nil {
			first = se
		}
		if severalChoices {
			// What was sent is read as one choice's text; n choices'
			// deltas would be mixed into one prefill.
			s.endUnrecovered(sw, r, first, recoveryChoices, "the request asked for several choices (n), which a recovery cannot continue")
			return
		}
		if sent.over {
			s.endUnrecovered(sw, r, first, recoveryTooLong, tooLongWhy)
			return
		}
		if names == nil {
			names = &botNames{body: req.Body} // made on a recovery only
		}
		got := readSent(sent.b, &calls, names)
		sent.peak = max(sent.peak, len(sent.b))
		sent.b = sent.b[:0]
		sentText += got.text
		sentReasn += got.reasoning
		sentRefusal += got.refusal
		if id == "" {
			if id = got.id; id == "" {
				id = reqInfo(r).fallback()
			}
		}
		if got.unmatchable {
			s.endUnrecovered(sw, r, first, recoveryPartialCall, "the client already received part of a tool call")
			return
		}
		if got.opaque {
			s.endUnrecovered(sw, r, first, recoveryOpaque, opaqueWhy)
			return
		}
		if got.tooMany {
			s.endUnrecovered(sw, r, first, recoveryTooLong, tooManyCallsWhy)
			return
		}
		if why, outcome := rec.take(time.Now()); why != "" {
			s.endUnrecovered(sw, r, first, outcome, why)
			return
		}
		excluded = append(excluded, se.Provider)
		next := *req
		next.ExcludeProviders = excluded
		next.ExcludeTargets = tooSmall
		if len(calls) == 0 && sentRefusal == "" {
			next.Continuation = &failover.Continuation{Text: sentText}
		} // else a tool call or a refusal cannot be prefilled: the fresh answer is matched
		// The bot hears nothing until the next provider's first byte:
		// keep-alives fill that wait (server.sse_keepalive).
		nr, err := keptAlive(sw, s.cfg.Server.SSEKeepalive.D(), func() (*failover.Response, error) {
			return s.up.Open(r.Context(), &next)
		})
		// Its attempts refused as malformed were billed, as a first
		// round's are (accountRefused).
		*cost += s.accountRefused(r.Context(), nr, err)
		if err != nil && s.recoveryAbandoned(r, first, err) {
			return
		}
		if refused := refusedRecovery(err); refused != nil {
			s.endRefused(sw, r, first, refused)
			return
		}
		if err != nil {
			s.log.Warn("stream recovery found no provider", "request_id", reqInfo(r).id, "cause", first.Cause, "err", err)
			s.endUnrecovered(sw, r, first, recoveryNoProvider, "no other provider could continue the answer")
			return
		}
		s.log.Info("stream recovery", "request_id", reqInfo(r).id, "cause", se.Cause,
			"from", se.Provider, "to", nr.Provider, "continued", nr.Continued, "sent_bytes", len(sentText))
		resp = nr
		resume = interceptors.NewResume(id, sentText, sentReasn, !nr.Continued).WithRefusal(sentRefusal)
		if len(calls) > 0 {
			resume.WithCalls(toolCalls(calls), nil)
		}
	}
}

// relayPlain relays one attempt's events, through resume when the attempt
// takes over a cut one, and logs each event sent (for a recovery to know
// what the client has). It returns the attempt's usage and nil when the
// stream is complete, else a *failover.StreamError, interceptors.ErrDiverged
// or errClientGone.
func (s *Server) relayPlain(sw *sse.Writer, resp *failover.Response, resume *interceptors.Resume, sent *sentLog, withholdUsage bool) (accounting.Usage, error) {
	u, err := s.relayPlainEvents(sw, resp, resume, sent, withholdUsage)
	return u, flushAfterRelay(sw, err)
}

// relayPlainEvents is relayPlain's loop; events go out queued (see
// flushBeforeWait).
func (s *Server) relayPlainEvents(sw *sse.Writer, resp *failover.Response, resume *interceptors.Resume, sent *sentLog, withholdUsage bool) (u accounting.Usage, _ error) {
	topUsage := false // u came from a top-level usage
	quiet := repeatQuiet(resume, s.cfg.Server.SSEKeepalive.D())
	for {
		if flushBeforeWait(sw, resp) != nil {
			return u, errClientGone
		}
		ev, err := resp.Next()
		if errors.Is(err, io.EOF) {
			return u, nil
		}
		if err != nil {
			return u, err
		}
		if ev.IsDone() {
			return u, nil
		}
		// An upstream's own "paygate" member would pass for paygate's; an
		// empty "error" beside the choices would pass for an error. An
		// event failover's scan found no "error" in has none to drop
		// (dropping members joins a value's end or a brace to what
		// followed a member, which makes no `rror"`).
		data := interceptors.DropPaygate(ev.Data)
		if resp.EventMayHoldError() {
			data = interceptors.DropEmptyError(data)
		}
		if resume != nil {
			if data, err = resume.Filter(data); err != nil {
				return u, err
			}
			if data == nil {
				if quiet.due(resume) && sw.KeepAlive() != nil {
					return u, errClientGone
				}
				continue
			}
		}
		if got, only, inChoice, ok := usageIn(data); ok {
			// Read for accounting wherever the provider puts it: a chunk of
			// its own (include_usage), the finish chunk (Mistral, Gemini's
			// compatible endpoint), or that chunk's choice (Moonshot),
			// which a top-level usage read before outranks. Only a chunk
			// of its own is withheld from a client that did not ask.
			if !inChoice || !topUsage {
				u, topUsage = got, !inChoice
			}
			if only && withholdUsage {
				continue
			}
		}
		sent.add(data)
		if err := queueEvent(sw, data, ev.Data, resp); err != nil {
			// The client is gone; returning cancels the upstream request.
			return u, errClientGone
		}
	}
}

// sentLog is the log of a plain stream's events sent to its client since
// its last recovery, for the next recovery to read (readSent). It is
// bounded: an upstream that streams without end (a hostile or looping
// one, within its total timeout) had every byte it sent held for the
// stream's whole life, hundreds of MiB a minute at network speed. Past
// maxSentLog the log is dropped and over set: the stream goes on, but a
// cut after that is not recovered.
type sentLog struct {
	b    []byte
	over bool
	peak int // the most b held before a recovery emptied it
}

// reusable reports whether the log goes back to the pool: not over
// maxPooledLog, and not over keptLogSlack times what this stream logged
// unless within minPooledLog. A pooled log never shrinks: kept at the
// size one long answer grew it to, it is what every short stream that
// takes it after holds, and one long answer per concurrent stream left
// the heap that much larger for as long as paygate ran (32 streams kept
// 17 MiB, TestSentLogPoolHoldsNoLongAnswer). A log that a short stream
// took from a long one is let go instead; streams that are all long keep
// theirs, so that their logs cost no allocation. A log that went over
// maxSentLog has dropped its buffer: put back, the next stream that took
// it grew one from nothing (11 allocations more for 13 KB of events,
// TestSentLogOverIsNotPooled), where the pool's New starts at 16 KiB.
func (l *sentLog) reusable() bool {
	c := cap(l.b)
	return !l.over && c <= maxPooledLog && (c <= minPooledLog || c <= keptLogSlack*max(l.peak, len(l.b)))
}

const (
	minPooledLog = 64 << 10 // kept whatever the stream logged
	keptLogSlack = 4
)

// add logs one event sent. JSON holds no raw NUL: it separates the
// logged events. An event over largeEvent is logged with the content
// parts, audio and pictures of its first choice's delta (opaqueValues) as
// a stand-in, [0]: readSent reads it as it reads the event (an opaque
// delta, whatever else it carries), and no recovery follows an opaque
// one, so their bytes are of no use to it. Logged whole, an image model's
// picture (a data URL of tens of MiB in one event) was held once more for
// the stream's life, beside the event relayed.
func (l *sentLog) add(data []byte) {
	if l.over {
		return
	}
	var cuts [4][2]int
	n, size := 0, len(data)
	if len(data) > largeEvent {
		n = opaqueValues(data, &cuts)
		for _, c := range cuts[:n] {
			size -= c[1] - c[0] - len(standIn)
		}
	}
	if len(l.b)+size+1 > maxSentLog {
		l.b, l.over = nil, true
		return
	}
	pos := 0
	for _, c := range cuts[:n] {
		l.b = append(append(l.b, data[pos:c[0]]...), standIn...)
		pos = c[1]
	}
	l.b = append(append(l.b, data[pos:]...), 0)
}

// largeEvent: events longer than this are looked into before they are
// logged (sentLog.add); the text of a model's answer comes in events far
// shorter, which are logged as they are, with no scan.
const largeEvent = 64 << 10

// standIn is what a large event's opaque values are logged as: an array
// with a member, opaque to readSent (nonEmptyValue) as they are.
const standIn = "[0]"

// opaqueValues finds, in data, the byte ranges of its first choice's
// delta's members readSent takes for opaque (content given as parts,
// audio, images, each when not empty), in order, at most len(cuts); it
// returns how many it found.
func opaqueValues(data []byte, cuts *[4][2]int) int {
	n := 0
	d := gjson.Get(unsafe.String(unsafe.SliceData(data), len(data)), "choices.0.delta")
	if !d.IsObject() {
		return 0
	}
	d.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content", "audio", "images":
			end := v.Index + len(v.Raw)
			// Where gjson says it is (a comparison of the same bytes).
			if nonEmptyValue(v) && v.Index > 0 && end <= len(data) && string(data[v.Index:end]) == v.Raw {
				cuts[n] = [2]int{v.Index, end}
				n++
			}
		}
		return n < len(cuts)
	})
	return n
}

// maxSentLog bounds a sentLog: 32 MiB, failover's bound on a non-stream
// chat completion (its default Options.MaxResponseBytes), far above the
// events of the longest answer a model writes. A variable so a test need
// not stream that much.
var maxSentLog = 32 << 20

// sentLogs pools the per-stream logs of sent events, so a healthy stream
// costs a copy per event and no allocation.
var sentLogs = sync.Pool{New: func() any { return &sentLog{b: make([]byte, 0, 16<<10)} }}

// maxPooledLog bounds the logs kept for reuse.
const maxPooledLog = 1 << 20

// sentSoFar is what a plain stream's client received, read back from the
// log of sent events.
type sentSoFar struct {
	id, text, reasoning string
	refusal             string // delta.refusal, matched like the text
	// unmatchable: a legacy function_call or a tool-call entry without an
	// index was sent; a fresh answer cannot be matched against it.
	unmatchable bool
	// opaque: content given as parts (Mistral's thinking,
	// "content":[{"type":"thinking",…}]), audio or an image model's
	// picture (delta.images) was sent; no fresh answer can be matched
	// against it either.
	opaque bool
	// tooMany: the client was sent over maxRoundCalls tool calls; the
	// calls past that are not read (each delta's call is looked for
	// among those so far) and no fresh answer is asked to match them.
	tooMany bool
}

// sentCall is a tool call the client received (part of), by its index.
type sentCall struct {
	index    int
	id, name string
	args     []byte // raw JSON string fragments, escapes kept
	custom   bool   // a custom tool's call: name and text in "custom"
	twice    bool   // an entry of it named it twice (NullBesideObject): it has no name
}

// readSent reads the logged events back; the tool-call entries are added to
// calls, which keeps the calls of earlier attempts. names (nil: none) judges
// a name that a later entry of a call gives before its arguments: the next
// piece of a name the provider streams in pieces ("get_", "weather"), which
// the call's name is joined with, or the name given again.
func readSent(log []byte, calls *[]sentCall, names failover.NameJudge) sentSoFar {
	var out sentSoFar
	// Raw string fragments, escapes kept, decoded once at the end: a
	// surrogate pair a provider wrote as \u escapes split between two
	// deltas is one character, and each half decoded alone is U+FFFD.
	var text, reasoning, refusal []byte
	for len(log) > 0 {
		i := bytes.IndexByte(log, 0)
		if i < 0 {
			i = len(log)
		}
		ev := log[:i]
		log = log[min(i+1, len(log)):]
		res := gjson.GetManyBytes(ev, "id", "choices.0.delta.content", "choices.0.delta.reasoning_content",
			"choices.0.delta.reasoning", "choices.0.delta.tool_calls", "choices.0.delta.function_call",
			"choices.0.delta.refusal", "choices.0.delta.audio", "choices.0.delta.images")
		if out.id == "" {
			out.id = res[0].String()
		}
		text = appendFragment(text, res[1])
		refusal = appendFragment(refusal, res[6])
		if nonEmptyValue(res[1]) || nonEmptyValue(res[7]) || nonEmptyValue(res[8]) {
			out.opaque = true
		}
		if res[2].Type == gjson.String && len(res[2].Raw) > 2 {
			// reasoning_content when it has text, else reasoning (the
			// same text when both come): Resume's choice.
			reasoning = appendFragment(reasoning, res[2])
		} else {
			reasoning = appendFragment(reasoning, res[3])
		}
		// A server that writes the call members out empty in every delta
		// ("function_call": null, "tool_calls": null: LiteLLM's proxy)
		// sent no call: read as one, its every cut stream was refused as
		// partial_tool_call.
		if res[5].Exists() && res[5].Type != gjson.Null {
			out.unmatchable = true
		}
		entries := res[4]
		if !entries.IsArray() {
			if entries.Exists() && entries.Type != gjson.Null {
				out.unmatchable = true // calls in no array: nothing to match
			}
			entries = gjson.Result{} // ForEach calls a null once, as a value
		}
		entries.ForEach(func(_, e gjson.Result) bool {
			idx := e.Get("index")
			if idx.Type != gjson.Number {
				out.unmatchable = true
				return true
			}
			k := slices.IndexFunc(*calls, func(c sentCall) bool { return c.index == int(idx.Int()) })
			if k < 0 && len(*calls) >= maxRoundCalls {
				out.tooMany = true
				return true
			}
			if k < 0 {
				*calls = append(*calls, sentCall{index: int(idx.Int())})
				k = len(*calls) - 1
			}
			c := &(*calls)[k]
			if c.id == "" {
				c.id = e.Get("id").String()
			}
			argsPath := "function.arguments"
			if interceptors.NullBesideObject(e) {
				// Named twice (a null beside an object of its name):
				// the call keeps no name, which no fresh call repeats.
				c.twice, c.name = true, ""
			}
			var name string
			if cu := e.Get("custom"); cu.IsObject() {
				// A custom tool's call: its name and text in "custom". A
				// null "custom" beside "function" (relays that serialize
				// unset fields send it) names nothing: taken for a custom
				// call's, the call was recorded without its name and no
				// fresh answer could repeat it.
				c.custom, argsPath = true, "custom.input"
				name = cu.Get("name").String()
			} else {
				name = e.Get("function.name").String()
			}
			switch {
			case c.twice || name == "":
			case c.name == "":
				c.name = name
			case len(c.args) == 0 && names != nil && names.NameGoesOn(c.name, name):
				// The name's next piece, as the client joins it: kept
				// as its first piece alone, the call matched no fresh
				// answer that names it whole, and the cut was not
				// recovered ("diverges").
				c.name += name
			}
			if a := e.Get(argsPath); a.Type == gjson.String {
				c.args = append(c.args, a.Raw[1:len(a.Raw)-1]...)
			} else if a.IsObject() || a.IsArray() {
				q, _ := json.Marshal(a.Raw)
				c.args = append(c.args, q[1:len(q)-1]...)
			}
			return true
		})
	}
	out.text, out.reasoning, out.refusal = decodeFragments(text), decodeFragments(reasoning), decodeFragments(refusal)
	return out
}

// nonEmptyValue reports an object or array with members: content given as
// parts, an audio delta.
func nonEmptyValue(v gjson.Result) bool {
	return (v.IsObject() || v.IsArray()) && len(strings.TrimSpace(v.Raw[1:len(v.Raw)-1])) > 0
}

// appendFragment appends the raw bytes of the JSON string s, escapes kept
// and quotes left off; anything but a string adds nothing.
func appendFragment(dst []byte, s gjson.Result) []byte {
	if s.Type != gjson.String || len(s.Raw) < 2 {
		return dst
	}
	return append(dst, s.Raw[1:len(s.Raw)-1]...)
}

// decodeFragments decodes the concatenation of raw JSON string fragments.
func decodeFragments(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	return gjson.Parse(`"` + string(raw) + `"`).String()
}

// toolCalls turns the received calls into what interceptors.Resume matches
// a fresh answer against, in the client's index order, arguments decoded
// (the concatenation, so that a surrogate pair split across fragments
// stays whole).
func toolCalls(calls []sentCall) []interceptors.ToolCall {
	out := make([]interceptors.ToolCall, 0, len(calls))
	for _, c := range calls {
		out = append(out, interceptors.ToolCall{Index: c.index, ID: c.id, Name: c.name, Arguments: decodeFragments(c.args), Custom: c.custom})
	}
	slices.SortFunc(out, func(a, b interceptors.ToolCall) int { return a.Index - b.Index })
	return out
}

// endStreamWithError tells the client why its stream stops: an OpenAI-style
// error event, never a silent cut and never a [DONE] after a cut.
func (s *Server) endStreamWithError(sw *sse.Writer, r *http.Request, err error) {
	if shutDown(r) {
		// Whatever failed, it failed because the drain's time was spent:
		// the client is still there and is told so.
		s.log.Warn("stream ended by the drain deadline after the first byte",
			"request_id", reqInfo(r).id)
		_ = sw.Data(errorJSON(shutdownError(0,
			"paygate: the server is shutting down (server.shutdown_timeout passed) and cut this answer short; send the request again")))
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	ae := &apiError{Type: "upstream_error", Message: "paygate: " + err.Error()}
	var se *failover.StreamError
	var ue *failover.UpstreamError
	switch {
	case errors.As(err, &se):
		// Fixed words (StreamError.Reason): the error's own text, for a
		// lost connection, names paygate's and the provider's IP
		// addresses and ports; the log line below keeps it.
		ae.Code, ae.Param = se.Cause, se.Param
		ae.Message = "paygate: provider " + se.Provider + ": " + se.Cause + ": " + se.Reason()
		var ur *unrecoveredError
		if errors.As(err, &ur) {
			ae.Message += "; not recovered: " + ur.why
		}
	case errors.As(err, &ue):
		// A later round (after a payment call) that no provider answered:
		// the same code the bot gets before the first byte.
		ae.Code, ae.Param = ue.Code, ue.Param
	case errors.Is(err, context.DeadlineExceeded):
		ae.Code = "timeout"
	}
	s.log.Warn("stream ended by an upstream failure after the first byte",
		"request_id", reqInfo(r).id, "err", err)
	// The message may quote the provider's in-stream error object.
	_ = sw.Data(errorJSON(s.redacted(ae)))
}

// recoveryRefused counts a recovery whose new provider refused the answer
// (a content filter): the answer ends there, with that refusal.
const recoveryRefused = "refused"

// endRefused ends a stream that a provider's content filter (or another
// refusal of the request itself, failover.StreamError.Refused) stopped after
// its first byte: the client gets the provider's own reason as the error
// event, as it would have before the first byte, and no other provider is
// asked to finish the answer (SPEC 5: a content filter is retried nowhere).
// first is the cut a recovery was taking over, if any.
func (s *Server) endRefused(sw *sse.Writer, r *http.Request, first, se *failover.StreamError) {
	if first != nil {
		s.countRecovery(first, recoveryRefused)
	}
	ae := &apiError{Type: se.Type, Code: se.Code, Param: se.Param, Message: se.Message}
	if ae.Type == "" {
		ae.Type = "invalid_request_error"
	}
	if ae.Code == "" {
		ae.Code = failover.CauseClientError
	}
	if ae.Message == "" {
		ae.Message = "provider " + se.Provider + " refused to continue the answer"
	}
	s.log.Warn("stream ended by the provider's refusal after the first byte",
		"request_id", reqInfo(r).id, "provider", se.Provider, "code", se.Code)
	_ = sw.Data(errorJSON(s.redacted(ae)))
}

var usageKey = []byte(`"usage"`)

// usageIn reads a chunk's usage object, if it has one (ok), and reports
// whether the chunk is nothing but usage (only: empty choices, the last
// chunk of a stream with include_usage). A chunk without a top-level usage
// gives its first choice's (inChoice): Moonshot (Kimi) streams its usage
// there, in the finish chunk. The usageValued pre-check keeps the common
// chunk free of any JSON scan: OpenAI's chunks, with include_usage (which
// paygate always asks for), carry "usage":null in every one.
func usageIn(data []byte) (u accounting.Usage, only, inChoice, ok bool) {
	if !usageValued(data) {
		return u, false, false, false
	}
	s := unsafe.String(unsafe.SliceData(data), len(data))
	res := gjson.GetMany(s, "choices.#", "usage")
	obj := res[1]
	if !obj.IsObject() {
		// A top-level "usage":null beside a choice's usage (the check
		// above found a key with a value somewhere).
		if obj.Exists() && bytes.Count(data, usageKey) < 2 {
			return u, false, false, false
		}
		if obj = gjson.Get(s, "choices.0.usage"); !obj.IsObject() {
			return u, false, false, false
		}
		inChoice = true
	}
	return ledgerUsage(interceptors.ReadUsage(obj)), res[0].Int() == 0, inChoice, true
}

// usageValued reports whether data may have a "usage" member whose value
// is not null: false only when every `"usage"` in it is followed by a
// colon and null, the only chunks usageIn has nothing to read in. It hops
// on 'u', rare in a chunk (a search led by the quote, a byte of every few
// in JSON, stopped at each of them). Inside a string a quote is escaped,
// so text never holds `"usage"`; a string value "usage" is not followed by
// a colon and lets the chunk through to gjson, as any doubt does.
func usageValued(data []byte) bool {
	text := unsafe.String(unsafe.SliceData(data), len(data))
	for off := 1; off < len(data); {
		i := bytes.IndexByte(data[off:], 'u')
		if i < 0 {
			return false
		}
		p := off + i
		off = p + 1
		if data[p-1] != '"' || len(data)-p < len(usageKey)-1 || string(data[p:p+len(usageKey)-1]) != string(usageKey[1:]) {
			continue
		}
		j := jsonscan.SkipSpace(text, p+len(usageKey)-1)
		if j < len(data) && data[j] == ':' {
			if j = jsonscan.SkipSpace(text, j+1); len(data)-j >= 4 && string(data[j:j+4]) == "null" {
				continue
			}
		}
		return true
	}
	return false
}

// countsNothing reports a round's usage that the ledger prices at 0
// whatever the model's price: no prompt and no completion tokens (none
// sent, every count 0, or a total alone, which names neither:
// accounting.Ledger.Round). No answer costs nothing, so such a round is
// unmetered.
func countsNothing(u accounting.Usage) bool {
	return u.PromptTokens == 0 && u.CompletionTokens == 0
}

// ledgerUsage is a round's usage as the provider reported it (read by
// interceptors.ReadUsage or the turn's capture), for the ledger.
func ledgerUsage(u interceptors.Usage) accounting.Usage {
	return accounting.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		TotalTokens: u.TotalTokens, CachedTokens: u.CachedTokens}
}

// botNames judges a tool call's name given in pieces by the names of the
// tools a bot's request offers (failover.Request.Names), read from its
// body when first asked: only events answering a non-stream request ask.
type botNames struct {
	body    []byte
	capture *interceptors.Capture
}

func (b *botNames) NameGoesOn(name, piece string) bool {
	if b.capture == nil {
		b.capture = interceptors.NewCapture(func(string) bool { return false })
		b.capture.BotNames(botToolNames(b.body)...)
	}
	return b.capture.NameGoesOn(name, piece)
}

// The causes sayNoUser tells a client's developer why its chat requests
// name no end user, each said once per client.
const (
	noUserHeader    = iota // a header whose name says OpenID, other than X-WeChat-OpenID
	noUserNotString        // the body's user, not a string
	noUserMetadata         // a metadata key that says OpenID
	noUserNone             // nothing of the kind
	noUserCauses
)

// sayNoUser logs, once for the client and each cause, that a chat request
// named no end user (no X-WeChat-OpenID header, no body user), so that it
// went without the payment tools: a bot's first integration that sent none,
// or sent the OpenID where paygate does not read it, got chat that never
// offered a payment, and nothing said so (SPEC 2.2 offers the tools only
// when the user is known). Not for a header sent empty, a visitor the
// bot's OAuth did not sign in. Once all is said for the client, it costs
// a map lookup.
func (s *Server) sayNoUser(c *config.Client, reqID string, h http.Header, chat *interceptors.Chat) {
	v, ok := s.noUserSaid.Load(c)
	if !ok {
		v, _ = s.noUserSaid.LoadOrStore(c, new([noUserCauses]atomic.Bool))
	}
	said := v.(*[noUserCauses]atomic.Bool)
	for i := range said {
		if !said[i].Load() {
			break
		}
		if i == len(said)-1 {
			return
		}
	}
	// The cause is found in what ReadChat located (views of the body, no
	// walk of it) and its text built only when it is said: a bot that
	// always sends the same mistake costs no allocation after its line.
	kind, header := noUserNone, ""
	for k := range h {
		if interceptors.OpenIDLike(k) {
			kind, header = noUserHeader, k
			break
		}
	}
	var u, meta gjson.Result
	if kind == noUserNone {
		if raw := chat.RawUser(); raw != "" {
			u = gjson.Parse(raw)
		}
		if u.Exists() && u.Type != gjson.String && u.Type != gjson.Null {
			kind = noUserNotString
		}
	}
	if kind == noUserNone {
		gjson.Parse(chat.RawMetadata()).ForEach(func(k, _ gjson.Result) bool {
			if interceptors.OpenIDLike(k.Str) {
				kind, meta = noUserMetadata, k
				return false
			}
			return true
		})
	}
	if said[kind].Swap(true) {
		return
	}
	var cause string
	switch kind {
	case noUserHeader:
		cause = "header " + header + " is not read as the end user: paygate reads X-WeChat-OpenID (its value is hashed toward the provider, but names no paying user)"
	case noUserNotString:
		cause = `the body's "user" is ` + jsonKind(u) + `, not a string: paygate reads a string`
	case noUserMetadata:
		cause = "metadata." + meta.Str + " names no paying user (paygate hashes its value toward the provider): send the OpenID in the X-WeChat-OpenID header"
	default:
		cause = `no X-WeChat-OpenID header and no user in the body: send the user's OpenID in X-WeChat-OpenID`
	}
	s.log.Info("payment tools not offered: the chat request names no end user (logged once for this client and cause)",
		"request_id", reqID, "client", c.Name, "cause", cause)
}

// jsonKind names a JSON value's kind as OpenAI's invalid_type errors do.
func jsonKind(v gjson.Result) string {
	switch {
	case v.IsObject():
		return "an object"
	case v.IsArray():
		return "an array"
	case v.Type == gjson.Number:
		return "a number"
	}
	return "a boolean"
}

// metadataOpenID is the string value of the first key that says OpenID
// (interceptors.OpenIDLike) of a body's metadata, raw as the read located it (a view of
// the body, so the body is not walked again), "" for none.
func metadataOpenID(metadata string) string {
	if metadata == "" {
		return ""
	}
	var v string
	gjson.Parse(metadata).ForEach(func(k, val gjson.Result) bool {
		if val.Type == gjson.String && interceptors.OpenIDLike(k.Str) {
			v = val.Str
		}
		return v == ""
	})
	if v == "" {
		return ""
	}
	// The user outlives the body's reading (the affinity, the request
	// toward the provider): its own copy, made only when there is one.
	return strings.Clone(v)
}
