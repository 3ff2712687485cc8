package proxy

import (
	"net/http"

	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/httpwire"
)

// userPrivacy is privacy.forward_user as it applies to requests now.
type userPrivacy struct {
	interceptors.Privacy
	// keyPending: forward_user is hash, but the key the store keeps for it
	// is not loaded yet (the store did not answer at startup). Meanwhile
	// Privacy is drop: a provider gets none of the end user's identifiers,
	// neither the OpenID nor a hash under a key of this replica's own,
	// which other replicas and a later restart would not share.
	keyPending bool
}

// newUserPrivacy is forward_user mode with key; under hash an empty key is
// one still to come (SetHashKey).
func newUserPrivacy(mode string, key []byte) *userPrivacy {
	if mode == "hash" && len(key) == 0 {
		return &userPrivacy{Privacy: interceptors.NewPrivacy("drop", nil), keyPending: true}
	}
	return &userPrivacy{Privacy: interceptors.NewPrivacy(mode, key)}
}

// forwardPrivacy is the Privacy the rewrite of a request naming endUser
// ("" for none) uses, read once per request: one atomic load, no
// allocation. A request naming an end user while the hash key is pending
// is counted (paygate_user_hash_key_pending_total): it goes without the
// user's hash. One naming none loses nothing and is not counted.
func (s *Server) forwardPrivacy(endUser string) interceptors.Privacy {
	p := s.privacy.Load()
	if p.keyPending && endUser != "" {
		s.metrics.hashKeyPending.Inc()
	}
	return p.Privacy
}

// SetHashKey gives a Server built under privacy.forward_user: hash without
// its key (Options.HashKey empty: the store that keeps it did not answer
// at startup) the key, and reports whether it took it. Requests from then
// on carry the keyed hash instead of no identifier. A Server that has its
// key keeps it: every replica must hash with the one key the store holds,
// so that a user's hash stays the same across them.
func (s *Server) SetHashKey(key []byte) bool {
	cur := s.privacy.Load()
	if !cur.keyPending || len(key) == 0 {
		return false
	}
	return s.privacy.CompareAndSwap(cur, &userPrivacy{Privacy: interceptors.NewPrivacy("hash", key)})
}

// hashKeyNotLoaded is /readyz's reason while the hash key is pending.
const hashKeyNotLoaded = "user hash key not loaded: provider requests go without the end user's identifiers until it is"

// storeAnswered is told that the store answered (a /readyz ping, a turn's
// state load), and reports whether the hash key is still pending; if so,
// it asks for the key (Options.WantHashKey).
func (s *Server) storeAnswered() (keyPending bool) {
	if !s.privacy.Load().keyPending {
		return false
	}
	if s.wantHashKey != nil {
		s.wantHashKey()
	}
	return true
}

// holdsUser reports whether v, a header value of the bot's that would
// reach a provider, holds the end user user where the text of a body
// would have it replaced (interceptors' usertext.go): an id of 16 bytes or
// more, under hash or drop.
func (s *Server) holdsUser(v, user string) bool {
	return v != "" && interceptors.UserTakenAnywhere(user) && s.privacy.Load().Mode != "keep" && interceptors.HoldsUser(v, user)
}

// acceptFor is the bot's Accept as forwarded on a request of the end user
// user: none (the provider answers its default) when it holds the user,
// or the UnionID a header names (unionIDHeader). Of the bot's headers
// only Accept, and a /v1 body's Content-Type, reach a provider; a
// Content-Type holding either is refused (passthrough).
func (s *Server) acceptFor(h http.Header, user string) string {
	if v := httpwire.Field(h, "Accept"); v == "" || !s.holdsUser(v, user) && !s.holdsUser(v, unionIDHeader(h)) {
		return v
	}
	return ""
}
