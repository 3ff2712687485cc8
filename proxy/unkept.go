package proxy

import (
	"sync"
	"time"
)

// unkeptExchanges holds, in this process only, the payment exchanges whose
// write to the store failed (keepExchange), under the keys the store was
// to have them by. The answer of such a turn is withdrawn when the
// exchange bound the user's message (withdraw), which is the rule every
// replica keeps; this is a guard beside it, for a bot that runs the calls
// of a withdrawn answer anyway (one that reads a stream's chunks for their
// choices alone skips the error event) and whose follow-up reaches this
// replica: the exchange comes back in place (lookupExchange) and the
// message's budget holds. Bounded in count, bytes and time: a follow-up
// comes within minutes of its calls, and a store that fails every write
// must not grow it without end. The bytes bound it where the count does
// not: an exchange carries its rounds' text and reasoning, a hundred
// kilobytes and more with a reasoning model, and unkeptMax of those held
// gigabytes in the outage the record is for. The zero value is ready to
// use.
type unkeptExchanges struct {
	mu    sync.Mutex
	m     map[string]unkeptExchange
	order []string // keys, oldest first: the first to go when full
	// bytes is the data held, summed per key (an exchange held under
	// several keys counts once for each: a bound from above).
	bytes int
}

type unkeptExchange struct {
	data  []byte
	until time.Time
}

const (
	// unkeptMax bounds how many keys are held; the oldest go first.
	unkeptMax = 4096
	// unkeptMaxBytes bounds the bytes held (unkeptExchanges.bytes); the
	// oldest go first, and an exchange larger alone is not held.
	unkeptMaxBytes = 64 << 20
	// unkeptTTL is how long one is held.
	unkeptTTL = time.Hour
)

// put holds data under each of keys until now+unkeptTTL.
func (u *unkeptExchanges) put(keys []string, data []byte, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = make(map[string]unkeptExchange)
	}
	if len(data) > unkeptMaxBytes {
		return
	}
	for _, k := range keys {
		if old, ok := u.m[k]; ok {
			u.bytes -= len(old.data)
		} else {
			u.order = append(u.order, k)
		}
		for len(u.order) > unkeptMax || u.bytes+len(data) > unkeptMaxBytes {
			u.evictOldest(k)
		}
		u.m[k] = unkeptExchange{data: data, until: now.Add(unkeptTTL)}
		u.bytes += len(data)
	}
}

// evictOldest drops the oldest key held other than keep (the one being
// put, already in order).
func (u *unkeptExchanges) evictOldest(keep string) {
	i := 0
	if u.order[0] == keep {
		i = 1
	}
	k := u.order[i]
	u.bytes -= len(u.m[k].data)
	delete(u.m, k)
	if i == 0 {
		u.order = u.order[1:]
		return
	}
	u.order = append(u.order[:i], u.order[i+1:]...)
}

// get returns what is held under key, nil when nothing is (or it expired).
func (u *unkeptExchanges) get(key string, now time.Time) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.m[key]
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.data
}
