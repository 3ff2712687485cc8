package proxy

import (
	"net/http"
	"strconv"
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
}

// take reserves n more bytes of a body, and reports whether it may hold
// them: always when force is set or the budget has no bound.
func (b *bodyBudget) take(n int64, force bool) bool {
	if b.limit == 0 || force {
		b.used.Add(n)
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// fits reports whether n more bytes fit the budget now (taking none).
func (b *bodyBudget) fits(n int64) bool {
	return b.limit == 0 || b.used.Load()+n <= b.limit
}

// give returns n bytes taken.
func (b *bodyBudget) give(n int64) {
	if n != 0 {
		b.used.Add(-n)
	}
}

// bodyBudgetLimit is the budget of the config and the process's memory
// limit (Options.MemoryLimit): the key when set, none at -1, else an
// eighth of the memory limit (about half of it held by the bodies and
// their copies), and no bound without one. A budget is never below
// server.max_body_bytes: one body of the largest size allowed always fits.
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
