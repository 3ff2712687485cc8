package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestEncodedSecretEchoLogged: a provider or gateway that echoes a
// configured secret encoded, percent-encoded (quoting the request URL or
// form: url.QueryEscape, url.PathEscape) or JSON-escaped with "\/" for "/"
// (PHP's json_encode, many gateways), must not put it in the log or in text
// a client reads.
func TestEncodedSecretEchoLogged(t *testing.T) {
	key := "Zk9+a2V5/with/slash+plus== x&y"
	jsonForm, _ := json.Marshal(key)
	echoes := map[string]string{
		"json-slash":  strings.ReplaceAll(key, "/", `\/`),
		"query":       url.QueryEscape(key),
		"path":        url.PathEscape(key),
		"json-escape": strings.ReplaceAll(strings.Trim(string(jsonForm), `"`), "/", `\/`),
	}
	for name, echo := range echoes {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			New(&buf, slog.LevelInfo, []string{key}).Warn("upstream attempt failed", "err", errors.New(`401 {"error":"bad key `+echo+`"}`))
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			if got := line["err"].(string); strings.Contains(got, echo) || !strings.Contains(got, Mask) {
				t.Errorf("log: encoded key %q not masked: %q", echo, got)
			}
			r := NewRedactorMin([]string{key}, ClientMinSecret)
			if got := r.String("bad key " + echo); got != "bad key "+Mask {
				t.Errorf("client: %q", got)
			}
			if !r.Has([]byte("x" + echo + "y")) {
				t.Error("Has does not see the encoded key")
			}
		})
	}
	// A secret that no encoding changes is masked once, as before.
	if got := NewRedactor([]string{"plain-secret-123"}).String("a plain-secret-123 b"); got != "a "+Mask+" b" {
		t.Errorf("plain secret: %q", got)
	}
}

// TestEncodedSecretEchoLowerHex: a gateway that percent-encodes with
// lower-case hex (%2b, %2f: RFC 3986 says the two are equivalent, and many
// encoders and proxies write it) echoes the key in a form url.QueryEscape
// and url.PathEscape do not write; it must not reach the log or a client.
func TestEncodedSecretEchoLowerHex(t *testing.T) {
	key := "Zk9+a2V5/with/slash+plus== x&y"
	lower := regexp.MustCompile(`%[0-9A-F]{2}`)
	echoes := map[string]string{
		"query": lower.ReplaceAllStringFunc(url.QueryEscape(key), strings.ToLower),
		"path":  lower.ReplaceAllStringFunc(url.PathEscape(key), strings.ToLower),
	}
	for name, echo := range echoes {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(echo, "%2f") {
				t.Fatalf("echo %q has no lower-case hex", echo)
			}
			var buf bytes.Buffer
			New(&buf, slog.LevelInfo, []string{key}).Warn("upstream attempt failed", "err", errors.New(`401 {"error":"bad key `+echo+`"}`))
			if strings.Contains(buf.String(), echo) || !strings.Contains(buf.String(), Mask) {
				t.Errorf("log: lower-case-hex key %q not masked: %s", echo, buf.String())
			}
			r := NewRedactorMin([]string{key}, ClientMinSecret)
			if got := r.String("bad key " + echo); got != "bad key "+Mask {
				t.Errorf("client: %q", got)
			}
			if !r.Has([]byte("x" + echo + "y")) {
				t.Error("Has does not see the lower-case-hex key")
			}
		})
	}
}

// TestHandlerAddsRequestIDFromContext: a line logged with a request's
// context gets its id; one that names its own request_id keeps it, and
// one without a context gets none.
func TestHandlerAddsRequestIDFromContext(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo, nil)
	ctx := WithRequestID(context.Background(), "req_abc")
	log.WarnContext(ctx, "from ctx")
	log.WarnContext(ctx, "own id", "request_id", "req_own")
	log.Warn("no ctx")
	want := []any{"req_abc", "req_own", nil}
	for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["request_id"] != want[i] {
			t.Errorf("line %d: request_id %v; want %v: %s", i, rec["request_id"], want[i], line)
		}
		if strings.Count(line, "request_id") > 1 {
			t.Errorf("line %d: request_id twice: %s", i, line)
		}
	}
}

// TestSecretInURLUserinfo: a secret written as a URL's user or password
// (url.UserPassword, a Redis or webhook URL built from config), which
// escapes "@", ":", "/" and "?" but not "&", "=" or "+" (neither
// url.QueryEscape's form nor url.PathEscape's), is masked in the log
// under both handlers and in text a client reads.
func TestSecretInURLUserinfo(t *testing.T) {
	for _, secret := range []string{"p@ss&word", "gw:p@ss&w0rd+long?enough"} {
		u := &url.URL{Scheme: "https", Host: "gw.example", User: url.UserPassword("paygate", secret)}
		_, written, _ := strings.Cut(u.User.String(), ":")
		for _, text := range []bool{false, true} {
			var buf bytes.Buffer
			var inner slog.Handler = slog.NewJSONHandler(&buf, nil)
			if text {
				inner = slog.NewTextHandler(&buf, nil)
			}
			slog.New(NewHandler(inner, NewRedactor([]string{secret}))).Warn("webhook delivery failed", "url", u.String(), "err", errors.New("dial "+u.String()+": refused"))
			if strings.Contains(buf.String(), written) || strings.Count(buf.String(), Mask) != 2 {
				t.Errorf("secret %q (written %q), text handler %v: logged %s", secret, written, text, strings.TrimSpace(buf.String()))
			}
		}
		if len(secret) >= ClientMinSecret {
			if got := NewRedactorMin([]string{secret}, ClientMinSecret).String("502 from " + u.String()); got != "502 from https://paygate:"+Mask+"@gw.example" {
				t.Errorf("client text: %q", got)
			}
		}
	}
}

// TestURLPasswordNotLogged: a *url.URL is logged without its password,
// configured secret or not, under both handlers: the JSON handler writes
// the URL's fields, in which the password is not (User is {}), but the
// redacting handler logged the URL's String, password and all; the text
// handler writes String.
func TestURLPasswordNotLogged(t *testing.T) {
	u := &url.URL{Scheme: "redis", Host: "cache:6379", User: url.UserPassword("default", "unlisted-pass-91")}
	for _, text := range []bool{false, true} {
		var buf bytes.Buffer
		var inner slog.Handler = slog.NewJSONHandler(&buf, nil)
		if text {
			inner = slog.NewTextHandler(&buf, nil)
		}
		slog.New(NewHandler(inner, NewRedactor(nil))).Warn("store unreachable", "url", u)
		if out := buf.String(); strings.Contains(out, "unlisted-pass-91") || !strings.Contains(out, "redis://default:xxxxx@cache:6379") {
			t.Errorf("text handler %v: logged %s", text, strings.TrimSpace(out))
		}
	}
}
