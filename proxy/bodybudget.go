package proxy

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/config"
)

// bodyBudget bounds the bytes of client request bodies held at once
// (server.max_body_bytes_in_flight). Each body is held whole for the
// request's life (failover resends it), and two or three more copies of
// it beside (the rewritten body, each provider's patched one, the payment
// tools added): about four times its size in all, measured. A burst of
// large bodies (vision bots' base64 images, 1 to 8 MiB each) held that for
// as long as a slow provider took to answer: forty 6 MiB requests at once
// took the process to 925 MiB of RSS, and ten to 260 MiB, past a 256 MiB
// container's limit, where the kernel kills the process and every stream
// and payment call in flight with it. Past the budget a large body is
// refused with a 503 and Retry-After (the SDKs retry it) before more of it
// is read.
//
// Bytes are taken as the body's buffer grows, not as a length declares
// them: a client that declares megabytes and sends a few bytes holds
// only what it sent. A body's first reserveUpTo bytes are always taken,
// over the budget or not: a text chat holds little, and is never refused
// for images in flight; it is counted all the same.
type bodyBudget struct {
	limit int64 // 0: no bound
	used  atomic.Int64
	// large is the part of used that was not forced: the bytes of large
	// bodies past their first reserveUpTo. Changed under mu, read
	// without it.
	large atomic.Int64
	mu    sync.Mutex
}

// bodyHeld is what one request holds of the budget, given back when it
// ends (give): its forced bytes and the rest.
type bodyHeld struct{ forced, large int64 }

// take reserves n more bytes of a body, and reports whether it may hold
// them: always when force is set or the budget has no bound, else while
// the budget has room, or when no other large body holds bytes past its
// first reserveUpTo (own: this body's own such bytes). The small bodies
// count, but never keep out the one large body of a moment: a budget of
// max_body_bytes (the least one) would otherwise refuse a body near that
// size for as long as any text chat was in flight beside it.
func (b *bodyBudget) take(h *bodyHeld, n int64, force bool) bool {
	if b.limit == 0 || force {
		b.used.Add(n)
		h.forced += n
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used.Load()+n > b.limit && b.large.Load() != h.large {
		return false
	}
	b.used.Add(n)
	b.large.Add(n)
	h.large += n
	return true
}

// fits reports whether a body of n more bytes may start now (taking none).
func (b *bodyBudget) fits(n int64) bool {
	return b.limit == 0 || b.used.Load()+n <= b.limit || b.large.Load() == 0
}

// give returns what a request took.
func (b *bodyBudget) give(h bodyHeld) {
	if h.large != 0 {
		b.mu.Lock()
		b.large.Add(-h.large)
		b.mu.Unlock()
	}
	if n := h.forced + h.large; n != 0 {
		b.used.Add(-n)
	}
}

// bodyBudgetLimit is the budget of the config and the process's memory
// limit (Options.MemoryLimit): the key when set, none at -1, else an
// eighth of the memory limit (about half of it held by the bodies and
// their copies), and no bound without one. A budget is never below
// server.max_body_bytes: one body of the largest size allowed always fits
// (and is admitted while no other large body is held, bodyBudget.take).
func bodyBudgetLimit(s config.Server, memoryLimit int64) int64 {
	switch n := s.MaxBodyBytesInFlight; {
	case n < 0:
		return 0
	case n > 0:
		return max(n, s.MaxBodyBytes)
	case memoryLimit > 0:
		return max(memoryLimit/8, s.MaxBodyBytes)
	}
	return 0
}

// bodyBudgetRetry is the Retry-After of a body refused over the budget:
// the bodies in flight end as their providers answer, seconds apart.
const bodyBudgetRetry = 2 * time.Second

// bodiesBusy is the answer to a body refused over the budget.
func bodiesBusy(limit int64) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "request_bodies_busy",
		RetryAfter: bodyBudgetRetry,
		Message: "paygate: too many large request bodies in flight (over " + strconv.FormatInt(limit, 10) +
			" bytes, server.max_body_bytes_in_flight); send it again shortly"}
}
