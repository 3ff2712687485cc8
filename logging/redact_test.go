package logging

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestHandlerMasksSecrets(t *testing.T) {
	secrets := []string{"sk-live-provider-1234", "apiv3-key-0123456789abcdef012345", "pw-a&b<c>d-123456", `pw-"quoted"-123456`}
	tests := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"message", func(l *slog.Logger) { l.Info("calling with sk-live-provider-1234") }},
		{"string attr", func(l *slog.Logger) { l.Info("x", "detail", "key=apiv3-key-0123456789abcdef012345") }},
		{"error attr", func(l *slog.Logger) { l.Error("x", "err", errors.New("401 for sk-live-provider-1234")) }},
		{"group attr", func(l *slog.Logger) { l.Info("x", slog.Group("req", "h", "sk-live-provider-1234")) }},
		{"with attrs", func(l *slog.Logger) { l.With("k", "sk-live-provider-1234").Info("x") }},
		{"sensitive key", func(l *slog.Logger) { l.Info("x", "authorization", "anything at all") }},
		{"bearer text", func(l *slog.Logger) { l.Info("header was Bearer unknown-token-xyz") }},
		{"map attr", func(l *slog.Logger) { l.Info("x", "hdr", map[string]string{"X-Api": "sk-live-provider-1234"}) }},
		{"struct attr", func(l *slog.Logger) {
			l.Info("x", "cfg", struct{ Upstream, Key string }{"openrouter", "sk-live-provider-1234"})
		}},
		{"slice attr", func(l *slog.Logger) { l.Info("x", "args", []string{"-k", "sk-live-provider-1234"}) }},
		{"bytes attr", func(l *slog.Logger) { l.Info("x", "body", []byte(`{"key":"sk-live-provider-1234"}`)) }},
		{"bearer in a map", func(l *slog.Logger) { l.Info("x", "h", map[string]any{"auth": "Bearer unknown-token-xyz"}) }},
		{"secret JSON would escape, in a map", func(l *slog.Logger) { l.Info("x", "m", map[string]string{"dsn": "pw-a&b<c>d-123456"}) }},
		{"secret with a quote, in a struct", func(l *slog.Logger) { l.Info("x", "m", struct{ P string }{`pw-"quoted"-123456`}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(New(&buf, slog.LevelInfo, secrets))
			out := buf.String()
			for _, s := range append(secrets, "anything at all", "unknown-token-xyz") {
				if strings.Contains(out, s) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(s))[:16]) {
					t.Errorf("log line %q contains secret %q", out, s)
				}
			}
			if !strings.Contains(out, Mask) {
				t.Errorf("log line %q has no mask", out)
			}
		})
	}
}

// TestRedactorPrefixSecrets: a secret that begins with another is masked
// whole, whichever order the secrets come in.
func TestRedactorPrefixSecrets(t *testing.T) {
	for _, secrets := range [][]string{
		{"sk-paygate-dev", "sk-paygate-dev-admin-token-9f8e"},
		{"sk-paygate-dev-admin-token-9f8e", "sk-paygate-dev"},
	} {
		got := NewRedactor(secrets).String("token sk-paygate-dev-admin-token-9f8e and key sk-paygate-dev")
		if want := "token " + Mask + " and key " + Mask; got != want {
			t.Errorf("secrets %q: got %q; want %q", secrets, got, want)
		}
	}
}

// TestHandlerKeepsStructuredValues: a map or a slice without a secret is
// logged as the JSON it is, not flattened into a string.
func TestHandlerKeepsStructuredValues(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo, []string{"sk-live-provider-1234"}).Info("x",
		"m", map[string]int{"a": 1}, "s", []string{"b"}, "raw", json.RawMessage(`{"c":2}`))
	for _, want := range []string{`"m":{"a":1}`, `"s":["b"]`, `"raw":{"c":2}`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %q lacks %s", buf.String(), want)
		}
	}
}

// TestHandlerMasksSecretBytesInsideValues: a []byte secret inside a logged
// value (a struct field, a map value, a slice element; paygate keeps keys
// as []byte, such as the user-hash key and HMAC keys) is written by the JSON
// handler as base64, and a [N]byte as numbers, so neither the encoded text
// nor %+v shows the secret to a text check; the handler walks the value for
// such bytes and masks each one that holds a secret, keeping the rest.
func TestHandlerMasksSecretBytesInsideValues(t *testing.T) {
	const secret = "hash-SECRET-6f7a8b9c0d"
	key := []byte(secret)
	type Key []byte
	type opts struct {
		Mode    string
		HashKey []byte
	}
	type inner struct{ Key []byte }
	tests := []struct {
		name string
		v    any
		want string // in the log line; "" for the mask alone
	}{
		{"struct field", opts{"hash", key}, `{\"Mode\":\"hash\",\"HashKey\":\"[REDACTED]\"}`},
		{"pointer to a struct", &opts{"hash", key}, `\"HashKey\":\"[REDACTED]\"`},
		{"map value", map[string][]byte{"k": key}, `{\"k\":\"[REDACTED]\"}`},
		{"map of any", map[string]any{"n": 1, "k": key}, `\"k\":\"[REDACTED]\"`},
		{"slice element", [][]byte{[]byte("public"), key}, `[\"cHVibGlj\",\"[REDACTED]\"]`},
		{"embedded struct", struct{ inner }{inner{key}}, `{\"Key\":\"[REDACTED]\"}`},
		{"secret inside longer bytes", opts{"hash", []byte("x=" + secret + ";y")}, `\"HashKey\":\"[REDACTED]\"`},
		{"byte array", struct{ K [len(secret)]byte }{[len(secret)]byte([]byte(secret))}, `{\"K\":\"[REDACTED]\"}`},
		{"named byte type", Key(secret), `"v":"[REDACTED]"`},
		{"value JSON cannot encode, logged as the JSON handler logs it", struct {
			F   func()
			S   string
			key []byte
		}{nil, secret, key}, `"v":"!ERROR:json: unsupported type: func()"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			New(&buf, slog.LevelInfo, []string{secret}).Info("x", "v", tc.v)
			out := buf.String()
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				for shift := range 3 {
					// The secret's base64 at each offset within longer bytes,
					// less the characters it shares with its neighbours.
					b64 := enc.EncodeToString(append(make([]byte, shift), key...))
					if core := b64[(shift*8+5)/6 : (shift+len(secret))*8/6]; strings.Contains(out, core) {
						t.Errorf("log line %q carries the secret's base64 (%s)", out, core)
					}
				}
			}
			dec := strconv.Itoa(int(secret[0])) + "," + strconv.Itoa(int(secret[1])) // as JSON and %+v write bytes
			if strings.Contains(out, secret) || strings.Contains(out, dec) || strings.Contains(out, strings.ReplaceAll(dec, ",", " ")) {
				t.Errorf("log line %q carries the secret", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("log line %q lacks %s", out, tc.want)
			}
		})
	}
}

// TestHandlerKeepsBytesWithoutSecrets: bytes that hold no secret leave the
// value structured, as the JSON handler writes it.
func TestHandlerKeepsBytesWithoutSecrets(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo, []string{"hash-SECRET-6f7a8b9c0d"}).Info("x",
		"v", struct{ Body []byte }{[]byte("public")})
	if want := `"v":{"Body":"cHVibGlj"}`; !strings.Contains(buf.String(), want) {
		t.Errorf("log line %q lacks %s", buf.String(), want)
	}
}

// TestRedactorMinLength: the log masks every configured secret of 4 bytes
// or more, a placeholder key included (a log line is not read by a bot,
// and a short real secret must not leak there); text a client reads masks
// only those of the length given (12 in the proxy), so that a placeholder
// key such as "none" leaves the provider's words whole.
func TestRedactorMinLength(t *testing.T) {
	const text = "'nonexistent' is not one of 'none', 'auto'; key sk-0123456789ab refused"
	tests := []struct {
		name string
		r    *Redactor
		want string
	}{
		{"log", NewRedactor([]string{"none", "sk-0123456789ab"}), "'[REDACTED]xistent' is not one of '[REDACTED]', 'auto'; key [REDACTED] refused"},
		{"client", NewRedactorMin([]string{"none", "sk-0123456789ab"}, 12), "'nonexistent' is not one of 'none', 'auto'; key [REDACTED] refused"},
	}
	for _, tc := range tests {
		if got := tc.r.String(text); got != tc.want {
			t.Errorf("%s: %q; want %q", tc.name, got, tc.want)
		}
	}
}

type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

type panicky struct{}

func (panicky) String() string { panic("broken") }

// TestValueWhoseMethodPanics: a nil pointer whose Error or String method
// dereferences it, or a String that panics, is logged as slog's own JSON
// handler logs it ("<nil>", "!PANIC: …"), where the redacting handler,
// calling the method itself, panicked in the code that logged.
func TestValueWhoseMethodPanics(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"typed nil error", (*nilErr)(nil), `"v":"<nil>"`},
		{"nil *url.URL", (*url.URL)(nil), `"v":"<nil>"`},
		{"String panics", panicky{}, `"v":"!PANIC: broken"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("logging %s panicked: %v", tc.name, p)
					}
				}()
				New(&buf, slog.LevelInfo, []string{"sk-live-provider-1234"}).Info("x", "v", tc.v)
			}()
			if !strings.Contains(buf.String(), tc.want) {
				t.Errorf("logged %s; want %s in it", strings.TrimSpace(buf.String()), tc.want)
			}
		})
	}
}

// TestRedactorCut: text masked and then cut short must not end in the
// first bytes of a secret, which masking (whole values only) no longer
// sees: Cut moves a cut back to the start of any secret it would split,
// again while the new cut splits another.
func TestRedactorCut(t *testing.T) {
	r := NewRedactor([]string{"secret-one", "abcd-efgh", "efgh-ijkl-mnop"})
	tests := []struct {
		name string
		text string
		n    int
		want int
	}{
		{"no secret", "plain text here", 5, 5},
		{"inside a secret", "xx secret-one yy", 6, 3},
		{"at a secret's start", "xx secret-one yy", 3, 3},
		{"at a secret's end", "xx secret-one yy", 13, 13},
		{"overlapping secrets, moved twice", "xxabcd-efgh-ijkl-mnopyy", 15, 2},
		{"a secret that runs past the text is not seen", "xx secret-o", 6, 6},
		{"past the end", "short", 99, 5},
		{"negative", "short", -1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Cut([]byte(tc.text), tc.n); got != tc.want {
				t.Errorf("Cut(%q, %d) = %d; want %d", tc.text, tc.n, got, tc.want)
			}
		})
	}
	if NewRedactor(nil).Cut([]byte("text"), 2) != 2 {
		t.Error("a redactor without secrets moved a cut")
	}
}

// TestRedactorValues: Values masks the configured secrets only; a quoted
// Authorization header is content there, not an error's credential.
func TestRedactorValues(t *testing.T) {
	r := NewRedactorMin([]string{"sk-live-provider-1234", "none"}, 12)
	in := "curl -H 'Authorization: Bearer $KEY' (key sk-live-provider-1234, none)"
	want := "curl -H 'Authorization: Bearer $KEY' (key " + Mask + ", none)"
	if got := r.Values(in); got != want {
		t.Errorf("Values: got %q; want %q", got, want)
	}
	if !r.Has([]byte(in)) || r.Has([]byte("none of it")) {
		t.Error("Has: wrong about which text holds a secret of 12 bytes or more")
	}
	// An echo of its start and end around a mark may run to twice its length.
	if r.Longest() != 2*len("sk-live-provider-1234") || NewRedactor(nil).Longest() != 0 {
		t.Errorf("Longest = %d", r.Longest())
	}
}

// TestDigestUnmaskedOnlyWhenHex: a Digest of hex digits and colons (a hash,
// the audit head's SEQ:HASH) is logged as it is, though a short secret
// appears inside it; one holding anything else is masked as a string is,
// so that a Digest given a secret by mistake does not carry it out whole.
func TestDigestUnmaskedOnlyWhenHex(t *testing.T) {
	tests := []struct{ value, want string }{
		{"12:00cafe11", "12:00cafe11"},
		{"00CAFE11", "00CAFE11"},
		{"sk-cafe-key", "sk-" + Mask + "-key"},
		{"", ""},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		New(&buf, slog.LevelInfo, []string{"cafe"}).Info("m", "hash", Digest(tc.value))
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["hash"] != tc.want {
			t.Errorf("Digest(%q) logged as %v; want %q", tc.value, rec["hash"], tc.want)
		}
	}
}

// TestBearerTokenWrittenEscaped: a credential after "Bearer" is masked
// whole when the text writes it escaped, a "/" as JSON's "\/" (PHP's
// json_encode, many gateways), escaped twice (an error quoting the JSON
// body it refused) or a byte percent-encoded (%2F, %2B), the space after
// "Bearer" too in a URL's query (%20, +): the rule's token ended at the
// escape, and the rest of a base64 token went to the log after the mask,
// or the rule did not see the token at all.
func TestBearerTokenWrittenEscaped(t *testing.T) {
	for _, tc := range []struct{ text, tail, want string }{
		{`401 {"error":"header Bearer abc\/def+ghi== refused"}`, `def+ghi`, `Bearer ` + Mask + ` refused`},
		{`401 GET /x?auth=Bearer abc%2Fdef%2Bghi%3D%3D refused`, `def%2Bghi`, `Bearer ` + Mask + ` refused`},
		{`401 GET /x?auth=Bearer%20abc%2Fdef%2Bghi%3D%3D refused`, `def%2Bghi`, `Bearer%20` + Mask + ` refused`},
		{`401 GET /x?auth=Bearer+abc%2Fdef%2Bghi%3D%3D refused`, `def%2Bghi`, `Bearer+` + Mask + ` refused`},
		{`400 {"error":"bad body: {\"auth\":\"Bearer abc\\\/def+ghi==\"} refused"}`, `def+ghi`, `Bearer ` + Mask + `\"} refused`},
	} {
		if got := NewRedactor(nil).String(tc.text); strings.Contains(got, tc.tail) || !strings.Contains(got, tc.want) {
			t.Errorf("masked %s as %s; want the token after Bearer masked whole", tc.text, got)
		}
		var buf bytes.Buffer
		New(&buf, slog.LevelInfo, nil).Warn("upstream attempt failed", "err", errors.New(tc.text))
		if out := buf.String(); strings.Contains(out, tc.tail) || !strings.Contains(out, "Bearer") {
			t.Errorf("logged %s; want the token after Bearer masked whole", strings.TrimSpace(out))
		}
	}
}

// TestBearerTokenAnyCase: the scheme is matched without case, as HTTP
// reads it (RFC 9110 11.1) and as the rule's pattern says ((?i)); the
// check that spares text without the word the pattern looked only for
// "earer" and "EARER", so a token after "BeArEr" or "BEARer", as a
// client or gateway may write the scheme, reached the log whole.
func TestBearerTokenAnyCase(t *testing.T) {
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "BeArEr", "BEARer", "bEArer"} {
		text := "401 header Authorization: " + scheme + " tok_0123456789abcdef refused"
		var buf bytes.Buffer
		New(&buf, slog.LevelInfo, nil).Warn("upstream attempt failed", "err", errors.New(text))
		if out := buf.String(); strings.Contains(out, "0123456789abcdef") || !strings.Contains(out, scheme+" "+Mask+" refused") {
			t.Errorf("%s: logged %s; want the token after the scheme masked", scheme, strings.TrimSpace(out))
		}
	}
}
