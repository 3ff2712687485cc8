package logging

import (
	"net/url"
	"strings"
	"testing"
)

// TestRedactorMasksAPartialEcho: a provider or gateway that "masks" the key
// it refuses by keeping most of it (sk-proj-AbCd…wxyz***, ***…tail) hands
// whoever reads its message most of the key: the stretch of a secret's
// start or end that holds at least half of it is masked, while a short
// shared prefix (sk-, sk-proj-) and the words around it are left alone.
func TestRedactorMasksAPartialEcho(t *testing.T) {
	const key = "sk-provA-CANARY-0123456789abcdef" // 32 bytes
	tests := []struct {
		name, text, want string
	}{
		{"head kept, tail starred", "Incorrect API key provided: sk-provA-CANARY-0123456789abc***. See docs",
			"Incorrect API key provided: " + Mask + "***. See docs"},
		{"half the key, then dots", "key sk-provA-CANARY-0…", "key " + Mask + "…"},
		{"tail kept, head starred", "token ***ARY-0123456789abcdef refused", "token ***" + Mask + " refused"},
		{"in JSON", `{"message":"bad key sk-provA-CANARY-01234567"}`, `{"message":"bad key ` + Mask + `"}`},
		{"OpenAI's own mask keeps little", "Incorrect API key provided: sk-provA***cdef.", "Incorrect API key provided: sk-provA***cdef."},
		{"a shared prefix alone", "keys look like sk-provA-CANARY-", "keys look like sk-provA-CANARY-"},
		{"the whole key", "key " + key + ".", "key " + Mask + "."},
		{"its middle, both ends starred", "key ***ovA-CANARY-0123456789ab*** refused", "key ***" + Mask + "*** refused"},
		{"its start and end around stars", "key sk-provA-CANAR****23456789abcdef refused", "key " + Mask + " refused"},
		{"its start and end around dots", "key sk-provA-CANARY…3456789abcdef.", "key " + Mask + "."},
		{"its start and end, a long mark", "key sk-provA-CAN" + strings.Repeat("*", 30) + "789abcdef.", "key " + Mask + "."},
		{"start and end keeping under half", "key sk-provA-C" + strings.Repeat("*", 18) + "cdef.", "key sk-provA-C" + strings.Repeat("*", 18) + "cdef."},
		{"start and end too far apart", "key sk-provA-CANAR " + strings.Repeat("x", 40) + " 3456789abcdef", "key sk-provA-CANAR " + strings.Repeat("x", 40) + " 3456789abcdef"},
		{"end before start", "3456789abcdef sk-provA-CANAR", "3456789abcdef sk-provA-CANAR"},
	}
	for _, min := range []int{4, ClientMinSecret} {
		r := NewRedactorMin([]string{key, "short-pw"}, min)
		for _, tc := range tests {
			if got := r.String(tc.text); got != tc.want {
				t.Errorf("min %d, %s: got %q; want %q", min, tc.name, got, tc.want)
			}
			if tc.want != tc.text && !r.Has([]byte(tc.text)) {
				t.Errorf("min %d, %s: Has(%q) is false: the stream mask would skip it", min, tc.name, tc.text)
			}
		}
	}
	// A short secret's half is no secret's: "short-pw" is not masked in part.
	if got := NewRedactor([]string{"short-pw"}).String("short-p and rt-pw"); got != "short-p and rt-pw" {
		t.Errorf("short secret masked in part: %q", got)
	}
	// Encoded as a provider writes it in a JSON body or a URL, most of a
	// key with "/" and "+" is masked as the key is.
	const slashed = "Zk9+a2V5/with/slash+plus/0123456789" // 35 bytes
	r := NewRedactorMin([]string{slashed}, ClientMinSecret)
	for _, text := range []string{
		`{"message":"bad key ` + strings.ReplaceAll(slashed[:30], "/", `\/`) + `***"}`,
		"GET /v1?key=" + url.QueryEscape(slashed[:30]) + "***",
		"GET /v1?key=" + lowerHex(url.QueryEscape(slashed[:30])) + "***",
	} {
		if got := r.String(text); !strings.Contains(got, Mask) || !r.Has([]byte(text)) {
			t.Errorf("most of an encoded key: got %q (Has %v)", got, r.Has([]byte(text)))
		}
	}
	if strings.Contains(NewRedactor([]string{key}).String("x"), Mask) {
		t.Error("masked text without a secret")
	}
}

// TestRedactorCutKeepsAPartialEchoWhole: text relayed in parts (a
// forwarded stream's long line, read by read) is cut where Cut says and
// each part masked alone; an echo of most of a key cut in two parts of
// less than half each would pass both. Cut moves the cut to the echo's
// start, and leaving Longest()-1 bytes after it sees the echo whole.
func TestRedactorCutKeepsAPartialEchoWhole(t *testing.T) {
	const key = "sk-provA-CANARY-0123456789abcdef" // 32 bytes
	r := NewRedactorMin([]string{key}, ClientMinSecret)
	for _, echo := range []string{
		key[:29] + "***",
		"***" + key[4:27] + "***",
		key[:14] + "****" + key[18:],
		key[:10] + strings.Repeat("*", 30) + key[25:],
	} {
		text := "upstream said: key " + echo + " is wrong; " + strings.Repeat("x", 2*r.Longest())
		at := strings.Index(text, echo)
		for n := at + 1; n < at+len(echo); n++ {
			// Relayed as sseErrorMask.relayLong does: the part before
			// the cut masked, then the rest.
			c := r.Cut([]byte(text), n)
			out := r.Values(text[:c]) + r.Values(text[c:])
			for i := 0; i+8 <= len(key); i++ {
				if strings.Contains(out, key[i:i+8]) {
					t.Errorf("echo %q cut at %d (asked %d): relayed %q", echo, c, n, out)
					break
				}
			}
		}
	}
}

// TestRedactorHasAgreesWithValues: Has is the check that spares text
// without a secret the copy of masking it (sseErrorMask.values); text it
// calls clean must be text Values leaves as it is, for every part of a key
// echoed alone or as its start and end around a mark.
// Keys with a common prefix (commonPrefix) too, whose spans must hold
// bytes past it.
func TestRedactorHasAgreesWithValues(t *testing.T) {
	for _, key := range []string{"sk-provA-CANARY-0123456789abcdef", "sk-proj-ab12cd34", "paygate-redis", "Bearer cfut_0123456789abcdef"} {
		r := NewRedactorMin([]string{key}, ClientMinSecret)
		check := func(text string) {
			if changed := r.Values(text) != text; changed != r.Has([]byte(text)) {
				t.Errorf("Has(%q) = %v; Values changes it: %v", text, !changed, changed)
			}
		}
		for i := 0; i < len(key); i++ {
			for j := i + 1; j <= len(key); j++ {
				check("key *" + key[i:j] + "* refused")
				check("key " + key[:i] + "***" + key[j:] + " refused")
			}
		}
	}
}

// TestRedactorHasFindsEveryValue: Has finds each secret value (its
// encoded forms too) wherever it stands, one under the four bytes its
// one-pass filter keys on as well, and nothing in text without one.
func TestRedactorHasFindsEveryValue(t *testing.T) {
	secrets := []string{"ab", "pw-1", "sk-live-provider-0123456789abcdef", "Zk9+a2V5/with/slash+plus=="}
	r := NewRedactorMin(secrets, 1)
	for _, v := range r.values {
		for _, text := range []string{v, v + " tail", "head " + v, "head " + v + " tail"} {
			if !r.Has([]byte(text)) {
				t.Errorf("Has(%q) is false: it holds %q", text, v)
			}
		}
	}
	if r := NewRedactor(secrets[1:]); r.Has([]byte("plain text, sk-live and Zk9 and pw-")) {
		t.Error("Has is true for text without a secret")
	}
}

// TestRedactorPartialRuleSkipsCommonPrefixes: the partial rule masks more
// than half of a secret of 12 bytes or more, but for a short one the half
// is mostly what every value of its kind shares: a header's scheme
// ("Bearer EMPTY", a local provider's placeholder in providers[].headers,
// or in a webhook URL's query), a key's prefix (sk-proj-), a password's
// common word (paygate-redis). Text that holds only that and a few bytes
// more ("Use Bearer Error") was mangled ("Use [REDACTED]rror") in the
// error a bot reads and in the log. Such text is left as it is; the whole
// value, and a stretch with enough of the secret's own bytes, are still
// masked, and a scheme's long credential is masked in part on its own.
func TestRedactorPartialRuleSkipsCommonPrefixes(t *testing.T) {
	tests := []struct {
		secret, text, want string
	}{
		{"Bearer EMPTY", "Use Bearer Error", "Use Bearer Error"},
		{"Bearer EMPTY", "the Authorization header EMPTY", "the Authorization header EMPTY"},
		{"Bearer EMPTY", "sent Bearer EMPTY.", "sent " + Mask + "."},
		{"Bearer%20EMPTY", "GET /hook?auth=Bearer%20Error", "GET /hook?auth=Bearer%20Error"},
		{"Bearer%20EMPTY", "GET /hook?auth=Bearer%20EMPTY", "GET /hook?auth=" + Mask},
		{"Basic dXNlcjpwYXNz", "Basic dXNlcnMgYXJl", "Basic dXNlcnMgYXJl"},
		{"paygate-redis", "paygate-request failed", "paygate-request failed"},
		{"paygate-redis", "dial paygate-relay:8080", "dial paygate-relay:8080"},
		{"paygate-redis", "AUTH paygate-redis refused", "AUTH " + Mask + " refused"},
		{"paygate-redis", "AUTH ***aygate-redis refused", "AUTH ***" + Mask + " refused"},
		{"sk-proj-ab12cd", "keys look like sk-proj-a…", "keys look like sk-proj-a…"},
		{"sk-proj-ab12cd", "key ***j-ab12cd refused", "key ***" + Mask + " refused"},
		// A scheme's credential of 12 bytes or more keeps the partial
		// rule, on its own.
		{"Bearer cfut_0123456789abcdef", "invalid token cfut_0123456789ab***", "invalid token " + Mask + "***"},
		{"Bearer cfut_0123456789abcdef", "Use Bearer cfut_0… as shown", "Use Bearer cfut_0… as shown"},
	}
	for _, min := range []int{4, ClientMinSecret} {
		for _, tc := range tests {
			r := NewRedactorMin([]string{tc.secret}, min)
			if got := r.Values(tc.text); got != tc.want {
				t.Errorf("min %d, secret %q: Values(%q) = %q; want %q", min, tc.secret, tc.text, got, tc.want)
			}
			if has := r.Has([]byte(tc.text)); has != (tc.want != tc.text) {
				t.Errorf("min %d, secret %q: Has(%q) = %v", min, tc.secret, tc.text, has)
			}
		}
	}
}

// TestRedactorPartialRuleKeepsASecretWithASpace: a header value's scheme
// ("Bearer …") is masked in part by its credential alone, but a secret
// whose first word is no auth scheme is a secret whole: a Redis password
// or admin token with one space, more than half of it echoed, stays
// masked (it parsed as "scheme credential", and the partial rule covered
// its second word alone, or nothing when that was under 12 bytes).
func TestRedactorPartialRuleKeepsASecretWithASpace(t *testing.T) {
	tests := []struct {
		secret, text, want string
	}{
		{"correcthorse batterystaple", "WRONGPASS correcthorse battery", "WRONGPASS " + Mask},
		{"letmein Xy7#kQ2pZ", "AUTH ein Xy7#kQ2pZ refused", "AUTH " + Mask + " refused"},
		{"letmein%20Xy7#kQ2pZ", "GET /hook?pw=in%20Xy7#kQ2pZ", "GET /hook?pw=" + Mask},
		// A known scheme, any case, still gets its credential's rule.
		{"bearer EMPTY", "Use Bearer Error", "Use Bearer Error"},
		{"Token EMPTYEMPTY", "Use Token EMPTor", "Use Token EMPTor"},
	}
	for _, min := range []int{4, ClientMinSecret} {
		for _, tc := range tests {
			r := NewRedactorMin([]string{tc.secret}, min)
			if got := r.Values(tc.text); got != tc.want {
				t.Errorf("min %d, secret %q: Values(%q) = %q; want %q", min, tc.secret, tc.text, got, tc.want)
			}
			if has := r.Has([]byte(tc.text)); has != (tc.want != tc.text) {
				t.Errorf("min %d, secret %q: Has(%q) = %v", min, tc.secret, tc.text, has)
			}
		}
	}
}
