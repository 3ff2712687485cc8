package failover

import (
	"io"
	"testing"
)

// TestStalledForwardedStreamProbeLetsNoFloodThrough is
// TestStalledStreamProbeLetsNoFloodThrough for a forwarded event stream (a
// streamed Responses call), piped at its first event: a provider that
// sends that first event and stalls is not taken for recovered by its
// probe, and the rounds that come during the stall go to the fallback.
// Closed at the probe's head, every such round went to the stalling
// provider, as a chat stream's did at its first token.
func TestStalledForwardedStreamProbeLetsNoFloodThrough(t *testing.T) {
	e, down, arrived, release := stallingA(t, `{"type":"response.created","response":{"id":"resp_1"}}`)
	req := func() *Request {
		return &Request{Model: "gpt", Method: "POST", Path: "/responses", Body: []byte(`{"model":"gpt","input":"hi","stream":true}`),
			ContentType: "application/json", Accept: "text/event-stream"}
	}
	_ = e.open(t.Context(), true) // two 500s: open
	if st := statusOf(e.r, "a").Breaker; st != "open" {
		t.Fatalf("a's breaker %s after two 500s; want open", st)
	}
	down.Store(false)
	waitBreaker(t, e.r, "a", "half-open")
	probe, err := e.r.Open(t.Context(), req())
	if err != nil || probe.Provider != "a" || !probe.Piped() {
		t.Fatalf("probe: %v; want a piped stream from a", err)
	}
	<-arrived

	const rounds = 6
	done := make(chan answer, rounds)
	for range rounds {
		go func() { done <- e.openReq(t.Context(), req()) }()
	}
	toA, toB := roundsAtAOrB(t, arrived, done, rounds, false)
	release()
	if toA != 0 {
		t.Errorf("while the probe stalled after its first event, %d of %d rounds went to a (%d to b); want 0: the breaker still half-open", toA, rounds, toB)
	}
	if _, err := io.ReadAll(probe); err == nil {
		t.Fatal("the probe's stream ended whole after its cut")
	}
	probe.Close()
	if st := statusOf(e.r, "a").Breaker; st != "open" {
		t.Errorf("a's breaker %s after its probe stalled and was cut; want open", st)
	}
	for range rounds - toB {
		<-done
	}
}
