package failover

import (
	"strings"
	"testing"
)

// chatPathCases are paths (below the base URL, with a query or none) on
// either side of the chat completions endpoint.
var chatPathCases = []string{
	"/chat/completions", "/chat/completions?", "/chat/completions?x=1", "/chat/completions/",
	"/chat/completionsx", "/chat/completion", "/chat/completion?s", "/embeddings", "", "?",
	"/chat/completions/?x", "?/chat/completions", "/Chat/completions", "//chat/completions",
}

// isChatPathByCut is isChatPath as it was: the path cut at its query and
// compared.
func isChatPathByCut(path string) bool {
	p, _, _ := strings.Cut(path, "?")
	return p == "/chat/completions"
}

// TestIsChatPathMatchesCut holds isChatPath to the cut and compare it
// replaced.
func TestIsChatPathMatchesCut(t *testing.T) {
	for _, p := range chatPathCases {
		if got, want := isChatPath(p), isChatPathByCut(p); got != want {
			t.Errorf("isChatPath(%q) = %v; cut and compared, %v", p, got, want)
		}
	}
}

func FuzzIsChatPath(f *testing.F) {
	for _, p := range chatPathCases {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := isChatPath(p), isChatPathByCut(p); got != want {
			t.Fatalf("isChatPath(%q) = %v; cut and compared, %v", p, got, want)
		}
	})
}
