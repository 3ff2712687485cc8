package proxy

import (
	"strings"
	"testing"
)

// FuzzPlainIDPassesEveryCheck holds userIDError's fast path to its checks
// (userIDChecks, which the fast path would skip): an id plainID takes is
// one that none of them refuses, as user or session, and userIDError
// answers for any pair what the checks alone answer.
func FuzzPlainIDPassesEveryCheck(f *testing.F) {
	for _, id := range []string{"", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", " o", "o ", "\to", "o\t", "o\x7f", "o\x00",
		"o\n", "\uFFFD", "o\xff", "é", strings.Repeat("o", maxUserID), strings.Repeat("o", maxUserID+1), "a b", "~!"} {
		f.Add(id, "")
		f.Add("o", id)
		f.Add(id, id)
	}
	f.Fuzz(func(t *testing.T, user, session string) {
		for _, id := range []string{user, session} {
			if !plainID(id) {
				continue
			}
			if e := userIDChecks(id, ""); e != nil {
				t.Fatalf("plainID(%q) but a check refuses it as user: %s", id, e.Message)
			}
			if e := userIDChecks("o", id); e != nil {
				t.Fatalf("plainID(%q) but a check refuses it as session: %s", id, e.Message)
			}
		}
		got, want := userIDError(user, session), userIDChecks(user, session)
		if (got == nil) != (want == nil) || got != nil && (got.Code != want.Code || got.Message != want.Message) {
			t.Fatalf("userIDError(%q, %q) = %+v, its checks alone %+v", user, session, got, want)
		}
	})
}

// TestPlainIDTakesTheUsualIDs: the fast path is taken for an OpenID, a
// UUID and a session id with a space inside, and not for an id any check
// would look at.
func TestPlainIDTakesTheUsualIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o":         true,
		"0f8fad5b-d9cb-469f-a165-70867728950e": true,
		"chat 42":                              true,
		"":                                     true,
		" o":                                   false,
		"o\t":                                  false,
		"o\x7f":                                false,
		"é":                                    false,
		strings.Repeat("o", maxUserID+1):       false,
	} {
		if got := plainID(id); got != want {
			t.Errorf("plainID(%q) = %v, want %v", id, got, want)
		}
	}
}
