package logging

import (
	"bytes"
	"context"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Mask replaces every redacted value.
const Mask = "[REDACTED]"

// sensitiveKeys are attribute keys whose values are always masked, whatever
// they hold.
var sensitiveKeys = map[string]bool{
	"authorization": true, "api_key": true, "apikey": true, "key": true, "token": true,
	"secret": true, "password": true, "apiv3_key": true, "private_key": true, "cookie": true,
	"hash_key": true, "client_key": true, "admin_token": true,
	// What a rotation keeps beside the current key (README: rotating secrets).
	"previous_key": true, "apiv3_previous_key": true,
}

// bearer catches credentials quoted in error text ("Bearer sk-…"), also
// written escaped: a "/" as JSON's "\/" (PHP's json_encode, many gateways),
// escaped twice ("\\\/", an error quoting the JSON body it refused) or a
// byte percent-encoded (%2F, %2B, %3D), each of which ended the token and
// let the rest of a base64 one through after the mask, and the space after
// "Bearer" as a URL's query writes it (%20, +), which hid the token whole.
var bearer = regexp.MustCompile(`(?i)(bearer(?:\s|%20|\+)+)(?:[A-Za-z0-9._~+/=-]|\\+/|%[0-9A-Fa-f]{2})+`)

// Redactor masks known secret values and credential-shaped text.
type Redactor struct {
	secrets *strings.Replacer
	values  []string // the secrets masked, longest first
	valuesB [][]byte // values as bytes, for Has and Cut
	// partial are the secrets of ClientMinSecret bytes or more, and their
	// encoded forms, of which more than half echoed is masked too
	// (partialSecret).
	partial []*partialSecret
	longest int // Longest
	// grams finds the values of 4 bytes or more and the partial secrets'
	// blocks and heads in one pass (Has, Values); short are the values
	// it does not hold.
	grams *gramFilter
	short [][]byte
}

// ClientMinSecret is the length from which a configured secret is masked
// in text a client reads (upstream error text, a forwarded stream's error
// events). A real provider key, client key or token is longer; the
// placeholders configs carry for a local provider that takes any key
// (none, EMPTY, ollama) are not secrets, and masking them as substrings
// mangles the provider's message. The log masks from 4 bytes
// (NewRedactor): it is not read by a bot.
const ClientMinSecret = 12

// NewRedactor masks each of secrets wherever it appears. Empty and very short
// values (under 4 bytes) are ignored: masking "a" would mangle every line.
func NewRedactor(secrets []string) *Redactor { return NewRedactorMin(secrets, 4) }

// NewRedactorMin masks each of secrets of at least minLen bytes wherever
// it appears; shorter ones are ignored. Text a client reads uses a higher
// bound than the log: a local provider's placeholder key ("none", "EMPTY",
// "ollama") is no secret, and masking it as a substring mangles the very
// words of the provider's message ('nonexistent' became
// '[REDACTED]xistent'). Each secret is masked in its encoded forms too
// (encodedForms): a provider echoes a key percent-encoded or JSON-escaped
// as often as it echoes it plain.
func NewRedactorMin(secrets []string, minLen int) *Redactor {
	// strings.Replacer tries its old strings in argument order, so a secret
	// that begins with another (sk-dev, sk-dev-admin) would keep its tail:
	// the longest go first.
	var all []string
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < max(minLen, 1) {
			continue
		}
		for _, f := range slices.Concat([]string{s}, encodedForms(s), escapedTwice(s)) {
			if !seen[f] {
				seen[f] = true
				all = append(all, f)
			}
		}
	}
	slices.SortStableFunc(all, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	r := &Redactor{values: all}
	seen = map[string]bool{}
	for _, s := range secrets {
		if len(s) < max(minLen, ClientMinSecret) {
			continue
		}
		if cred, ok := schemeCredential(s); ok {
			// A header value "Scheme cred": most of it echoed is most of
			// its credential echoed, if that is long enough to be a key
			// (config lists it on its own too); the value whole is
			// masked above.
			if s = cred; len(s) < max(minLen, ClientMinSecret) {
				continue
			}
		}
		for _, f := range append([]string{s}, encodedForms(s)...) {
			if !seen[f] {
				seen[f] = true
				p := newPartialSecret(f)
				r.partial = append(r.partial, p)
				r.longest = max(r.longest, p.maxSpan)
			}
		}
	}
	for _, s := range all {
		pairs = append(pairs, s, Mask)
		r.valuesB = append(r.valuesB, []byte(s))
		r.longest = max(r.longest, len(s))
	}
	r.grams = &gramFilter{}
	full := false
	for _, v := range all {
		if len(v) < 4 || full {
			r.short = append(r.short, []byte(v))
		} else {
			full = !r.grams.add(v, -1)
		}
	}
	for i, p := range r.partial {
		for _, n := range append(slices.Clip(p.blocks), p.head) {
			full = full || !r.grams.add(n, i)
		}
	}
	if full {
		r.grams = nil // Has and Values look for each needle alone
	}
	if len(pairs) > 0 {
		r.secrets = strings.NewReplacer(pairs...)
	}
	return r
}

// encodedForms are the forms other than s itself in which a provider or
// gateway may echo secret s: percent-encoded, as a URL's query or form
// (url.QueryEscape), its path (url.PathEscape) or its user or password
// (url.UserPassword, which escapes "@" ":" "/" "?" and leaves "&" "=" "+"
// as they are, unlike either) writes it, each with its hex in upper case
// and in lower case (%2F or %2f: RFC 3986 holds them equal, and many
// encoders and proxies write the latter), and JSON-escaped,
// with "/" written "\/" (PHP's json_encode, many gateways) or not, HTML
// characters escaped (\u0026) or not (escapedTwice adds the forms escaped
// twice). Each is exact, so masking stays one pass of the replacer; a
// secret no encoding changes (sk-…, most keys) adds none. JSON forms are
// skipped for a secret that is not UTF-8 (a binary hash key): the encoder
// would write a replacement character, not it.
func encodedForms(s string) []string {
	q, p := url.QueryEscape(s), url.PathEscape(s)
	_, u, _ := strings.Cut(url.UserPassword("", s).String(), ":")
	forms := []string{q, p, u, lowerHex(q), lowerHex(p), lowerHex(u)}
	if utf8.ValidString(s) {
		for _, html := range []bool{false, true} {
			j := jsonEscape(s, html)
			forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
		}
	}
	return slices.DeleteFunc(forms, func(f string) bool { return f == s })
}

// escapedTwice are the JSON forms of secret s escaped twice, inside a JSON
// string that is itself a JSON string's content (a `json:",string"` field,
// an error quoting the JSON body it refused), for a secret that escaping
// changes (a quote, a backslash, "/" for PHP); none for any other. They
// are masked whole only, not as partial secrets: the stretches of a long
// secret's once-escaped forms that lie between its escapes stay whole
// when escaped again, and the partial rule finds most such echoes through
// them; a short secret (under ClientMinSecret) has no partial rule.
func escapedTwice(s string) []string {
	if !utf8.ValidString(s) {
		return nil
	}
	var forms []string
	for _, html := range []bool{false, true} {
		j := jsonEscape(s, html)
		for _, once := range []string{j, strings.ReplaceAll(j, "/", `\/`)} {
			if once == s {
				continue
			}
			// Each pass HTML-escaping or not: a body written without it
			// (PHP, paygate's own log) quoted by json.Marshal, which
			// escapes it; once escaped with it, no & < > is left.
			for _, html2 := range []bool{false, true} {
				twice := jsonEscape(once, html2)
				forms = append(forms, twice, strings.ReplaceAll(twice, "/", `\/`))
			}
		}
	}
	return forms
}

// jsonEscape is s as encoding/json writes it inside a string's quotes,
// with & < > escaped when html.
func jsonEscape(s string, html bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(strings.TrimSuffix(b.String(), "\n"), `"`)[1:]
}

// lowerHex is e, text percent-encoded by url.QueryEscape or PathEscape,
// with the hex digits of its escapes in lower case. Every "%" in e begins
// an escape (the escapers write a "%" of the text as %25); the rest of e
// is left as it is.
func lowerHex(e string) string {
	if !strings.Contains(e, "%") {
		return e
	}
	b := []byte(e)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if 'A' <= b[j] && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}

// String returns s with secrets masked.
func (r *Redactor) String(s string) string {
	s = r.Values(s)
	if mentionsBearer(s) {
		s = bearer.ReplaceAllString(s, "${1}"+Mask)
	}
	return s
}

// mentionsBearer reports whether s holds "bearer" in any case, as the
// bearer rule matches it: text without it (most) is spared the regular
// expression. A check for "earer" and "EARER" alone let a token after
// "BeArEr" or "BEARer" through, though HTTP reads the scheme without case.
// Each "b" and "B" is found by strings.IndexByte, as fast as the check
// it replaces on text that holds few.
func mentionsBearer(s string) bool {
	const word = "bearer"
	for _, c := range [2]byte{'b', 'B'} {
		for i := 0; i+len(word) <= len(s); i++ {
			j := strings.IndexByte(s[i:], c)
			if j < 0 {
				break
			}
			if i += j; i+len(word) <= len(s) && strings.EqualFold(s[i:i+len(word)], word) {
				return true
			}
		}
	}
	return false
}

// Values returns s with the secret values masked, without the "Bearer"
// rule of String: for text that is not an error, where a quoted
// Authorization header is content (an answer that shows a curl command).
func (r *Redactor) Values(s string) string {
	if r.secrets == nil {
		return s
	}
	s = r.secrets.Replace(s)
	if len(r.partial) == 0 {
		return s
	}
	if r.grams == nil {
		for _, p := range r.partial {
			s = p.mask(s)
		}
		return s
	}
	// The partial secrets whose blocks or head s holds; most text holds
	// none, and is not scanned again for each.
	var hit []int
	scan(r.grams, s, func(owner int) bool {
		if owner >= 0 && !slices.Contains(hit, owner) {
			hit = append(hit, owner)
		}
		return true
	})
	for _, i := range hit {
		s = r.partial[i].mask(s)
	}
	return s
}

// HasWhole reports whether b holds one of the secret values whole (or in
// one of its encoded forms), without Has's rule for more than half of one:
// for a check that refuses text rather than masking it, where a shared
// prefix (the dev key sk-paygate-dev against "?name=paygate-demo") must
// not refuse an ordinary request.
func (r *Redactor) HasWhole(b []byte) bool {
	for _, v := range r.valuesB {
		if bytes.Contains(b, v) {
			return true
		}
	}
	return false
}

// Has reports whether b holds one of the secret values, or more than half
// of one (partialSecret): the check that spares text without one the copy
// of masking it.
func (r *Redactor) Has(b []byte) bool {
	if r.grams == nil {
		for _, v := range r.valuesB {
			if bytes.Contains(b, v) {
				return true
			}
		}
		for _, p := range r.partial {
			if p.maybeIn(b) && p.in(string(b)) {
				return true
			}
		}
		return false
	}
	for _, v := range r.short {
		if bytes.Contains(b, v) {
			return true
		}
	}
	has := false
	var checked uint64 // the partial secrets (the first 64) found absent
	scan(r.grams, b, func(owner int) bool {
		switch {
		case owner < 0:
			has = true // a value, whole
		case owner < 64 && checked&(1<<owner) != 0:
		default:
			// A block or the head of a partial secret: its span, if
			// any, is looked for once.
			has = r.partial[owner].in(string(b))
			if owner < 64 {
				checked |= 1 << owner
			}
		}
		return !has
	})
	return has
}

// Longest is the length of the longest text masked as one: a secret
// value, or the echo of more than half of one (partialSecret); 0 with
// none. Text cut short may end in the first bytes of a secret that
// follows: a cut that leaves the last Longest()-1 bytes for later sees
// that secret, or its echo, whole.
func (r *Redactor) Longest() int { return r.longest }

// Cut returns the largest i <= n at which b can be cut without splitting
// a secret value in b: masking replaces whole values only, so text that
// is cut and then masked would keep the part of a value before the cut
// unmasked; so would the echo of more than half of a secret, cut in two
// parts of less than half each. Mask first, then cut here: values that
// run past the end of b are not seen.
func (r *Redactor) Cut(b []byte, n int) int {
	n = min(max(n, 0), len(b))
	for moved := true; moved; {
		moved = false
		for _, v := range r.valuesB {
			// A value that spans n starts within len(v)-1 bytes before it
			// and ends within len(v)-1 bytes after it.
			lo, hi := max(0, n-len(v)+1), min(len(b), n+len(v)-1)
			if lo >= hi {
				continue
			}
			if i := bytes.Index(b[lo:hi], v); i >= 0 {
				n, moved = lo+i, true // the value's start: n only moves back
			}
		}
		// An echo of more than half of a secret that spans n: each part
		// alone may hold less.
		for _, p := range r.partial {
			lo, hi := max(0, n-p.maxSpan), min(len(b), n+p.maxSpan)
			if lo >= n || n >= hi || !p.maybeIn(b[lo:hi]) {
				continue
			}
			p.spans(string(b[lo:hi]), func(i, j int) bool {
				if lo+i < n && n < lo+j {
					n, moved = lo+i, true
				}
				return true
			})
		}
	}
	return n
}

// Handler wraps another slog.Handler and masks secrets in the message and in
// every string-valued attribute, including nested groups and error values.
// A structured value is checked in the text its inner handler writes for
// it: JSON (slog.JSONHandler, and any handler but the text one), or the
// %+v text of slog.TextHandler, unexported fields and bytes as numbers
// included.
type Handler struct {
	inner slog.Handler
	r     *Redactor
	// text: inner is a slog.TextHandler, which writes a value of kind Any
	// as %+v where the JSON handler writes JSON (any).
	text bool
}

// NewHandler wraps inner.
func NewHandler(inner slog.Handler, r *Redactor) *Handler {
	_, text := inner.(*slog.TextHandler)
	return &Handler{inner: inner, r: r, text: text}
}

// New returns a JSON logger writing to w at level, masking secrets.
func New(w io.Writer, level slog.Level, secrets []string) *slog.Logger {
	return slog.New(NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), NewRedactor(secrets)))
}

// ParseLevel maps a config level name to a slog.Level (info when unknown).
func ParseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Enabled implements slog.Handler. A line logged with an Always context
// is enabled whatever log.level says.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l) || always(ctx)
}

// alwaysKey marks a context whose lines pass the level filter (Always).
type alwaysKey struct{}

// Always returns ctx marking the lines logged with it as records that
// must reach the log whatever log.level is, at their own level: the audit
// chain's head is an outside record that `paygate audit verify --head`
// checks a cut from the end against, and an operator who quietens the log
// with log.level: warn must not lose it. Only this package's Handler reads
// the mark.
func Always(ctx context.Context) context.Context {
	return context.WithValue(ctx, alwaysKey{}, true)
}

func always(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	on, _ := ctx.Value(alwaysKey{}).(bool)
	return on
}

// Handle implements slog.Handler. A record logged with a request's
// context (the *Context methods) that names no request_id itself gets the
// id the context carries (WithRequestID): a line written deep in failover
// or the payment tools, which know no request, is then found by the
// X-Request-Id the client was answered with.
func (h *Handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	hasID := false
	rec.Attrs(func(a slog.Attr) bool {
		hasID = hasID || a.Key == requestIDAttr
		out.AddAttrs(h.attr(a))
		return true
	})
	if !hasID {
		if id := RequestID(ctx); id != "" {
			out.AddAttrs(slog.String(requestIDAttr, id))
		}
	}
	if extra := contextAttrs(ctx); len(extra) > 0 {
		for _, a := range extra {
			named := false
			rec.Attrs(func(b slog.Attr) bool {
				named = b.Key == a.Key
				return !named
			})
			if !named {
				out.AddAttrs(h.attr(a))
			}
		}
	}
	return h.inner.Handle(ctx, out)
}

// attrsKey is the context key of WithAttrs' attributes.
type attrsKey struct{}

// WithAttrs returns ctx carrying attrs, which the log's Handler adds to
// each line logged with it that does not name them itself, as it adds the
// request id: an id known where a request's work starts (the WeChat Pay
// notification's own id, which its audit record keeps) then reaches the
// lines written deep in code that never saw it (an order's transition, an
// alert about its amount). attrs are added after ctx's earlier ones.
func WithAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev := contextAttrs(ctx)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	return context.WithValue(ctx, attrsKey{}, append(append(all, prev...), attrs...))
}

func contextAttrs(ctx context.Context) []slog.Attr {
	if ctx == nil {
		return nil
	}
	as, _ := ctx.Value(attrsKey{}).([]slog.Attr)
	return as
}

// RequestIDLen is the length of a request id: "req_" and 24 hex digits.
const RequestIDLen = 4 + 24

// FillRequestID writes a fresh id for a request's logs, audit records and
// the X-Request-Id header. It correlates and protects nothing, so it comes
// from the runtime's per-thread ChaCha8 (math/rand/v2, seeded by the system)
// rather than crypto/rand, whose DRBG cost 2% of a non-stream request.
func FillRequestID(b *[RequestIDLen]byte) {
	copy(b[:], "req_")
	var raw [12]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(raw[8:], rand.Uint32())
	hex.Encode(b[4:], raw[:])
}

// NewRequestID is a fresh request id (FillRequestID) for a route served
// outside the proxy's middleware (the WeChat Pay notification).
func NewRequestID() string {
	var b [RequestIDLen]byte
	FillRequestID(&b)
	return string(b[:])
}

// requestIDAttr is the attribute key of a request's id in a log line.
const requestIDAttr = "request_id"

// RequestIDKey is the context key under which a request's id (a string)
// is carried. WithRequestID sets it; a context type of its own (the
// proxy's per-request one, which spares an allocation per request) may
// answer it in its Value method instead.
type RequestIDKey struct{}

// WithRequestID returns ctx carrying request id id, which the log's
// Handler adds to each line logged with it.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, RequestIDKey{}, id)
}

// RequestID is the request id ctx carries; "" with none (or a nil ctx).
func RequestID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(RequestIDKey{}).(string)
	return id
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &Handler{inner: h.inner.WithAttrs(red), r: h.r, text: h.text}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), r: h.r, text: h.text}
}

func (h *Handler) attr(a slog.Attr) slog.Attr {
	if sensitiveKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, Mask)
	}
	v := a.Value.Resolve()
	if d, ok := v.Any().(Digest); ok && v.Kind() == slog.KindAny {
		if d.plain() {
			return slog.String(a.Key, string(d))
		}
		return slog.String(a.Key, h.r.String(string(d)))
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = h.attr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		if u, ok := v.Any().(*url.URL); ok && u != nil {
			// Without its password, as the JSON handler writes it (its
			// fields, User as {}); its String, which the text handler
			// writes, carries the password, listed as a secret or not.
			return slog.String(a.Key, h.r.String(u.Redacted()))
		}
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.String(safeText(err, err.Error)))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, h.r.String(safeText(s, s.String)))
		}
		return slog.Attr{Key: a.Key, Value: h.any(v)}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// any masks a value the inner handler would encode itself (a map, a struct,
// a slice, bytes): it is encoded here as the JSON handler would, and when that
// text holds a secret the masked text is logged in its place. Bytes at the
// top are read as text. Bytes inside the value (a []byte field, map value or
// element, a [N]byte) are written as base64 or as numbers, which no check of
// the text sees through, so the value is walked for them (secretBytes) and
// each one that holds a secret is masked whole. Only the JSON is checked and
// logged: the value's %+v text, logged in its place when it held a secret
// the JSON did not (one in an unexported field), carried every unexported
// field with it (a PEM's bytes as numbers), and recursed without end on a
// map that holds itself, a fatal stack overflow where the JSON encoder
// reports the cycle. Under slog.TextHandler, which writes %+v, see anyText.
func (h *Handler) any(v slog.Value) slog.Value {
	if h.text {
		return h.anyText(v)
	}
	var text string
	switch x := v.Any().(type) {
	case []byte:
		text = string(x)
	case json.RawMessage:
		text = string(x)
	default:
		// Without HTML escaping, as the JSON handler encodes it; a secret
		// the encoder escapes (& < > with HTML escaping, a quote, a
		// backslash, a control character) is masked in its escaped form
		// too (encodedForms).
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			// Neither can the JSON handler, which writes "!ERROR:" and
			// the error in the value's place; so does this, masked (a
			// MarshalJSON's error may quote a secret).
			return slog.StringValue("!ERROR:" + h.r.String(err.Error()))
		}
		text = strings.TrimSuffix(b.String(), "\n")
		if hidden := h.secretBytes(reflect.ValueOf(x), false); len(hidden) > 0 {
			for _, form := range hidden {
				if !strings.Contains(text, form) {
					// Not written as the encoder writes bytes (a
					// MarshalJSON with a pointer receiver, a field
					// hidden by another of its name): not logged.
					return slog.StringValue(Mask)
				}
				text = strings.ReplaceAll(text, form, `"`+Mask+`"`)
			}
			if text == `"`+Mask+`"` {
				return slog.StringValue(Mask) // the value was the bytes
			}
			return slog.StringValue(h.r.String(text))
		}
	}
	if masked := h.r.String(text); masked != text {
		return slog.StringValue(masked)
	}
	return v
}

// anyText is any for slog.TextHandler, checking the text it writes for a
// value of kind Any: a TextMarshaler's text, a byte slice (its type named
// or not) as text, any other value as %+v, which writes unexported fields
// too and bytes as numbers: a value holding secret bytes anywhere
// (secretBytes, every field) is masked whole.
func (h *Handler) anyText(v slog.Value) slog.Value {
	x := v.Any()
	var text string
	if tm, ok := x.(encoding.TextMarshaler); ok {
		var err error
		text = safeText(x, func() string {
			var data []byte
			data, err = tm.MarshalText()
			return string(data)
		})
		if err != nil {
			return slog.StringValue("!ERROR:" + h.r.String(err.Error()))
		}
	} else if rv := reflect.ValueOf(x); rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
		text = string(rv.Bytes())
	} else {
		if len(h.secretBytes(rv, true)) > 0 {
			return slog.StringValue(Mask)
		}
		text = fmt.Sprintf("%+v", x)
	}
	if masked := h.r.String(text); masked != text {
		return slog.StringValue(masked)
	}
	return v
}

// secretBytes walks v for byte slices and arrays that hold a secret, read as text, and returns each as encoding/json writes it: a
// quoted base64 string for a slice, an array of numbers for an array.
// Walking is exact where masking base64 forms of the secrets in the text
// would not be: a secret inside bytes lies at any offset, so its base64 is
// one of three shifted strings with uncertain ends, and short ones would
// match ordinary text. The walk reads the fields encoding/json writes
// (exported or embedded, not tagged "-"), or all of them for %+v. A value
// whose type encodes itself (json.Marshaler, encoding.TextMarshaler:
// json.RawMessage, time.Time) is not entered: what it writes is text,
// which the text check reads. Pointers, maps and slices are entered once
// each, so a cycle ends.
func (h *Handler) secretBytes(v reflect.Value, allFields bool) []string {
	var out []string
	seen := map[visit]bool{}
	var walk func(v reflect.Value, depth int)
	walk = func(v reflect.Value, depth int) {
		if !v.IsValid() {
			return
		}
		if depth > maxDepth {
			// Not walked: the encoder writes it, secret bytes and all,
			// so the value is masked whole.
			out = append(out, unwalked)
			return
		}
		if t := v.Type(); !allFields && (t.Implements(jsonMarshaler) || t.Implements(textMarshaler)) {
			return
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice:
			if v.IsNil() {
				return
			}
			k := visit{v.Pointer(), v.Type(), 0}
			if v.Kind() == reflect.Slice {
				k.n = v.Len() // buf[:4] and buf[:40] share a pointer
			}
			if seen[k] {
				return
			}
			seen[k] = true
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			walk(v.Elem(), depth+1)
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				if f := t.Field(i); allFields || (f.IsExported() || f.Anonymous) && f.Tag.Get("json") != "-" {
					walk(v.Field(i), depth+1)
				}
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Key(), depth+1)
				walk(it.Value(), depth+1)
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				// At the top too: a named byte type (type Key []byte)
				// is not the []byte any reads as text.
				out = append(out, h.bytesForm(v)...)
				return
			}
			for i := range v.Len() {
				walk(v.Index(i), depth+1)
			}
		}
	}
	walk(v, 0)
	return out
}

// bytesForm is v, a byte slice or array, as encoding/json writes it, when
// it holds a secret.
func (h *Handler) bytesForm(v reflect.Value) []string {
	var b []byte
	if v.Kind() == reflect.Slice {
		b = v.Bytes()
	} else {
		b = make([]byte, v.Len()) // v.Bytes needs an addressable array
		for i := range b {
			b[i] = byte(v.Index(i).Uint())
		}
	}
	if s := string(b); h.r.String(s) == s {
		return nil
	}
	if v.Kind() == reflect.Slice {
		return []string{`"` + base64.StdEncoding.EncodeToString(b) + `"`}
	}
	nums := make([]string, len(b))
	for i, c := range b {
		nums[i] = strconv.Itoa(int(c))
	}
	return []string{"[" + strings.Join(nums, ",") + "]"}
}

// Digest is text of paygate's own making that holds no secret, a hash or a
// sequence number and hash (the audit chain's head, SEQ:HASH), which the
// log carries as it is: a configured secret of 4 bytes or more is masked
// wherever it appears, and a short one of hex digits ("2024", "cafe")
// appears now and then inside a hash, whose line then read "[REDACTED]"
// where the hash was: the audit head, an outside record `paygate audit
// verify --head` is checked against, was lost. Only text of hex digits and
// colons passes unmasked; any other is masked as a string is. Never wrap a
// secret in it (a hex key would pass).
type Digest string

// plain reports whether d is text a Digest may carry unmasked.
func (d Digest) plain() bool {
	if d == "" {
		return true
	}
	for i := 0; i < len(d); i++ {
		switch c := d[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F', c == ':':
		default:
			return false
		}
	}
	return true
}

// maxDepth bounds the walk of a logged value: as deep as encoding/json
// goes before it looks for a cycle; a value deeper than it is masked
// whole (unwalked), as the walk stopped at 64 steps called a list of 40
// nodes clean and the JSON handler wrote the bytes at its end.
const maxDepth = 1000

// unwalked is what secretBytes returns for a value deeper than maxDepth:
// a NUL, which no JSON text holds (the encoder writes \u0000), so any
// masks the value whole.
const unwalked = "\x00"

// visit is a pointer, map or slice the walk entered.
type visit struct {
	p uintptr
	t reflect.Type
	n int
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// safeText is text(), the Error or String method of x, as slog's own
// handlers call it: a method that panics on a nil pointer receiver gives
// "<nil>", any other panic "!PANIC: …", never a panic in the code that
// logged (a request's handler, or a background goroutine the process would
// die of).
func safeText(x any, text func() string) (s string) {
	defer func() {
		if r := recover(); r != nil {
			if v := reflect.ValueOf(x); v.Kind() == reflect.Pointer && v.IsNil() {
				s = "<nil>"
				return
			}
			s = fmt.Sprintf("!PANIC: %v", r)
		}
	}()
	return text()
}
