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
// in one pass over its top-level members (Members).
func ReadChat(body []byte) (Chat, error) {
	if !gjson.ValidBytes(body) {
		return Chat{}, fmt.Errorf("%w: the body is not valid JSON", ErrBadRequest)
	}
	root := gjson.Parse(unsafeString(body))
	if !root.IsObject() {
		return Chat{}, fmt.Errorf("%w: the body must be a JSON object", ErrBadRequest)
	}
	var f [len(chatMembers)]gjson.Result
	Members(root, chatMembers[:], f[:])
	model, messages := f[0], f[4]
	if model.Type != gjson.String || model.Str == "" {
		return Chat{}, fmt.Errorf("%w: you must provide a model parameter", ErrBadRequest)
	}
	if !messages.IsArray() {
		return Chat{}, fmt.Errorf("%w: 'messages' must be an array", ErrBadRequest)
	}
	return Chat{
		Model:      strings.Clone(model.Str),
		Stream:     f[1].Bool(),
		User:       strings.Clone(f[2].Str),
		WantsUsage: f[3].Get("include_usage").Bool(),
	}, nil
}

var chatMembers = [...]string{"model", "stream", "user", "stream_options", "messages"}

// Members sets out[i] to the first top-level member of obj named names[i]
// (the zero Result when there is none) in one pass over obj. A path lookup
// per name scans obj from its start each time, and a chat body is mostly
// the messages each of them would skip again. Where a member repeats, the
// first counts, as in a path lookup. The results share obj's memory.
func Members(obj gjson.Result, names []string, out []gjson.Result) {
	obj.ForEach(func(k, v gjson.Result) bool {
		for i, n := range names {
			if k.Str == n && out[i].Raw == "" {
				out[i] = v
			}
		}
		return true
	})
}

// Privacy decides what a provider learns about the end user (SPEC 2.2).
type Privacy struct {
	// Mode is "hash", "drop" or "keep".
	Mode string
	// Key keys the hash; stable across restarts and replicas.
	Key []byte

	macs *sync.Pool // *keyedMAC: keyed HMAC-SHA256 states, reset between uses
}

// keyedMAC is a pooled HMAC state with a scratch buffer for its input: a
// []byte handed to hash.Hash.Write escapes, so converting the strings on
// each call would allocate.
type keyedMAC struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// NewPrivacy is a Privacy whose hash reuses its keyed HMAC states: keying
// one is two SHA-256 blocks and four allocations, on every request of a
// known user.
func NewPrivacy(mode string, key []byte) Privacy {
	return Privacy{Mode: mode, Key: key, macs: &sync.Pool{New: func() any {
		return &keyedMAC{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 128)}
	}}}
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
	var km *keyedMAC
	if p.macs != nil {
		km = p.macs.Get().(*keyedMAC)
		defer func() {
			if cap(km.buf) <= 1<<10 {
				p.macs.Put(km)
			}
		}()
	} else {
		km = &keyedMAC{h: hmac.New(sha256.New, p.Key)}
	}
	return km.userHash(client, user), true
}

// userHash is "u_" and the first 16 bytes of HMAC-SHA256(key, client NUL
// user) in hex. It leaves the state reset for the next use.
func (km *keyedMAC) userHash(client, user string) string {
	km.buf = append(append(append(km.buf[:0], client...), 0), user...)
	km.h.Write(km.buf)
	var out [2 + 32]byte
	copy(out[:], "u_")
	hex.Encode(out[2:], km.h.Sum(km.sum[:0])[:16])
	km.h.Reset()
	return string(out[:])
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
	if r := gjson.GetBytes(body, "user"); r.Exists() {
		if v, ok := u.Privacy.Forward(u.Client, u.EndUser); ok && u.EndUser != "" {
			if r.Index > 0 && r.Index+len(r.Raw) <= len(body) {
				// Spliced in one copy; sjson would rebuild the body.
				out = make([]byte, 0, len(body)+len(v)+8)
				out = append(out, body[:r.Index]...)
				out = appendJSONString(out, v)
				out = append(out, body[r.Index+len(r.Raw):]...)
			} else {
				out, err = sjson.SetBytes(out, "user", v)
			}
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
