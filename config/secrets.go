package config

import (
	"os"
	"reflect"
	"strings"
)

// Which keys hold secrets, so that no error prints one: check-config's and
// serve's stderr end up in CI output and crash-loop logs. Secrets (the
// values, for the redacting logger) and secretKey (the key paths, for
// errors) read the same marks: the secret:"true" tag and credentialHeader.

// credentialHeader reports whether a header of providers[].headers carries
// a credential, by its name: Secrets lists its value for the logger, and
// config errors never print it (secretKey). Besides key, token, auth and
// secret, a name that says password (X-Api-Password, …-Passwd, …-Pass),
// credential, or the Cookie an auth proxy's session rides in (oauth2-proxy,
// Cloudflare Access): a provider behind one echoes it as readily, and
// without these its value reached the log, the bot's error and config
// errors. Not "pass" inside another word (X-Cache-Bypass, X-Passthrough),
// whose harmless value would be masked wherever the word appears.
func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "key") || strings.Contains(n, "token") ||
		strings.Contains(n, "auth") || strings.Contains(n, "secret") ||
		strings.Contains(n, "password") || strings.Contains(n, "passwd") ||
		n == "pass" || strings.HasSuffix(n, "-pass") || strings.HasSuffix(n, "_pass") ||
		strings.Contains(n, "credential") || strings.Contains(n, "cookie")
}

// minCookieSecret is the length from which the value of one pair of a
// credential Cookie header is a secret of its own (Secrets): a session id
// is far longer, while a short value beside it (theme=dark), masked as a
// substring, would mangle every line that holds the word. It is the
// bound the proxy masks a client's text from (logging.ClientMinSecret).
const minCookieSecret = 12

// cookieCredentials hands add the value of each pair of a Cookie header
// value ("a=v1; b=v2") of at least minCookieSecret bytes, its quotes
// removed: a provider or proxy that refuses a session echoes the
// session's value, never the header's whole value.
func cookieCredentials(v string, add func(string)) {
	for pair := range strings.SplitSeq(v, ";") {
		_, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if ok && len(val) >= minCookieSecret {
			add(val)
		}
	}
}

// secretKey reports whether the value at a key path ("providers[0].api_key",
// "store.redis.password_file") must never be printed in an error, because
// check-config's and serve's stderr end up in CI output and crash-loop logs.
// It is a secret when the path is
//   - a key tagged secret:"true" (those Secrets hands the logger),
//   - a "*_file" key: a file name is harmless, but the slip it guards
//     against is the secret itself given where a path was wanted
//     (api_key_file: ${OPENROUTER_API_KEY}),
//   - a providers[].headers entry whose name carries a credential
//     (credentialHeader, as Secrets), or
//   - a key config does not know: it may be a secret's misspelt name.
func secretKey(path string) bool {
	t := reflect.TypeOf(Config{})
	for {
		// t is a struct and path starts with one of its keys.
		end := strings.IndexAny(path, ".[")
		if end < 0 {
			end = len(path)
		}
		name, rest := path[:end], path[end:]
		f, ok := yamlFields(t)[name]
		if !ok {
			return true
		}
		if secretField(name, f) {
			return true
		}
		ft := f.Type
		for strings.HasPrefix(rest, "[") && ft.Kind() == reflect.Slice {
			i := strings.IndexByte(rest, ']')
			if i < 0 {
				return true
			}
			rest, ft = rest[i+1:], ft.Elem()
		}
		if rest == "" {
			return false
		}
		rest, ok = strings.CutPrefix(rest, ".")
		if !ok {
			return true
		}
		switch ft.Kind() {
		case reflect.Struct:
			t, path = ft, rest
		case reflect.Map:
			// The rest is a map key (a header name may hold a '.'), then
			// perhaps keys of the value's own.
			if ft.Elem().Kind() == reflect.String {
				return name == "headers" && credentialHeader(rest)
			}
			return holdsSecret(ft.Elem())
		default:
			return true
		}
	}
}

// holdsSecret reports whether a value of type t has a secret key anywhere
// in it.
func holdsSecret(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer:
		return holdsSecret(t.Elem())
	case reflect.Struct:
		for name, f := range yamlFields(t) {
			if secretField(name, f) || holdsSecret(f.Type) {
				return true
			}
		}
	}
	return false
}

// secretField reports whether a struct field, by its yaml name, holds a
// secret or the name of a file holding one.
func secretField(name string, f reflect.StructField) bool {
	return f.Tag.Get("secret") == "true" || strings.HasSuffix(name, "_file") || strings.HasSuffix(name, "_files")
}

// notAPath says why a "*_file" value that cannot be read may be the secret
// itself rather than a file name, or "" when it looks like a file name or
// names something that is there (a directory, a file it may not read).
// The value is never printed: this is all the operator learns of it.
func notAPath(v string) string {
	if _, err := os.Stat(v); err == nil {
		return ""
	}
	switch {
	case strings.Contains(v, "-----BEGIN"):
		return " (the value is PEM text, not a file name)"
	case strings.ContainsAny(v, "\r\n"):
		return " (the value spans lines: file contents, not a file name)"
	case !strings.ContainsAny(v, "/\\"):
		return " (the value has no '/': it looks like a key, not a path)"
	}
	return ""
}
