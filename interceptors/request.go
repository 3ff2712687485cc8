package interceptors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

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

// ReadChat validates body as a JSON object and reads the fields routing needs.
func ReadChat(body []byte) (Chat, error) {
	if !gjson.ValidBytes(body) {
		return Chat{}, fmt.Errorf("%w: the body is not valid JSON", ErrBadRequest)
	}
	res := gjson.GetManyBytes(body, "model", "stream", "user", "stream_options.include_usage", "messages")
	if !gjson.ParseBytes(body).IsObject() {
		return Chat{}, fmt.Errorf("%w: the body must be a JSON object", ErrBadRequest)
	}
	if res[0].Type != gjson.String || res[0].Str == "" {
		return Chat{}, fmt.Errorf("%w: you must provide a model parameter", ErrBadRequest)
	}
	if !res[4].IsArray() {
		return Chat{}, fmt.Errorf("%w: 'messages' must be an array", ErrBadRequest)
	}
	return Chat{
		Model:      res[0].Str,
		Stream:     res[1].Bool(),
		User:       res[2].Str,
		WantsUsage: res[3].Bool(),
	}, nil
}

// Privacy decides what a provider learns about the end user (SPEC 2.2).
type Privacy struct {
	// Mode is "hash", "drop" or "keep".
	Mode string
	// Key keys the hash; stable across restarts and replicas.
	Key []byte
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
	m := hmac.New(sha256.New, p.Key)
	m.Write([]byte(client))
	m.Write([]byte{0})
	m.Write([]byte(user))
	return "u_" + hex.EncodeToString(m.Sum(nil)[:16]), true
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
