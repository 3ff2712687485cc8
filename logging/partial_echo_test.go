package logging

import (
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
	if strings.Contains(NewRedactor([]string{key}).String("x"), Mask) {
		t.Error("masked text without a secret")
	}
}
