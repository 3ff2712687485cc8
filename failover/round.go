package failover

import (
	"context"
	"fmt"
	"time"
)

// Open runs one round: it tries the model's targets by policy until one
// answers acceptably, and returns its Response; the caller must Close it.
// When none does, the error is an *UpstreamError.
func (r *Router) Open(ctx context.Context, req *Request) (*Response, error) {
	m, err := r.lookup(req.Model)
	if err != nil {
		return nil, err
	}
	t := m.targets[0]
	body, err := t.patch(req.Body)
	if err != nil {
		return nil, fmt.Errorf("failover: patching request for %s: %w", t.p.name, err)
	}
	start := time.Now()
	resp, f := r.attempt(ctx, t, req, body, r.fo.MaxRoundTime.D())
	at := Attempt{Provider: t.p.name, Model: t.model, Duration: time.Since(start)}
	if f != nil {
		at.Status, at.Cause = f.httpStatus, f.cause
		r.m.attempts.WithLabelValues(t.p.name, f.cause).Inc()
		return nil, r.roundError([]Attempt{at}, []*failure{f})
	}
	at.Status = resp.StatusCode
	r.m.attempts.WithLabelValues(t.p.name, "ok").Inc()
	resp.Attempts = 1
	resp.Tried = []Attempt{at}
	if resp.round != nil {
		resp.round.Stop()
	}
	return resp, nil
}

// roundError builds what the client gets when no target answered.
func (r *Router) roundError(tried []Attempt, fails []*failure) *UpstreamError {
	ue := &UpstreamError{Attempts: len(tried), Tried: tried}
	last := fails[len(fails)-1]
	ue.Err = last.err
	switch last.cause {
	case CauseClientError, CauseContextLength:
		// The provider's own reason reaches the client.
		ue.Status = last.status
		ue.Type, ue.Code, ue.Message = last.errType, last.errCode, last.errMsg
		if ue.Type == "" {
			ue.Type = "invalid_request_error"
		}
		if ue.Message == "" {
			ue.Message = fmt.Sprintf("provider %s refused the request (HTTP %d)", tried[len(tried)-1].Provider, last.status)
		}
		return ue
	case CauseFirstByteTimeout, CauseFirstTokenTimeout, CauseIdleTimeout, CauseTotalTimeout, CauseRoundTime:
		ue.Status = 504
	case CauseRateLimited, CauseInsufficientQuota, CauseUnavailable:
		ue.Status = 503
	default:
		ue.Status = 502
	}
	ue.Type = "upstream_error"
	ue.Code = last.cause
	ue.Message = describe(tried)
	return ue
}

// describe names each provider tried with its causes, e.g. "no provider
// answered: a: upstream_server_error (HTTP 500) x2; b: upstream_first_byte_timeout".
func describe(tried []Attempt) string {
	var b []byte
	b = append(b, "no provider answered: "...)
	for i := 0; i < len(tried); {
		j := i + 1
		for j < len(tried) && tried[j] == tried[i] {
			j++
		}
		_ = j
		at := tried[i]
		if i > 0 {
			b = append(b, "; "...)
		}
		b = append(b, at.Provider...)
		b = append(b, ": "...)
		b = append(b, at.Cause...)
		if at.Status != 0 {
			b = fmt.Appendf(b, " (HTTP %d)", at.Status)
		}
		i++
	}
	return string(b)
}
