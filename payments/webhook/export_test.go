package webhook

import "time"

// Busy reports whether r is handling the outbox key (tests wait on it).
func Busy(r *Relay, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, busy := r.inflight[key]
	return busy
}

// Queued reports whether r keeps a claimed event for key's busy worker.
func Queued(r *Relay, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.next[key]
	return ok
}

// LeaseOf is r's lease in force.
func LeaseOf(r *Relay) time.Duration { return r.opts.Lease }

// RedactURL is redactURL, the URL as logs and the admin API show it.
var RedactURL = redactURL
