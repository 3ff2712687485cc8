package interceptors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// ErrBadRequest marks a client body paygate cannot forward; the proxy answers
// 400 with the message.
var ErrBadRequest = errors.New("bad request")

// Chat is what paygate needs to know about a chat-completions body, read
// without decoding it.
type Chat struct {
	Model  string
	Stream bool
	// User is the body's "user" field, if any.
	User string
	// WantsUsage: the client itself asked for stream usage.
	WantsUsage bool
}

// ReadChat validates body as a JSON object and reads the fields routing needs
// in one pass over its top-level members (a body is mostly its messages,
// which are skipped once rather than once per field). Where a member repeats,
// the first counts, as in a gjson path lookup.
func ReadChat(body []byte) (Chat, error) {
	if !gjson.ValidBytes(body) {
		return Chat{}, fmt.Errorf("%w: the body is not valid JSON", ErrBadRequest)
	}
	root := gjson.Parse(unsafeString(body))
	if !root.IsObject() {
		return Chat{}, fmt.Errorf("%w: the body must be a JSON object", ErrBadRequest)
	}
	var c Chat
	var model, messages gjson.Result
	var seen [5]bool
	first := func(i int) bool {
		if seen[i] {
			return false
		}
		seen[i] = true
		return true
	}
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			if first(0) {
				model = v
			}
		case "stream":
			if first(1) {
				c.Stream = v.Bool()
			}
		case "user":
			if first(2) {
				c.User = strings.Clone(v.Str)
			}
		case "stream_options":
			if first(3) {
				c.WantsUsage = v.Get("include_usage").Bool()
			}
		case "messages":
			if first(4) {
				messages = v
			}
		}
		return true
	})
	if model.Type != gjson.String || model.Str == "" {
		return Chat{}, fmt.Errorf("%w: you must provide a model parameter", ErrBadRequest)
	}
	if !messages.IsArray() {
		return Chat{}, fmt.Errorf("%w: 'messages' must be an array", ErrBadRequest)
	}
	c.Model = strings.Clone(model.Str)
	return c, nil
}

// Privacy decides what a provider learns about the end user (SPEC 2.2).
type Privacy struct {
	// Mode is "hash", "drop" or "keep".
	Mode string
	// Key keys the hash; stable across restarts and replicas.
	Key []byte

	macs *sync.Pool // keyed HMAC-SHA256 states, reset between uses
}

// NewPrivacy is a Privacy whose hash reuses its keyed HMAC states: keying
// one is two SHA-256 blocks and four allocations, on every request of a
// known user.
func NewPrivacy(mode string, key []byte) Privacy {
	return Privacy{Mode: mode, Key: key, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// Forward returns the value to send as "user" for an end user of a client,
// and whether to send the field at all.
func (p Privacy) Forward(client, user string) (string, bool) {
	switch p.Mode {
	case "keep":
		return user, true
	case "drop":
		return "", false
	}
	var m hash.Hash
	if p.macs != nil {
		m = p.macs.Get().(hash.Hash)
		defer func() { m.Reset(); p.macs.Put(m) }()
	} else {
		m = hmac.New(sha256.New, p.Key)
	}
	m.Write([]byte(client))
	m.Write([]byte{0})
	m.Write([]byte(user))
	var sum [sha256.Size]byte
	var out [2 + 32]byte
	copy(out[:], "u_")
	hex.Encode(out[2:], m.Sum(sum[:0])[:16])
	return string(out[:]), true
}

// Upstream describes the changes to make to a chat body before routing.
type Upstream struct {
	Client string
	// EndUser is the resolved end user (X-WeChat-OpenID, else the body's user).
	EndUser string
	Privacy Privacy
	// ForceUsage sets stream_options.include_usage so paygate can account a
	// streamed turn; the proxy then withholds the usage chunk from a client
	// that did not ask for it.
	ForceUsage bool
}

// RewriteChat applies the request-side patches of SPEC 3 step 3 that do not
// depend on the target (failover sets "model" and drops fields per target).
// The result shares no memory with body.
func RewriteChat(body []byte, c Chat, u Upstream) ([]byte, error) {
	out := body
	var err error
	if gjson.GetBytes(body, "user").Exists() {
		if v, ok := u.Privacy.Forward(u.Client, u.EndUser); ok && u.EndUser != "" {
			out, err = sjson.SetBytes(out, "user", v)
		} else {
			out, err = sjson.DeleteBytes(out, "user")
		}
		if err != nil {
			return nil, fmt.Errorf("rewriting user: %w", err)
		}
	}
	if u.ForceUsage && c.Stream && !c.WantsUsage {
		out, err = sjson.SetBytes(out, "stream_options.include_usage", true)
		if err != nil {
			return nil, fmt.Errorf("setting include_usage: %w", err)
		}
	}
	if len(out) > 0 && &out[0] == &body[0] {
		out = append([]byte(nil), body...)
	}
	return out, nil
}
