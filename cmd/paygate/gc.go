package main

import (
	"math"
	"runtime/debug"
)

// GC defaults for serve, applied only where the operator has not set GOGC or
// GOMEMLIMIT (the runtime reads those itself).
//
// paygate's live heap is small (a few MiB plus the requests in flight), and
// at the default GOGC=100 the collector runs every few hundred requests and
// costs about a sixth of the CPU under load (BENCHMARKS.md). GOGC=400 lets
// the heap grow to five times the live data between collections, which
// measured +15% throughput at 32 clients for +7.5 MiB at 128 open streams.
// The soft memory limit keeps that from growing without bound when the live
// heap is large: near the limit the collector runs as often as it must.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 192 << 20
)

// gcSettings returns what serve sets: a GC percent and a memory limit, each
// -1 where the environment already decides.
func gcSettings(getenv func(string) string) (percent int, limit int64) {
	percent, limit = -1, -1
	if getenv("GOGC") == "" {
		percent = defaultGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		limit = defaultMemoryLimit
	}
	return percent, limit
}

func applyGCDefaults(getenv func(string) string) {
	percent, limit := gcSettings(getenv)
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	if limit >= 0 && limit < math.MaxInt64 {
		debug.SetMemoryLimit(limit)
	}
}
