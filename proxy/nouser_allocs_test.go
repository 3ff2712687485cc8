package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/interceptors"
)

// TestSignedOutChatAfterItsLineAllocatesNothing: a bot whose visitors are
// signed out, or that names its users where paygate does not read them,
// sends every chat request so; its cause is logged once, and each request
// after that must cost nothing more than the look-up (the cause's text was
// built, and the body's user and metadata copied, for every request before
// the once-check; a request with metadata and no user copied its metadata
// to look for an OpenID in it).
func TestSignedOutChatAfterItsLineAllocatesNothing(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c := &config.Client{Name: "bot"}
	for _, tc := range []struct {
		name string
		hdr  http.Header
		body string
	}{
		{"no user", http.Header{}, `{"model":"m","messages":[]}`},
		{"X-OpenID", http.Header{"X-Openid": {"o-user-0000000000000000000001"}}, `{"model":"m","messages":[]}`},
		{"user an object", http.Header{}, `{"model":"m","user":{"openid":"o-user-0000000000000000000001"},"messages":[]}`},
		{"metadata openid", http.Header{}, `{"model":"m","metadata":{"shop":"s1","openid":"o-user-0000000000000000000001"},"messages":[]}`},
	} {
		chat, err := interceptors.ReadChat([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		s.sayNoUser(c, "req_1", tc.hdr, &chat) // said here, once
		if n := testing.AllocsPerRun(100, func() { s.sayNoUser(c, "req_2", tc.hdr, &chat) }); n != 0 {
			t.Errorf("%s, said already: %v allocations per request; want 0", tc.name, n)
		}
	}
	chat, err := interceptors.ReadChat([]byte(`{"model":"m","metadata":{"shop":"s1","conversation":"c-42"},"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if metadataOpenID(chat.RawMetadata()) != "" {
			t.Fatal("an OpenID in metadata without one")
		}
	}); n != 0 {
		t.Errorf("metadataOpenID of metadata naming no OpenID: %v allocations; want 0", n)
	}
}
