package webhook

// Busy reports whether r is handling the outbox key (tests wait on it).
func Busy(r *Relay, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight[key]
}
