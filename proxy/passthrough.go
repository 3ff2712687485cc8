package proxy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/httpwire"
	"github.com/paygate/paygate/internal/jsonscan"
)

// handlePassthrough forwards every other /v1/* path (embeddings, moderations,
// …) to the targets of the body's model with the same failover, moving only
// between targets that serve the same upstream model: vectors of two models
// never mix. The model and the end user's identifiers are read from a JSON
// body or from a multipart/form-data one (image edits, audio), alike.
func (s *Server) handlePassthrough(w http.ResponseWriter, r *http.Request) {
	if !forwardedMethod(r.Method) {
		w.Header().Set("Allow", forwardedMethods)
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
			Message: "paygate: " + r.Method + " is not forwarded; the OpenAI API is served with " + forwardedMethods})
		return
	}
	path, ok := upstreamPath(r.URL)
	if !ok {
		writeError(w, badRequest("paygate: the path "+r.URL.EscapedPath()+
			" is not forwarded: it has a '.' or '..' segment (with or without ';' parameters), one of ';' parameters alone, an escaped slash, a backslash or an escaped NUL, escaped once or more (%252e%252e)"))
		return
	}
	if s.holdsSecret(path) {
		// The bot's tool put its key in the URL as well (?api_key=,
		// ?key=): forwarded, it reached the provider and its access
		// logs (SPEC 5: the client's key never leaves).
		writeError(w, badRequest("paygate: the URL holds a secret of paygate's config (a client key): send the client key in the Authorization header alone; no provider may get it"))
		return
	}
	// The path as routed, and as a server in front of the provider that
	// decodes before it does reads it (heldDecoded: up to three decodings
	// in all): /v1/%256Dodels is /v1/models there.
	for p, n := r.URL.Path, 1; ; n++ {
		if legacyEngines(p) {
			writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
				Message: "paygate: " + r.URL.Path + " is not forwarded: the legacy engines API names a provider's own models; the models are paygate's config, served at /v1/models"})
			return
		}
		if why := misjoinedChat(p); why != "" {
			writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
				Message: "paygate: " + r.URL.Path + " is not forwarded: " + why + "; chat completions are served at /v1/chat/completions (an SDK's base URL ends in /v1, and the SDK appends /chat/completions)"})
			return
		}
		if modelsVariant(p) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.modelsReadOnly(w, r)
				return
			}
			writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
				Message: "paygate: " + r.URL.Path + " is not forwarded: the models are paygate's config, served at /v1/models"})
			return
		}
		d := lenientUnescape(p)
		if n == 3 || d == p {
			break
		}
		p = d
	}
	if aerr := s.forwardAllowed(reqInfo(r).client, r.Method, r.URL.Path); aerr != nil {
		writeError(w, aerr)
		return
	}
	var held bodyHeld // of the budget of bodies in flight, given back at the end
	defer func() { s.bodies.give(held) }()
	body, aerr := s.readBody(w, r, &held)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if enc := foreignJSON(body); enc != "" {
		// paygate reads UTF-8 only; a provider's JSON parser may read this
		// one (Python's json.loads detects BOMs and UTF-16/32), and its
		// "user" would reach it unread.
		writeError(w, badRequest("paygate: the body is a JSON object in "+enc+
			", which is not forwarded: send JSON as UTF-8 without a byte-order mark"))
		return
	}
	model := ""
	user := openID(r.Header) // the end user; a JSON body's "user" may name one
	ct := r.Header.Get("Content-Type")
	if len(body) > 0 && urlEncodedForm(ct) {
		// No OpenAI endpoint takes one, and a provider's framework would
		// read its "user" field unread by paygate.
		writeError(w, badRequest("paygate: an application/x-www-form-urlencoded body is not forwarded: send JSON, or multipart/form-data for file uploads"))
		return
	}
	boundary, isForm, ferr := formBoundary(ct)
	if len(body) > 0 && ferr != nil {
		writeError(w, badRequest("paygate: "+ferr.Error()))
		return
	}
	if len(body) > 0 && isForm {
		// A form's "model" and "user" fields are read and rewritten as
		// the JSON members are below, and its end user is the request's,
		// kept from the query as a JSON body's is: without it, an OpenID
		// in ?user= reached the provider as sent.
		if body, model, user, aerr = s.passthroughForm(r, body, boundary); aerr != nil {
			writeError(w, aerr)
			return
		}
	} else if len(body) > 0 && jsonBody(ct, body) {
		// A repeated member paygate routes by or rewrites (model, user,
		// safety_identifier, …) or drop_fields member is refused, as on
		// chat completions: paygate would route and rewrite by the first,
		// the provider read the last.
		pt, err := interceptors.ReadPassthrough(body, s.dropFields...)
		if err != nil {
			writeError(w, requestError("paygate: ", err))
			return
		}
		// "stream": true (the Responses API, legacy completions) is the
		// provider's to read: its event stream is piped as any answer
		// that is not JSON (failover.Response.Piped).
		model = pt.Model
		// The end user's OpenID never reaches a provider (SPEC 2.2), on
		// any path: "user", "safety_identifier", "prompt_cache_key" and a
		// metadata value naming the user are the members paygate rewrites
		// here (interceptors/identity.go).
		user = endUser(r.Header, pt.User)
		if user == "" {
			// A metadata OpenID of a bot that names its user nowhere
			// else, as on chat completions (metadataOpenID).
			user = metadataOpenID(pt.RawMetadata())
		}
		if user == "" {
			// Named by the query alone (the stored completions' filter,
			// queryWithoutUser hashes it there): taken out of the text too.
			user = queryMetadataOpenID(path)
		}
		if user == "" {
			// Named in a header of another name alone (X-OpenID), as
			// on chat completions (otherOpenIDHeader).
			user = otherOpenIDHeader(r.Header)
		}
		up := interceptors.Upstream{Client: reqInfo(r).client.Name, EndUser: user, Privacy: s.forwardPrivacy(user)}
		body = withoutUnionID(r.Header, interceptors.RewritePassthrough(body, pt, up), up)
		if model != "" && !s.up.HasModel(model) {
			writeError(w, modelNotFound(model))
			return
		}
	}
	if s.holdsUser(ct, user) || s.holdsUser(ct, unionIDHeader(r.Header)) {
		// Its parameters (a form's boundary) frame the body: not
		// rewritten, and not sent with the end user in it (SPEC 2.2).
		writeError(w, badRequest("paygate: the Content-Type holds the end user's id, which no provider may get: send the body's media type without it"))
		return
	}
	if user == "" {
		// The stored completions' filter of such a bot: its chats carry
		// the hash of the metadata OpenID, which it filters them by.
		user = queryMetadataOpenID(path)
	}
	if user == "" {
		user = otherOpenIDHeader(r.Header) // a body paygate does not read, or none
	}
	// The UnionID a header names (X-WX-UNIONID), taken out of the body
	// (withoutUnionID), is taken out of the URL as the end user is.
	union := unionIDHeader(r.Header)
	if union == user || !interceptors.UserTakenAnywhere(union) {
		union = "" // none, taken out as the end user, or too short to be taken
	}
	if p, _, _ := strings.Cut(path, "?"); s.pathHoldsUser(p, user) || union != "" && s.pathHoldsUser(p, union) {
		// The path names the object: no hash can stand in the user's
		// place there, and sent as written the provider and its access
		// logs got the OpenID (SPEC 2.2).
		writeError(w, badRequest("paygate: the URL's path holds the end user's id, which no provider may get: name the object by the id the provider gave it"))
		return
	}
	path = s.queryWithoutUser(path, reqInfo(r).client.Name, user)
	if union != "" {
		path = s.queryWithoutID(path, reqInfo(r).client.Name, union)
	}
	// A call that creates something is not sent twice (a batch or a job
	// made on two accounts, each billed): see failover.Replayable.
	once := !failover.Replayable(r.Method, path, body)
	resp, err := s.up.Open(r.Context(), &failover.Request{
		Model:             model,
		Method:            r.Method,
		Path:              path,
		Body:              body,
		ContentType:       ct,
		Accept:            s.acceptFor(r.Header, user),
		SameUpstreamModel: true,
		AtMostOnce:        once,
		// A conversation forwarded (the Responses API, a legacy
		// completion) stays on the target it drew under the weighted
		// strategy, as a chat completion does (README models[].strategy).
		Affinity: conversationAffinity(reqInfo(r).client.Name, user, cmp.Or(httpwire.Field(r.Header, "X-Paygate-Session"), user)),
	})
	if err != nil {
		s.failTurn(w, r, err, nil)
		if generation(r, model) {
			s.accountTried(r.Context(), triedOf(err))
		}
		return
	}
	defer resp.Close()
	if generation(r, model) {
		// Attempts that failed before this one (a Responses stream's
		// response.failed) were billed too.
		defer s.accountTried(r.Context(), resp.Tried)
	}
	s.setPaygateHeaders(w.Header(), resp)
	if resp.Piped() {
		// Not JSON. A generation streamed as events (a Responses API
		// stream, a legacy completion, a transcription) has its usage in
		// its last event: the relay keeps the stream's tail, and the
		// usage found there is counted once the relay has ended, whole,
		// with the client gone, or cut by the provider: a usage paygate
		// read is the provider's bill, for an answer it finished, as a
		// chat round's whose client left is (turn.relayRound), or for
		// what it sent before its cut (vLLM's continuous_usage_stats puts
		// the running usage on every event), as a chat attempt's is.
		// Counted only on a stream that reached the client whole, a bot
		// that closed its connection at the last event left the LLM
		// spend short; counted before the abort that ends a cut stream,
		// not after it: the abort skipped it.
		// A stream labelled text/plain, or not at all, is read as one
		// (streamAsked): its usage counts as a labelled one's.
		events := isEventStream(resp.Header.Get("Content-Type")) || streamAsked(body)
		var tail *usageTail
		if generation(r, model) && s.ledger != nil && events {
			tail = tailBufs.Get().(*usageTail)
			defer tailBufs.Put(tail)
			tail.reset()
		}
		cut, whole := s.pipeUpstreamBody(w, r, resp, tail, once, events)
		if tail != nil {
			u := tail.usage()
			if !u.IsObject() {
				// No usage came, the stream ended whole, cut or left by
				// its client: the call is recorded with no token, as a
				// chat stream so ended is (its round priced at no
				// usage): the provider bills it, the count unknown.
				u = noUsage
			}
			s.accountUsage(r.Context(), resp, u, whole)
		}
		if cut {
			// The client is still reading and must see an incomplete
			// answer (pipeUpstreamBody).
			panic(http.ErrAbortHandler)
		}
		return
	}
	resp.Body = s.maskAnswerError(resp.Body)
	writeUpstreamBody(w, resp)
	if generation(r, model) {
		// The usage a client reads: a null one before it (a relay's) hid
		// the provider's from gjson's first (jsonscan.SetMember).
		u, _ := jsonscan.SetMember(unsafe.String(unsafe.SliceData(resp.Body), len(resp.Body)), "usage")
		metered := tokenMetered(path)
		if !u.IsObject() && !once && metered {
			// No usage (a relay that drops it, or nulls it): the call is
			// recorded with no token, as a chat answer so answered is
			// and a forwarded stream so ended: the provider bills it,
			// the count unknown. A call that creates something (once:
			// a background Response, whose usage its retrieval answers;
			// an assistant, a fine-tuning job) is no generation's
			// answer, and no call; nor is an answer of an endpoint that
			// counts no tokens (tokenMetered): a moderation.
			u = noUsage
		}
		s.accountUsage(r.Context(), resp, u, metered)
	}
}

// modelsVariant reports whether a decoded path that the models routes did
// not take is one a provider's server may still read as under /v1/models:
// its first segment below /v1 is "models" in another case (ASP.NET and
// Azure route without regard to case) or with ";" parameters (Tomcat,
// Jetty and Spring drop them). Forwarded, DELETE /v1/Models/{id} deleted a
// fine-tuned model of the operator's account as DELETE /v1/models/{id}
// did before the models routes took it (Handler).
func modelsVariant(path string) bool {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/"), "/")
	seg, _, _ = strings.Cut(seg, ";")
	return strings.EqualFold(seg, "models")
}

// legacyEngines reports whether a decoded path is under OpenAI's legacy
// engines API (/v1/engines, in any case or with ";" parameters, as
// modelsVariant reads /v1/models), the old name of /v1/models whose paths
// name an upstream model. Forwarded, GET /v1/engines answered the first
// model's provider's own list, every model of the operator's account, and
// POST /v1/engines/{model}/completions ran a model of the bot's choosing
// that no config model routes to: none is forwarded, with any method.
func legacyEngines(path string) bool {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/"), "/")
	seg, _, _ = strings.Cut(seg, ";")
	return strings.EqualFold(seg, "engines")
}

// misjoinedChat says how a decoded path under /v1 came from a base URL
// joined wrong ("" for one that did not): /v1 given twice (/v1/v1/…, a
// tool that appends /v1 to the base URL itself), a chat completions path
// other than /v1/chat/completions (the base URL already ended in
// /chat/completions, which the SDK appended again), or that path with a
// trailing slash. Forwarded as any /v1 path, such a chat went to the
// provider without the payment tools or the user's payment state: the
// bot's signed-in users got answers, a payment call of the model's raw,
// and could never pay, with nothing saying why.
func misjoinedChat(path string) string {
	const chat = "/chat/completions"
	rest := strings.TrimPrefix(path, "/v1/")
	seg, _, _ := strings.Cut(rest, "/")
	seg, _, _ = strings.Cut(seg, ";")
	trimmed := strings.TrimSuffix(rest, "/")
	switch {
	case strings.EqualFold(seg, "v1"):
		return "the base URL holds /v1 twice"
	case strings.EqualFold(rest, chat[1:]+"/"):
		return "it has a trailing slash"
	case len(trimmed) > len(chat) && strings.EqualFold(trimmed[len(trimmed)-len(chat):], chat):
		return "the base URL already holds /chat/completions"
	}
	return ""
}

// queryMetadataOpenID is the value of the first query parameter
// metadata[<name>] whose name says OpenID (interceptors.OpenIDLike), as the provider's
// server decodes it, "" for none: OpenAI's stored completions filter of a
// bot that tags its chats' metadata with the OpenID and names its user
// nowhere else. Those chats reached the provider with the user's hash in
// the OpenID's place (metadataOpenID), and the filter must name the same.
func queryMetadataOpenID(path string) string {
	_, q, ok := strings.Cut(path, "?")
	if !ok {
		return ""
	}
	for pair := range strings.SplitSeq(q, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if metadataOpenIDParam(lenientUnescape(k)) {
			if v = lenientUnescape(v); v != "" {
				return v
			}
		}
	}
	return ""
}

// metadataOpenIDParam reports whether a decoded query parameter's or form
// field's name is metadata[<name>] with a name that says OpenID
// (interceptors.OpenIDLike), or one within it: a list's
// metadata[wx_openid][], a nested metadata[sharer][openid][0].
func metadataOpenIDParam(k string) bool { return metadataParam(k, interceptors.OpenIDLike) }

// metadataUserIDParam is metadataOpenIDParam for any id of a user that
// no provider gets (interceptors.UserIDKeyLike: a UnionID too), as a JSON
// body's metadata member is hashed.
func metadataUserIDParam(k string) bool { return metadataParam(k, interceptors.UserIDKeyLike) }

// metadataParam reports whether k is metadata[<name>], or a name within it,
// with a name that like takes; "metadata" in any case, as identityMember
// reads a name.
func metadataParam(k string, like func(string) bool) bool {
	head, name, ok := strings.Cut(k, "[")
	if !ok || !strings.EqualFold(head, "metadata") || !strings.HasSuffix(name, "]") {
		return false
	}
	for seg := range strings.SplitSeq(name[:len(name)-1], "][") {
		if like(seg) {
			return true
		}
	}
	return false
}

// forwardedMethods are the methods a passthrough request is forwarded
// with: the OpenAI API's, and OPTIONS.
const forwardedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// forwardedMethod reports whether a passthrough request's method is one
// of forwardedMethods. Any other goes with the operator's provider key to
// a server that no OpenAI endpoint is on: TRACE (and IIS's TRACK), which a
// server in front of a provider (Apache's TraceEnable) answers by echoing
// the request it got, headers and all, handed any bot that key; WebDAV's
// and made-up methods reach only what the provider's front serves besides
// its API.
func forwardedMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// usageTailSize is how much of a streamed generation's end is kept to find
// its usage in: the usage comes in the last event (a Responses stream's
// response.completed names it near the end of the response object, after
// its output), and the end of an event is read by the time the stream ends.
const usageTailSize = 16 << 10

// usageTail keeps the last usageTailSize bytes relayed; cut says bytes
// before them were dropped, so that the first line held may be the end of
// a longer one.
type usageTail struct {
	b    []byte
	cut  bool
	data []byte // an event's data, joined (usage)
}

var tailBufs = sync.Pool{New: func() any { return &usageTail{b: make([]byte, 0, usageTailSize)} }}

// reset readies a pooled tail for a stream.
func (t *usageTail) reset() { t.b, t.cut = t.b[:0], false }

func (t *usageTail) add(p []byte) {
	if len(p) >= usageTailSize {
		t.cut = t.cut || len(t.b) > 0 || len(p) > usageTailSize
		t.b = append(t.b[:0], p[len(p)-usageTailSize:]...)
		return
	}
	if over := len(t.b) + len(p) - usageTailSize; over > 0 {
		t.cut = true
		t.b = t.b[:copy(t.b, t.b[over:])]
	}
	t.b = append(t.b, p...)
}

// usage is the usage of the stream's last event that reports one: the
// "usage" member of its data's top-level object (legacy completions,
// transcriptions), or else of its "response" (the Responses API's
// response.completed, .incomplete and .failed carry it there). It is
// found by its place in the JSON, not by its name alone: a Responses
// event echoes the bot's metadata after the usage, and a metadata key
// "usage" (deeper down) hid the call's spend when the last "usage"
// written was taken; text the model wrote is inside a string. An event
// after the last with a usage (a provider's trailing filter results) does
// not hide it. The last event may be longer than the tail
// (response.completed repeats the whole output ahead of its usage): its
// data is read from its end (dataUsage), which the tail holds.
//
// Only an event whose blank line was read counts, as a client dispatches
// none before it: the end of one the stream lost (the provider cut it,
// the client left while it was relayed) is no end of its JSON, and read
// from there a tool schema's property named "usage"
// (response.tools[].parameters.properties.usage) passed for the member of
// the object, a usage of 0 tokens.
func (t *usageTail) usage() gjson.Result {
	lines := sseLines(t.b)
	end := len(lines)
	for end > 0 && len(lines[end-1]) > 0 {
		end-- // the last event, not ended
	}
	for end > 0 {
		if len(lines[end-1]) == 0 {
			end-- // the blank line that ends an event
			continue
		}
		start := end - 1
		for start > 0 && len(lines[start-1]) > 0 {
			start--
		}
		t.data = eventData(t.data[:0], lines[start:end], start == 0 && t.cut)
		if u, ok := dataUsage(t.data); ok {
			return u
		}
		end = start
	}
	return gjson.Result{}
}

// sseLines splits an event stream's bytes at its line ends (CRLF, LF or
// CR), the ends left out.
func sseLines(b []byte) [][]byte {
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			return append(lines, b)
		}
		lines = append(lines, b[:i])
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
	}
	return lines
}

// eventData appends to dst the data of an event's lines, its data lines'
// values joined by line feeds. A first line that is the end of a longer
// one (cut, the tail having dropped its start) is taken as data: the one
// line longer than the tail is a long event's data.
func eventData(dst []byte, lines [][]byte, cut bool) []byte {
	n := 0
	for i, l := range lines {
		v, ok := bytes.CutPrefix(l, []byte("data:"))
		if i == 0 && cut {
			v, ok = l, true
		}
		if !ok {
			continue
		}
		if n > 0 {
			dst = append(dst, '\n')
		}
		n++
		dst = append(dst, bytes.TrimPrefix(v, []byte(" "))...)
	}
	return dst
}

// dataUsage finds the "usage" member of an event's JSON data, d, that is
// a member of the top-level object or, failing one, of its "response";
// ok reports one found. d is read backwards from its end, so that it may
// lack its start (an event longer than the tail): a quote is a string's
// end or start unless an odd number of backslashes comes before it,
// inside a string or out, so strings are skipped whole and their text is
// never taken for a key; each closing bracket is a level down. A string
// followed by a colon is a key. The reading ends at the top-level object's
// opening brace, or at the start of d. A usage one level down is taken
// once the key of the object holding it is read, and is "response"; with
// d starting inside that object (its start left the tail), it is taken:
// the one object a Responses event's last members hold is "response".
// d must end where the JSON does (usageTail.usage): the levels are counted
// from there.
func dataUsage(d []byte) (u gjson.Result, ok bool) {
	var nested gjson.Result // a usage one level down, the one last in d
	// owner: the key read next names the object that holds nested;
	// owned: it was "response".
	owner, owned := false, false
	depth, colon := 0, -1 // colon: the ':' after the string read next, if only spaces are between
	for i := len(d) - 1; i >= 0; i-- {
		c := d[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case ':':
			colon = i
			continue
		}
		key := colon
		colon = -1
		switch c {
		case '}', ']':
			depth++
		case '{', '[':
			if depth--; depth <= 0 {
				return nested, nested.Exists()
			}
			owner = depth == 1 && nested.Exists() && !owned
		case '"':
			j := stringStart(d, i)
			if j < 0 {
				return nested, nested.Exists() // d starts inside this string
			}
			if key >= 0 {
				name := d[j+1 : i]
				switch {
				case depth == 1 && keyIs(name, "usage"):
					return memberValue(d[key+1:]), true
				case depth == 1 && owner:
					// Another member's usage (a tool's, an item's) is
					// none: the search goes on before it.
					owner, owned = false, keyIs(name, "response")
					if !owned {
						nested = gjson.Result{}
					}
				case depth == 2 && !nested.Exists() && keyIs(name, "usage"):
					nested = memberValue(d[key+1:])
				}
			}
			i = j
		}
	}
	return nested, nested.Exists()
}

// keyIs reports whether a raw key, as its JSON text spells it, is key: a
// key spelled with escapes ("us\u0061ge") is read as gjson and the SDKs
// read it (jsonscan.KeyName), as the key itself. Compared as spelled, a
// provider's or relay's escaped usage key hid the call's usage, which the
// bot's SDK read, from the ledger.
func keyIs(raw []byte, key string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == key
	}
	return jsonscan.KeyName(string(raw)) == key
}

// stringStart is the index of the quote that opens the JSON string whose
// closing quote is d[end], or -1 when d starts inside the string.
func stringStart(d []byte, end int) int {
	for j := end - 1; j >= 0; j-- {
		if d[j] != '"' {
			continue
		}
		k := j
		for k > 0 && d[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
	}
	return -1
}

// memberValue is the JSON value at the start of rest, a member's value
// and what follows it. As a member of an object of its own, gjson reads
// exactly the value (its Parse would keep the rest in Raw).
func memberValue(rest []byte) gjson.Result {
	return gjson.GetBytes(append([]byte(`{"v":`), rest...), "v")
}

// isEventStream reports whether a Content-Type is text/event-stream.
func isEventStream(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// streamAsked reports a JSON body with a top-level "stream" member that
// is true, any one of them, its key in any case (a provider's parser may
// read the last, or match keys as Go's encoding/json does): its answer is
// an event stream, which go-openai reads as one whatever its label. A
// provider that labelled it text/plain or application/octet-stream, or not
// at all, had its error events piped unmasked, the key they quoted with
// them. Read only for a piped answer that is not labelled an event stream.
func streamAsked(body []byte) (asked bool) {
	gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body))).ForEach(func(k, v gjson.Result) bool {
		asked = v.Type == gjson.True && strings.EqualFold(k.Str, "stream")
		return !asked
	})
	return asked
}

// tokenMetered reports a forwarded path (upstreamPath's) whose answers
// count the tokens their provider bills: legacy completions, embeddings,
// the Responses API. A 2xx JSON answer there without a usage, or with one
// that names no prompt or completion tokens, is unmetered (accountUsage).
// Elsewhere no token count is missing: a moderation (not billed), an image
// of dall-e, a whisper transcription (its seconds), a reranking (a JSON
// array, or a total alone) answer so by design; recorded and warned of as
// a provider or relay that drops the usage, the operator was told to check
// a setting that was right.
func tokenMetered(path string) bool {
	p, _, _ := strings.Cut(path, "?")
	switch p {
	case "/completions", "/embeddings", "/responses":
		return true
	}
	return false
}

// generation reports whether a forwarded call is one the provider bills by
// the usage its answer carries: a POST whose body (JSON or form) names a
// model, as every generation does (embeddings, completions, the Responses
// API, transcriptions). A stored object carries the usage of the call that
// made it, and its retrieval (GET /v1/responses/{id}), deletion,
// cancellation (POST …/cancel, without a body) or metadata update (POST
// /v1/chat/completions/{id}) answers the object again: counted, each poll
// billed the generation once more. A call without a model is not
// accounted either: nothing in it says which model's price its usage
// would be (it goes to the first model's targets); the one generation
// that may name none, a Responses call taking its model from a stored
// prompt, is left out rather than priced as another model.
func generation(r *http.Request, model string) bool {
	return r.Method == http.MethodPost && model != ""
}

// accountUsage accounts the usage of a forwarded generation (generation),
// after its answer left, as a chat round's (SPEC 9: tokens and cost by
// provider and model): an embeddings call is billed like one. Only a 2xx
// answer counts, an error's usage being no bill; usage is the "usage"
// member of a JSON answer (read whole: failover pipes every other answer),
// or of a streamed one's last event (usageTail). Its counts come under the
// chat names (prompt_tokens, completion_tokens: embeddings, completions;
// the cached prompt tokens wherever a chat usage names them:
// interceptors.ReadUsage) or the Responses API's (input_tokens,
// output_tokens, input_tokens_details.cached_tokens), with total_tokens
// (output some providers count only there: accounting.Usage), priced by
// the target's upstream model. The call is added to the replica's LLM spend
// but is no turn. An answer that came whole (whole; for a JSON answer,
// one of an endpoint that counts tokens: tokenMetered) with a usage that
// counts nothing the ledger prices, or none, is unmetered, as a chat
// answer is (Server.unmetered: its first of each provider and model is
// logged); one cut, or left by its client, before its usage came is not:
// its usage never came.
func (s *Server) accountUsage(ctx context.Context, resp *failover.Response, usage gjson.Result, whole bool) {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return
	}
	if s.accountCall(ctx, resp.Provider, resp.Model, usage) && whole {
		s.unmetered(ctx, resp)
	}
}

// noUsage is a usage object that counts nothing: a forwarded stream that
// ended, whole or not, or a generation answered as JSON, without a usage
// is accounted with it (accountCall).
var noUsage = gjson.Parse("{}")

// accountTried accounts the usage of a forwarded generation's attempts
// that failed with one their provider billed (failover.Attempt.Usage: a
// Responses stream whose first event is response.failed, which OpenAI
// bills), each to its provider and target, as a chat round's are
// (accountRefused): the attempt failed over, or ended the round, and its
// tokens were left out of the LLM spend. One its provider cut before any
// usage came (cutBeforeUsage) is recorded with no token, as a forwarded
// stream cut mid-answer is.
func (s *Server) accountTried(ctx context.Context, tried []failover.Attempt) {
	for _, a := range tried {
		switch {
		case a.Usage != nil:
			s.accountCall(ctx, a.Provider, a.Model, gjson.ParseBytes(a.Usage))
		case cutBeforeUsage(a):
			s.accountCall(ctx, a.Provider, a.Model, noUsage)
		}
	}
}

// accountCall accounts a forwarded call's usage object, named as chat's
// or as the Responses API's (accountUsage), to provider and its upstream
// model. nothing reports a call accounted whose usage counts nothing the
// ledger prices (countsNothing).
func (s *Server) accountCall(ctx context.Context, provider, model string, usage gjson.Result) (nothing bool) {
	if s.ledger == nil || !usage.IsObject() {
		return false
	}
	res := gjson.GetMany(usage.Raw, "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "total_tokens",
		"input_tokens_details.cached_tokens")
	var u accounting.Usage
	if res[0].Exists() || res[1].Exists() {
		u = ledgerUsage(interceptors.ReadUsage(usage))
	} else {
		u = accounting.Usage{PromptTokens: res[2].Int(), CompletionTokens: res[3].Int(), TotalTokens: res[4].Int(), CachedTokens: res[5].Int()}
	}
	s.ledger.Call(s.ledger.Round(ctx, provider, model, u))
	return countsNothing(u)
}

// pipeBufs are the buffers pipeUpstreamBody relays bodies through.
var pipeBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pipeUpstreamBody relays a passthrough answer that failover handed over at
// its head (failover.Response.Piped): a file's content, speech audio, a
// JSON Lines file, an event stream (a streamed Responses API call, legacy
// completion or transcription). Each read reaches the client as it comes, through one
// buffer, whatever the body's size, with the provider's Content-Type,
// Content-Encoding and Content-Length: the bytes are not touched, but for
// an event stream's comment lines (dropped) and error events (their
// secrets masked, a line held until its end: sseErrorMask). Once the
// head is sent nothing fails over any more; a body the provider cuts short
// ends the connection without the body's proper end (a short
// Content-Length, no last chunk), so that the client sees an incomplete
// answer, never one that looks whole; but an event stream cut after its
// last event (sseErrorMask.ended, failover.Response.EndsWhole) is whole,
// and ends as one.
//
// An event stream the drain deadline ends between two events ends with
// the server_shutdown error event instead, and properly; its message
// invites a resend unless the call is sent at most once (once: a
// background Response, failover.Replayable). One it ends after its last
// event is whole, and ends as one, nothing added.
//
// tail, when not nil, is given every byte read from the provider, those
// the client left before included. cut reports a body the provider (or the
// drain deadline) cut with the client still reading: the caller must end
// the connection without the body's proper end (http.ErrAbortHandler), so
// that the client sees an incomplete answer, and may first account what
// it read. whole reports a body that came to its end (or, ended by the
// drain deadline, after its last event): not cut, nor left by the client.
//
// events says the answer is read as an event stream, its error events
// masked: one so labelled, or the answer to a call that asked for one
// whatever its Content-Type (streamAsked).
func (s *Server) pipeUpstreamBody(w http.ResponseWriter, r *http.Request, resp *failover.Response, tail *usageTail, once, events bool) (cut, whole bool) {
	h := w.Header()
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if ce := resp.Header["Content-Encoding"]; len(ce) > 0 {
		// The bytes go on as they came (a CDN's gzip of a file's
		// content): without their coding they are a corrupt file.
		h["Content-Encoding"] = ce
	}
	// An event stream's comment lines are dropped on the way and its error
	// events have their secrets masked (sseErrorMask), so its length is
	// not the provider's.
	var errMask *sseErrorMask
	if events {
		errMask = &sseErrorMask{redact: s.redact}
		// As a chat stream's (setStreamHeaders): the provider's is not
		// passed on (SPEC 5), and without one a cache or buffering proxy
		// between the bot and paygate may hold or store the stream; nor
		// may nginx in front, which buffers answers by default.
		h["Cache-Control"] = noCache
		h["X-Accel-Buffering"] = noBuffering
	}
	if n := resp.ContentLength(); n >= 0 && resp.StatusCode != http.StatusNoContent && errMask == nil {
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	idle := resp.IdleTimeout()
	buf := pipeBufs.Get().(*[]byte)
	defer pipeBufs.Put(buf)
	// send relays p; false when the client left or stopped reading.
	send := func(p []byte) bool {
		if len(p) == 0 {
			return true
		}
		if tail != nil {
			tail.add(p)
		}
		// A bot that stops reading must not hold the provider's
		// connection and this goroutine: each write gets as long as the
		// provider gets for its next bytes. On a timeout the relay ends;
		// the caller's resp.Close closes the provider's connection, its
		// body unread.
		_ = rc.SetWriteDeadline(time.Now().Add(idle))
		_, werr := w.Write(p)
		if werr == nil {
			werr = rc.Flush()
		}
		if werr != nil {
			if errors.Is(werr, os.ErrDeadlineExceeded) {
				s.log.Warn("passthrough answer ended: the client read nothing for the idle timeout",
					"request_id", reqInfo(r).id, "provider", resp.Provider, "idle", idle)
			}
			return false
		}
		return true
	}
	for {
		n, err := resp.Read(*buf)
		p := (*buf)[:n]
		if errMask != nil {
			p = errMask.next(p)
			// A cut after the stream's last event loses nothing: failover
			// reads it as the body's end (EndsWhole).
			resp.EndsWhole(errMask.ended())
		}
		if !send(p) {
			return // the client left, or stopped reading
		}
		if err == io.EOF {
			if errMask != nil && !send(errMask.end()) {
				return
			}
			// The connection may serve the bot's next request.
			_ = rc.SetWriteDeadline(time.Time{})
			return false, true
		}
		if err != nil {
			if r.Context().Err() != nil && !shutDown(r) {
				return // the client left
			}
			if shutDown(r) && errMask != nil && errMask.ended() {
				// The drain's time ran out after the stream's last event:
				// the answer is whole and ends as one, nothing added (the
				// OpenAI SDKs raise an error event even after a
				// response.completed), its usage accounted. failover
				// reads the caller's cancellation as no end (EndsWhole).
				_ = rc.SetWriteDeadline(time.Time{})
				return false, true
			}
			if shutDown(r) && errMask != nil && errMask.between() {
				// The drain's time ran out between two events: the
				// client is still reading and is told why the stream
				// stops, with the error event a chat stream ends with
				// (endStreamWithError), which the OpenAI SDKs raise
				// from any stream, and a proper end. Cut, the SDKs
				// raised it as a lost connection.
				s.log.Warn("forwarded stream ended by the drain deadline after the first byte", "request_id", reqInfo(r).id)
				msg := "paygate: the server is shutting down (server.shutdown_timeout passed) and cut this answer short; send the request again"
				if once {
					// A background Response goes on at the provider: sent
					// again, it is made (and billed) twice.
					msg = "paygate: the server is shutting down (server.shutdown_timeout passed) and cut this answer short; " +
						"the provider may go on with the request: check before sending it again"
				}
				send(append(append([]byte("data: "), errorJSON(shutdownError(0, msg))...), "\n\n"...))
				return
			}
			// The provider cut the body, or the drain deadline did: the
			// client is still reading and must see an incomplete answer,
			// the lines of the event cut short as they came.
			s.log.Warn("passthrough answer cut after its head", "request_id", reqInfo(r).id, "err", err)
			if errMask != nil {
				send(errMask.cut())
			}
			return true, false
		}
	}
}

// modelNotFound is the 404 for a model the config does not name, worded as
// OpenAI's.
func modelNotFound(model string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
		Message: "The model `" + model + "` does not exist on this paygate. GET /v1/models lists the configured models."}
}

// queryWithoutUser returns path (upstreamPath's) with each query parameter
// whose value holds the end user (is it, or has it inside) rewritten as a body's metadata member naming
// the user is (interceptors/identity.go): under hash its value becomes the
// user's hash, under drop the parameter is left out, under keep nothing
// changes. A bot lists the stored completions of a user by the metadata it
// tagged them with (GET /v1/chat/completions?metadata[openid]=…): sent as
// it came, the OpenID reached the provider in the URL (SPEC 2.2), and the
// filter matched nothing, the provider having stored the hash. A
// parameter named as a body's identity member (identityMember) or a
// metadata filter naming a user's id (metadataUserIDParam) that holds
// someone else's gets the hash of its own value, as the body's member
// does, and so does such a member of a "metadata" parameter of JSON
// (metadataOfJSON), rewritten as a form's field of JSON is. Every other
// parameter, and the query's order, stay as the bot escaped them; an end
// user id too short to be taken anywhere (interceptors.UserTakenAnywhere) is read
// only in the parameters identityParam names.
func (s *Server) queryWithoutUser(path, client, user string) string {
	return s.queryWithout(path, client, user, true)
}

// queryWithoutID is queryWithoutUser for id, an id of the end user's
// other than the one queryWithoutUser took out (the UnionID a header
// names: unionIDHeader): each parameter whose name or value holds it gets
// the hash of its own value in its place, the parameter left out under
// drop, and nothing else changes. A parameter queryWithoutUser hashed
// (user=, metadata[wx_openid]=) is not hashed again, as reading another
// user's id there would. id is one to be taken anywhere
// (interceptors.UserTakenAnywhere).
func (s *Server) queryWithoutID(path, client, id string) string {
	return s.queryWithout(path, client, id, false)
}

// queryWithout is queryWithoutUser for user, the end user when endUser,
// else queryWithoutID's id.
func (s *Server) queryWithout(path, client, user string, endUser bool) string {
	p, q, ok := strings.Cut(path, "?")
	pv := s.privacy.Load().Privacy
	if !ok || q == "" || pv.Mode == "keep" {
		return path
	}
	var out []string
	changed := false
	for _, pair := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(pair, "=")
		// Read as the provider's server reads them: an escape that does
		// not decode stays as written, and the rest still decodes.
		dk, dv := lenientUnescape(k), lenientUnescape(v)
		// A short id (a bot's "user":"7") is taken only in a parameter
		// that names the user as a body's identity members do: in a count
		// (limit=7) or a cursor (after=chatcmpl-7) it is the bot's own,
		// and rewritten there the provider refused the limit.
		if !interceptors.UserTakenAnywhere(user) && !identityParam(dk) {
			out = append(out, pair)
			continue
		}
		if endUser && strings.EqualFold(dk, "metadata") && metadataOfJSON(dv, user) {
			// The filter written as the object itself, naming a user's
			// id ({"wx_openid": …}) or with an escape the end user may
			// hide behind: rewritten as a form's "metadata" field of JSON
			// is, the hash of each id's own value in its place. Read as
			// text, a sharer's OpenID reached the provider's URL.
			mv, send := interceptors.RewriteMetadata(dv, interceptors.Upstream{Client: client, EndUser: user, Privacy: pv})
			switch {
			case !send:
				changed = true
			case mv != dv:
				out, changed = append(out, k+"="+url.QueryEscape(mv)), true
			default:
				out = append(out, pair)
			}
			continue
		}
		if !endUser && strings.EqualFold(dk, "metadata") && metadataOfJSON(dv, user) {
			// The filter of JSON holding the id behind an escape
			// ("\u006f…"), which the provider's JSON reader undoes: its
			// strings rewritten as a body's are (interceptors.TextWithoutID),
			// the parameter left out under drop. Read as text, the
			// UnionID reached the provider's URL.
			switch mv := string(interceptors.TextWithoutID([]byte(dv), interceptors.Upstream{Client: client, Privacy: pv}, user)); {
			case mv == dv:
				out = append(out, pair)
			case pv.Mode == "drop":
				changed = true
			default:
				out, changed = append(out, k+"="+url.QueryEscape(mv)), true
			}
			continue
		}
		inKey := interceptors.HoldsUser(dk, user)
		inValue := interceptors.HoldsUser(dv, user)
		// A user's id other than the end user's (a filter by the
		// sharer's metadata[wx_openid], or by a list holding the end
		// user's beside another's) is filtered by the hash of its own
		// value, which its chats were sent with (interceptors'
		// metadataEdits); so is any value of a parameter named as a
		// body's identity members (user, safety_identifier,
		// prompt_cache_key), which a body sends as the hash of its own
		// value whoever's it is: kept, another user's OpenID there
		// reached the provider's URL.
		other := endUser && dv != "" && dv != user && (metadataUserIDParam(dk) || identityMember(dk))
		if !inKey && !inValue && !other {
			out = append(out, pair)
			continue
		}
		changed = true
		// A value holding the end user inside gives it away as surely as
		// one that is it, and so does a name holding it (a filter keyed
		// by the OpenID, metadata[wx:<openid>]): the user's hash takes
		// its place there.
		if h, send := pv.Identifier(client, user); send {
			if inKey {
				k = url.QueryEscape(interceptors.ReplaceUser(dk, user, h))
			}
			if inValue && !other {
				v = url.QueryEscape(interceptors.ReplaceUser(dv, user, h))
			}
			if other {
				h, _ = pv.Identifier(client, dv)
				v = url.QueryEscape(h)
			}
			out = append(out, k+"="+v)
		}
	}
	if !changed {
		return path
	}
	if len(out) == 0 {
		return p
	}
	return p + "?" + strings.Join(out, "&")
}

// lenientUnescape decodes a query component as url.QueryUnescape does
// ("+" a space, "%XX" its byte), but keeps a "%" that starts no valid
// escape as written, where QueryUnescape fails: a provider's server
// (Python's parse_qsl, many others) decodes such a component so, and the
// end user in it reaches it readable.
func lenientUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b = append(b, jsonscan.Unhex(s[i+1])<<4|jsonscan.Unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// identityParam reports whether the query parameter named name stands
// where a body names the end user: user, safety_identifier,
// prompt_cache_key, or a metadata filter (metadata[key]), in any case.
func identityParam(name string) bool {
	head, _, _ := strings.Cut(name, "[")
	return identityMember(name) || strings.EqualFold(head, "metadata")
}

// identityMember reports whether the query parameter named name is named
// as a body's member that names a user: user, safety_identifier,
// prompt_cache_key, in any case (ASP.NET binds a parameter so) and as a
// list's name, user[] or user[0], which Rack, PHP and Express's qs read
// as user. Taken only as written, another user's OpenID in ?User= or
// ?user[]= reached the provider's URL.
func identityMember(name string) bool {
	if i := strings.IndexByte(name, '['); i > 0 && listIndex(name[i:]) {
		name = name[:i]
	}
	return strings.EqualFold(name, "user") || strings.EqualFold(name, "safety_identifier") || strings.EqualFold(name, "prompt_cache_key")
}

// listIndex reports whether s is a list's index after a parameter's name:
// "[]" or "[" digits "]".
func listIndex(s string) bool {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	for _, c := range []byte(s[1 : len(s)-1]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// holdsSecret reports whether a forwarded request's target (upstreamPath's
// path and query) holds one of the config's secrets whole, as written or
// percent-decoded (a client key in ?api_key=, escaped or not, or escaped
// twice: heldDecoded): the target reaches the provider as sent. Whole, not
// more than half of one as the masking of echoes goes: a refusal of "?name=paygate-demo" for sharing
// "paygate-d" with the default dev key sk-paygate-dev stopped ordinary
// requests, and a bot's tool puts its key in a URL whole.
func (s *Server) holdsSecret(target string) bool {
	return s.redact.HasWhole([]byte(target)) || heldDecoded(target, func(d string) bool { return s.redact.HasWhole([]byte(d)) })
}

// upstreamPath is the client's path below /v1, escaped as the client sent
// it, and its query as sent: failover appends it to a provider's base_url
// without decoding it, so %2F, %3F, %23 and %25 stay data.
//
// It is false for a path that could leave the base_url, which a provider
// or a server in front of it may resolve after paygate (the request
// carries the provider's key): a "." or ".." segment, spelled raw or
// escaped (%2e), and an escaped slash (%2F) or a backslash (raw or %5C),
// which some servers take for a separator.
func upstreamPath(u *url.URL) (string, bool) {
	esc := u.EscapedPath()
	rest, ok := strings.CutPrefix(esc, "/v1/")
	if !ok || !safeSegments(rest) {
		return "", false
	}
	// EscapedPath re-escapes Path when RawPath holds a character net/url
	// would escape; RawPath is then what the client sent.
	if u.RawPath != "" && u.RawPath != esc && !safeSegments(u.RawPath) {
		return "", false
	}
	path := esc[len("/v1"):]
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + u.RawQuery
	}
	return path, true
}

// safeSegments reports whether no segment of the escaped path p is "." or
// "..", raw or escaped (once, twice or three times), and none holds an
// escaped slash, a backslash or an escaped NUL. A segment's ";" parameters do not hide a dot segment:
// Tomcat, Jetty and Spring drop them before resolving dot segments, so
// that "..;" (or "..;x=1", "%2e%2e;", "..%3B") is ".." to a Java server
// in front of a provider; and a server in C may end the path at a NUL.
func safeSegments(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if strings.IndexByte(seg, '\\') >= 0 {
			return false
		}
		if strings.IndexByte(seg, '%') < 0 {
			if dotSegment(seg) {
				return false
			}
			continue
		}
		// Decoded once as the provider's server does, and again by a
		// server in front of it that decodes before it does
		// (heldDecoded): %252e%252e is ".." there, %252F a slash.
		if _, err := url.PathUnescape(seg); err != nil || heldDecoded(seg, unsafeDecoded) {
			return false
		}
	}
	return true
}

// unsafeDecoded reports whether a decoded segment is a dot segment or
// holds a slash, backslash or NUL (safeSegments).
func unsafeDecoded(d string) bool {
	return dotSegment(d) || strings.ContainsAny(d, "/\\\x00")
}

// pathHoldsUser reports whether the escaped URL path p holds the end user
// user (s.holdsUser) as a server in front of a provider may read it
// (heldDecoded). A segment's ";" parameters need no reading: a server
// that drops them (dotSegment) keeps a prefix of the segment as sent.
func (s *Server) pathHoldsUser(p, user string) bool {
	return s.holdsUser(p, user) || heldDecoded(p, func(d string) bool { return s.holdsUser(d, user) })
}

// heldDecoded reports whether holds takes the escaped target decoded once,
// twice or three times, as servers in front of a provider may read it: a
// proxy that decodes before the provider's server does makes %256F an "o"
// there, while the access logs keep the rest as sent.
func heldDecoded(target string, holds func(string) bool) bool {
	for range 3 {
		d := lenientUnescape(target)
		if d == target {
			return false
		}
		if target = d; holds(target) {
			return true
		}
	}
	return false
}

// dotSegment reports whether a decoded segment is "." or "..", with or
// without ";" parameters after it, or is ";" parameters alone: an empty
// segment to Tomcat, Jetty and Spring, whose "//" Tomcat merges, so that
// "/v1/;/models/{id}" is /v1/models/{id} there, past the models routes
// (modelsVariant reads the first segment as written).
func dotSegment(seg string) bool {
	seg, _, params := strings.Cut(seg, ";")
	return seg == "." || seg == ".." || params && seg == ""
}

// jsonBody reports whether a passthrough body is read as JSON: under a JSON
// media type in any case and with any parameters (application/json,
// Application/JSON; charset=utf-8, application/vnd.x+json), and whenever it
// is an object, whatever its type says: many servers parse a body as JSON
// without looking at its type, so a "user" in it must be rewritten like any
// other (SPEC 2.2).
func jsonBody(contentType string, body []byte) bool {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] == '{' {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"))
}

// foreignJSON names the encoding of a body that a JSON parser detecting
// encodings (RFC 4627 section 3; Python's json.loads, which FastAPI and
// Flask use, reads bytes as utf-8-sig, UTF-16 or UTF-32) reads as an
// object but paygate, which reads UTF-8 only, does not: one with a
// byte-order mark, or in UTF-16 or UTF-32 without one. It is "" for any
// other body. Such a body is refused rather than forwarded, since its
// "user" could not be rewritten (SPEC 2.2); only the first non-space
// character is looked at, so binary bodies that happen to start like a
// byte-order mark or with NUL bytes still pass.
func foreignJSON(b []byte) string {
	var (
		name  string
		start int  // the first code unit, after the byte-order mark
		width = 1  // bytes per code unit
		big   bool // big-endian code units
	)
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		name, start = "UTF-8 with a byte-order mark", 3
	case bytes.HasPrefix(b, []byte{0, 0, 0xFE, 0xFF}):
		name, start, width, big = "UTF-32", 4, 4, true
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE, 0, 0}):
		name, start, width = "UTF-32", 4, 4
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		name, start, width, big = "UTF-16", 2, 2, true
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		name, start, width = "UTF-16", 2, 2
	case len(b) >= 4 && b[0] == 0:
		// Without a byte-order mark the NUL bytes of the first two
		// (ASCII) characters tell the encoding, as json.detect_encoding
		// reads them.
		name, width, big = "UTF-16", 2, true
		if b[1] == 0 {
			name, width = "UTF-32", 4
		}
	case len(b) >= 4 && b[1] == 0:
		name, width = "UTF-16", 2
		if b[2] == 0 && b[3] == 0 {
			name, width = "UTF-32", 4
		}
	default:
		return ""
	}
	for i := start; i+width <= len(b); i += width {
		var c uint32
		for j := range width {
			k := i + j
			if !big {
				k = i + width - 1 - j
			}
			c = c<<8 | uint32(b[k])
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return name
		}
		return ""
	}
	return ""
}

// dropFields is every provider's drop_fields, each once.
func dropFields(cfg *config.Config) []string {
	var out []string
	for _, p := range cfg.Providers {
		for _, f := range p.DropFields {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}
