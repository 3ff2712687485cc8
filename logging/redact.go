package logging

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces every redacted value.
const Mask = "[REDACTED]"

// sensitiveKeys are attribute keys whose values are always masked, whatever
// they hold.
var sensitiveKeys = map[string]bool{
	"authorization": true, "api_key": true, "apikey": true, "key": true, "token": true,
	"secret": true, "password": true, "apiv3_key": true, "private_key": true, "cookie": true,
	"hash_key": true, "client_key": true, "admin_token": true,
}

// bearer catches credentials quoted in error text ("Bearer sk-…").
var bearer = regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+`)

// Redactor masks known secret values and credential-shaped text.
type Redactor struct {
	secrets *strings.Replacer
}

// NewRedactor masks each of secrets wherever it appears. Empty and very short
// values are ignored: masking "a" would mangle every line.
func NewRedactor(secrets []string) *Redactor {
	// strings.Replacer tries its old strings in argument order, so a secret
	// that begins with another (sk-dev, sk-dev-admin) would keep its tail:
	// the longest go first.
	secrets = slices.Clone(secrets)
	slices.SortStableFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 4 {
			pairs = append(pairs, s, Mask)
		}
	}
	r := &Redactor{}
	if len(pairs) > 0 {
		r.secrets = strings.NewReplacer(pairs...)
	}
	return r
}

// String returns s with secrets masked.
func (r *Redactor) String(s string) string {
	if r.secrets != nil {
		s = r.secrets.Replace(s)
	}
	if strings.Contains(s, "earer") || strings.Contains(s, "EARER") {
		s = bearer.ReplaceAllString(s, "${1}"+Mask)
	}
	return s
}

// Handler wraps another slog.Handler and masks secrets in the message and in
// every string-valued attribute, including nested groups and error values.
type Handler struct {
	inner slog.Handler
	r     *Redactor
}

// NewHandler wraps inner.
func NewHandler(inner slog.Handler, r *Redactor) *Handler { return &Handler{inner: inner, r: r} }

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

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &Handler{inner: h.inner.WithAttrs(red), r: h.r}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), r: h.r}
}

func (h *Handler) attr(a slog.Attr) slog.Attr {
	if sensitiveKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, Mask)
	}
	v := a.Value.Resolve()
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
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.String(err.Error()))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, h.r.String(s.String()))
		}
		return slog.Attr{Key: a.Key, Value: h.any(v)}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// any masks a value the inner handler would encode itself (a map, a struct,
// a slice, bytes): it is encoded here as the JSON handler would, and when that
// text holds a secret the masked text is logged in its place. Bytes are read
// as text, not as the base64 the JSON handler would write, which hides a
// secret from a reader of the log but not from anyone who decodes it.
func (h *Handler) any(v slog.Value) slog.Value {
	var text string
	switch x := v.Any().(type) {
	case []byte:
		text = string(x)
	case json.RawMessage:
		text = string(x)
	default:
		// Without HTML escaping, which would write & < > as \u0026 …; a
		// secret with a quote or a backslash is still escaped in JSON, so
		// the value's plain text is checked too.
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		plain := fmt.Sprintf("%+v", x)
		if err := enc.Encode(x); err != nil {
			text = plain
			break
		}
		text = strings.TrimSuffix(b.String(), "\n")
		if masked := h.r.String(plain); masked != plain && h.r.String(text) == text {
			return slog.StringValue(masked)
		}
	}
	if masked := h.r.String(text); masked != text {
		return slog.StringValue(masked)
	}
	return v
}
