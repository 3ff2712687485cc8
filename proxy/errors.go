package proxy

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/paygate/paygate/failover"
)

// apiError is an OpenAI-style error: the status and the body's fields.
type apiError struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
	// RetryAfter, when positive, is sent as a Retry-After header: every
	// target is rate limited or cooling down for about that long.
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return e.Message }

func badRequest(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: msg}
}

// errorJSON renders {"error":{…}} exactly as OpenAI does, so SDKs raise their
// usual typed errors. Messages carry client and upstream text (model names,
// paths, provider error bodies), so every string goes through the JSON
// encoder below: the body must parse whatever bytes they hold.
func errorJSON(e *apiError) []byte {
	b := make([]byte, 0, 128+len(e.Message))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, e.Message)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"param":`...)
	b = appendNullable(b, e.Param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, e.Code)
	b = append(b, "}}"...)
	return b
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does with
// HTML escaping off: control characters escaped, each invalid UTF-8 byte
// replaced by U+FFFD, and U+2028/U+2029 escaped so the text is also safe
// as JavaScript. strconv.Quote is not a substitute: its \x7f, \a, \v, \xNN
// and \UXXXXXXXX escapes are not JSON. It mirrors interceptors'
// appendJSONString, which proxy cannot share without exporting it.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// writeError sends e as the whole response.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(errorJSON(e))
}

// toAPIError maps any error from a turn to what the client should see.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ue *failover.UpstreamError
	if errors.As(err, &ue) {
		t := ue.Type
		if t == "" {
			t = "upstream_error"
		}
		return &apiError{Status: ue.Status, Type: t, Code: ue.Code, Message: ue.Message, RetryAfter: ue.RetryAfter}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Status: http.StatusGatewayTimeout, Type: "upstream_error", Code: "timeout", Message: "paygate: the upstream did not answer in time"}
	}
	return &apiError{Status: http.StatusBadGateway, Type: "upstream_error", Message: "paygate: " + err.Error()}
}
