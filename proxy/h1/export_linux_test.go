package h1

// lastWatchID is the id the disconnect watcher gave last.
func lastWatchID() int32 {
	w := &theWatcher
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// watchedSince is how many connections the watcher holds with an id above
// id: those registered after it was read (ids are not reused for 2^31
// connections).
func watchedSince(id int32) int {
	w := &theWatcher
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for k := range w.byID {
		if k > id {
			n++
		}
	}
	return n
}
