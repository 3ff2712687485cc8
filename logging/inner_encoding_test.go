package logging

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

// TestHandlerLogsOnlyWhatJSONWrites: a structured value is checked in the
// text the JSON handler writes for it, and logged as that text, masked.
// The handler logged the value's %+v text instead whenever that held a
// secret the JSON did not (a secret in an unexported field, which JSON
// leaves out): every other unexported field went out with it, a PEM or a
// key's bytes as numbers, none of which the JSON handler ever writes.
func TestHandlerLogsOnlyWhatJSONWrites(t *testing.T) {
	const secret = "sk-live-provider-1234"
	pem := []byte("-----BEGIN PRIVATE KEY-----")
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"unexported secret beside unexported bytes", struct {
			Name string
			key  string
			pem  []byte
		}{"wechatpay", secret, pem}, `"v":{"Name":"wechatpay"}`},
		{"value JSON cannot encode", struct {
			F    func()
			S    string
			note string
		}{nil, secret, "o7Xy-openid-of-a-user"}, `"v":"!ERROR:json: unsupported type: func()"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			New(&buf, slog.LevelInfo, []string{secret}).Info("x", "v", tc.v)
			out := buf.String()
			for _, hidden := range []string{secret, strconv.Itoa(int(pem[0])) + " " + strconv.Itoa(int(pem[1])), "o7Xy"} {
				if strings.Contains(out, hidden) {
					t.Errorf("log line %s carries %q, which the JSON handler does not write", strings.TrimSpace(out), hidden)
				}
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("log line %s lacks %s", strings.TrimSpace(out), tc.want)
			}
		})
	}
}

// TestHandlerValueThatHoldsItself: a map that holds itself is logged as
// slog's JSON handler logs it (its encoder finds the cycle); the handler's
// %+v of it recursed until the runtime stopped the process (fatal error:
// stack overflow, which no recover catches).
func TestHandlerValueThatHoldsItself(t *testing.T) {
	m := map[string]any{"a": "sk-live-provider-1234"}
	m["self"] = m
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo, []string{"sk-live-provider-1234"}).Info("x", "m", m)
	if want := `"m":"!ERROR:json: unsupported value: encountered a cycle via map[string]interface {}"`; !strings.Contains(buf.String(), want) {
		t.Errorf("log line %s lacks %s", strings.TrimSpace(buf.String()), want)
	}
}

// TestTextHandlerMasksWhatItWrites: under slog's text handler (the
// `paygate audit` and `paygate tool` commands' stderr), a value is written
// as %+v, unexported fields and bytes as numbers included: the check reads
// that text and those bytes, not the JSON the log would write. A []byte
// secret in an unexported field went out as numbers.
func TestTextHandlerMasksWhatItWrites(t *testing.T) {
	const secret = "hash-SECRET-6f7a8b9c0d"
	type Key []byte
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"unexported bytes", struct {
			Mode string
			key  []byte
		}{"hash", []byte(secret)}, `v=` + Mask},
		{"unexported string", struct {
			Mode string
			key  string
		}{"hash", secret}, `v="{Mode:hash key:` + Mask + `}"`},
		{"named byte type", Key(secret), `v=` + Mask},
		{"no secret", struct {
			Mode string
			n    int
		}{"hash", 3}, `v="{Mode:hash n:3}"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(NewHandler(slog.NewTextHandler(&buf, nil), NewRedactor([]string{secret}))).Info("x", "v", tc.v)
			out := buf.String()
			if dec := strconv.Itoa(int(secret[0])) + " " + strconv.Itoa(int(secret[1])); strings.Contains(out, secret) || strings.Contains(out, dec) {
				t.Errorf("log line %s carries the secret", strings.TrimSpace(out))
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("log line %s lacks %s", strings.TrimSpace(out), tc.want)
			}
		})
	}
}

// TestSecretEscapedTwice: a secret with a character JSON escapes (a quote,
// a backslash, "/" for PHP) written inside a JSON string twice, as the
// encoder writes a `json:",string"` field or a provider's error quotes the
// JSON body it refused, is masked: only the once-escaped forms were, and
// the struct field, which the value's %+v text used to catch, went out.
func TestSecretEscapedTwice(t *testing.T) {
	const secret = `pw"q/o\ted`
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo, []string{secret}).Info("x", "v", struct {
		P string `json:",string"`
	}{secret})
	// As PHP's json_encode writes it, "/" as "\/", the body and then the
	// error quoting it.
	php := func(s string) string {
		b, _ := json.Marshal(s)
		return strings.ReplaceAll(string(b), "/", `\/`)
	}
	echo := php(`{"password":` + php(secret) + `}`)
	for _, text := range []string{buf.String(), NewRedactor([]string{secret}).String(`400 {"error":"bad body: ` + echo[1:len(echo)-1] + `"}`)} {
		if strings.Contains(text, "ted") {
			t.Errorf("%s carries the secret", strings.TrimSpace(text))
		}
	}
}

// hexText is a secret held as hex that writes itself as the secret's
// text: %+v and the JSON of its field show hex, MarshalText the secret.
type hexText struct{ h string }

func (x hexText) MarshalText() ([]byte, error) { return hex.DecodeString(x.h) }

// refusing writes nothing but an error that quotes a secret.
type refusing struct{ k string }

func (x refusing) MarshalJSON() ([]byte, error) { return nil, errors.New("bad key " + x.k) }
func (x refusing) MarshalText() ([]byte, error) { return nil, errors.New("bad key " + x.k) }

// TestHandlerMasksWhatMethodsWrite: under either handler, through a
// logger's With and WithGroup too, what a value's MarshalText writes,
// the error its MarshalJSON or MarshalText returns (written after
// "!ERROR:") and a secret in an unexported field under the text handler
// are masked.
func TestHandlerMasksWhatMethodsWrite(t *testing.T) {
	const secret = "hash-SECRET-6f7a8b9c0d"
	for _, text := range []bool{false, true} {
		for _, wrap := range []string{"", "with", "group"} {
			var buf bytes.Buffer
			var inner slog.Handler = slog.NewJSONHandler(&buf, nil)
			if text {
				inner = slog.NewTextHandler(&buf, nil)
			}
			log := slog.New(NewHandler(inner, NewRedactor([]string{secret})))
			switch wrap {
			case "with":
				log = log.With("mode", "hash")
			case "group":
				log = log.WithGroup("g")
			}
			log.Info("x", "t", hexText{hex.EncodeToString([]byte(secret))}, "e", refusing{secret}, "u", struct {
				Mode string
				key  []byte
			}{"hash", []byte(secret)})
			out := buf.String()
			if dec := strconv.Itoa(int(secret[0])) + " " + strconv.Itoa(int(secret[1])); strings.Contains(out, secret) || strings.Contains(out, dec) {
				t.Errorf("text handler %v, %q: log line %s carries the secret", text, wrap, strings.TrimSpace(out))
			}
			if !strings.Contains(out, "!ERROR:") {
				t.Errorf("text handler %v, %q: log line %s lacks the refusing value's error", text, wrap, strings.TrimSpace(out))
			}
		}
	}
}

// TestSecretEscapedTwiceHTML: a secret with & < > and a quote, escaped
// twice by encoders that differ in HTML escaping (Go's json.Marshal
// escapes & < > as \u0026 …, paygate's log and PHP do not): both passes
// HTML-escaping (a `json:",string"` field of a Go service), and a body
// written without it then quoted by json.Marshal in an error.
func TestSecretEscapedTwiceHTML(t *testing.T) {
	const secret = `pw&q"<zed`
	esc := func(s string, html bool) string {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(s)
		return strings.TrimSpace(b.String())
	}
	field, _ := json.Marshal(struct {
		P string `json:",string"`
	}{secret})
	for _, text := range []string{
		string(field),
		`400 {"error":` + esc(`{"password":`+esc(secret, false)+`}`, true) + `}`,
	} {
		if got := NewRedactor([]string{secret}).String(text); strings.Contains(got, "zed") {
			t.Errorf("%s masked as %s", text, got)
		}
	}
}

// chain is a linked list, as deep as it is long.
type chain struct {
	Next *chain
	B    []byte
}

// TestHandlerMasksSecretBytesDeepInValue: secret bytes deeper than the
// walk for them goes (a list of 40 nodes is 80 steps) are not written as
// base64 (or as numbers): the JSON handler writes a value to any depth,
// and the walk stopped at 64 steps and called the value clean.
func TestHandlerMasksSecretBytesDeepInValue(t *testing.T) {
	const secret = "sk-live-provider-1234"
	for _, n := range []int{3, 40, 2000} {
		head := &chain{B: []byte(secret)}
		for range n {
			head = &chain{Next: head}
		}
		for _, text := range []bool{false, true} {
			var buf bytes.Buffer
			var inner slog.Handler = slog.NewJSONHandler(&buf, nil)
			if text {
				inner = slog.NewTextHandler(&buf, nil)
			}
			slog.New(NewHandler(inner, NewRedactor([]string{secret}))).Info("x", "v", head)
			out := buf.String()
			if dec := strconv.Itoa(int(secret[0])) + " " + strconv.Itoa(int(secret[1])); strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(secret))) || strings.Contains(out, dec) || !text && !strings.Contains(out, Mask) {
				t.Errorf("%d nodes, text handler %v: log line %.300s", n, text, strings.TrimSpace(out))
			}
		}
	}
}
