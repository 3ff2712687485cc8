package failover

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/failover/h1"
)

// Replayable reports whether a forwarded call (method, path below the
// base_url with its query, body as sent) may be sent again, to the same
// provider or another, after an attempt the provider may have acted on:
// the proxy sets Request.AtMostOnce for every other call.
//
// A generation may: sent twice it is at worst generated and billed twice
// for the one answer the client gets, and its failover is what SPEC 5 is
// for. Those are a POST to chat/completions, completions, embeddings,
// moderations, responses (unless "background": true), audio/speech,
// audio/transcriptions, audio/translations, images/generations, edits
// and variations, and rerank and score (vLLM's, Jina's, SiliconFlow's and
// Cohere-compatible servers' reranking, which creates nothing: sent at
// most once, a 502 ended the round where another target would have
// answered). So may GET, HEAD, DELETE and OPTIONS, which change
// nothing more when sent twice. Any other call creates or changes
// something: a file, an upload or its part, a batch, a fine-tuning job, an
// assistant, a thread or its run, a vector store, a background Response,
// a cancellation. Sent again after a 5xx or a lost connection it made a
// second job on the same account or on another provider's, each billed,
// and the client knew of one. A path is matched exactly: a trailing slash
// or another spelling is no generation, and is sent at most once.
func Replayable(method, path string, body []byte) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return true
	case "", http.MethodPost:
	default:
		return false
	}
	p, _, _ := strings.Cut(path, "?")
	switch p {
	case "/chat/completions", "/completions", "/embeddings", "/moderations",
		"/audio/speech", "/audio/transcriptions", "/audio/translations",
		"/images/generations", "/images/edits", "/images/variations",
		"/rerank", "/score":
		return true
	case "/responses":
		return !background(body)
	}
	return false
}

// background reports whether a Responses request body asks for a
// background response (any top-level "background" not false or null): the
// provider stores it and runs it on its own, a job like a batch. Every
// occurrence counts, as a provider's JSON parser may keep the last. Keys
// are read unescaped, as any JSON parser reads them: a byte search for
// "background" first let `"backgr\u006fund": true` through as a
// generation, sent again after a 5xx and run twice in the background.
// Keys are read in any case too, as Go's encoding/json matches them (Unicode
// folding included) in Go-based relays (one-api, new-api): there
// "Background": true made a background Response that paygate sent again.
func background(body []byte) bool {
	bg := false
	gjson.Parse(unsafeString(body)).ForEach(func(k, v gjson.Result) bool {
		if strings.EqualFold(k.Str, "background") && v.Type != gjson.False && v.Type != gjson.Null {
			bg = true
			return false
		}
		return true
	})
	return bg
}

// mayHaveRun reports whether the provider may have acted on the request
// that failed with f: anything but a failure before the whole request
// left paygate (unsent) or an answer that refuses it: a 4xx, or a
// 503 or 529, which say the provider is too busy to take it. A 5xx other
// than those, a 2xx that is no answer (an error envelope, an error event,
// a cut body), a timeout or a connection lost once the request was written
// may come after the provider did what it was asked.
func (f *failure) mayHaveRun() bool {
	switch s := f.httpStatus; {
	case f.unsent:
		return false
	case s >= 400 && s < 500, s == http.StatusServiceUnavailable, s == 529:
		return false
	}
	return true
}

// sentMark is whether a transport read any copy of an AtMostOnce request's
// body: its Body, or one GetBody handed out for a resend (h1 rewinds a
// request whose write failed on a reused connection and sends it whole on
// a new one). A body no copy of which was read was never sent, so the
// request failed before the provider could have had it whole; marking
// only the first copy read, a resend sent whole from GetBody and then
// lost before its answer counted as unsent and went out again.
type sentMark struct {
	read atomic.Bool // the transport may read and close a copy on a goroutine of its own
}

// wrap has every copy of req's body, Body and GetBody's alike, mark m
// when read.
func (m *sentMark) wrap(req *http.Request) {
	req.Body = &sentBody{ReadCloser: req.Body, mark: m}
	if get := req.GetBody; get != nil {
		req.GetBody = func() (io.ReadCloser, error) {
			b, err := get()
			if err != nil || b == nil || b == http.NoBody {
				return b, err
			}
			return &sentBody{ReadCloser: b, mark: m}, nil
		}
	}
}

// sentBody is a copy of an AtMostOnce request's body, marking its
// sentMark at its transport's first read.
type sentBody struct {
	io.ReadCloser
	mark *sentMark
}

func (b *sentBody) Read(p []byte) (int, error) {
	b.mark.read.Store(true)
	return b.ReadCloser.Read(p)
}

// unsent reports whether an attempt whose transport failed with err before
// any head sent none of its request, or not all of it, so that no server
// can have acted on it: a dial that failed (no connection, so nothing
// sent), a failure h1 reports as h1.ErrNotSent (a TLS handshake that
// failed, a write cut mid-request: a request short of its Content-Length
// is none), or a body no copy of which the transport read (sentMark; a
// request is not whole without it). Counted as sent, an upload its
// provider's front reset mid-body, or a cancellation whose handshake
// failed, ended the round with "the provider may have acted on it" where
// the next target would have taken it.
func unsent(err error, body *sentMark) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, h1.ErrNotSent) {
		return true
	}
	return body != nil && !body.read.Load()
}

// methodOf is req's method, POST when unset.
func methodOf(req *Request) string {
	if req.Method == "" {
		return http.MethodPost
	}
	return req.Method
}

// pathOnly is path without its query: an error message names the
// endpoint, not the call's parameters.
func pathOnly(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}
