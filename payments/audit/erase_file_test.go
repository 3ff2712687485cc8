package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// findEncoded finds s in raw as it is or base64-encoded once or twice (a
// []byte in JSON, a payload in an event), at any alignment, and returns
// its offset or -1.
func findEncoded(raw []byte, s string) int {
	// The base64 of s at each of the three alignments, without the
	// characters that depend on the bytes around it.
	enc := func(b []byte) [][]byte {
		var out [][]byte
		for pad := range 3 {
			e := base64.StdEncoding.EncodeToString(append(make([]byte, pad), b...))
			from, to := (pad*4+2)/3+1, len(e)-4
			if to-from >= 8 {
				out = append(out, []byte(e[from:to]))
			}
		}
		return out
	}
	forms := [][]byte{[]byte(s)}
	for _, once := range enc([]byte(s)) {
		forms = append(forms, once)
		forms = append(forms, enc(once)...)
	}
	for _, f := range forms {
		if i := bytes.Index(raw, f); i >= 0 {
			return i
		}
	}
	return -1
}

// TestErasureLeavesNoTextInTheFile: an erasure on the embedded store must
// remove the text from the file, not only from the tree: bbolt writes
// copy-on-write and does not clear the pages it frees, so a deleted text
// stays readable in the file (strings paygate.db) until the page is reused.
func TestErasureLeavesNoTextInTheFile(t *testing.T) {
	e := newEnv(t, "embedded")
	buildChain(t, e, 200)
	w := newTestWorker(t, e.store(), nil)
	n, err := w.Erase(context.Background(), "shop-bot", "oAlice")
	if err != nil || n != 100 {
		t.Fatalf("erase: %d %v; want 100 texts", n, err)
	}
	if _, err := Verify(context.Background(), e.store(), VerifyOptions{Texts: true}); err != nil {
		t.Fatalf("verify after erasure: %v", err)
	}
	if err := e.store().Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	said := func(i int) string { return fmt.Sprintf(`[{"role":"user","content":"buy plan %d"}]`, i) }
	for i := 1; i <= 200; i += 2 {
		text := said(i)
		if i := findEncoded(raw, text); i >= 0 {
			t.Errorf("the erased text %q is still in the file at offset %d", text, i)
		}
	}
	if findEncoded(raw, said(2)) < 0 {
		t.Errorf("oBob's text is not in the file: the check cannot see a text")
	}
	e.open()
	res, err := Verify(context.Background(), e.store(), VerifyOptions{Texts: true})
	if err != nil || res.TextsChecked != 100 || res.TextsGone != 100 {
		t.Errorf("verify after the file's free pages were cleared: %+v %v; want oBob's 100 texts kept, oAlice's 100 erased", res, err)
	}
}

// TestErasureClearsTextsAppendedAfterIt: a text of the erased user still
// waiting in the outbox when the erasure runs (here behind its order's
// webhook, whose relay is down; a retry's backoff or a pass longer than
// the erasure's wait does the same) is refused by the store once its
// record is appended, but the acknowledged event that carried it freed a
// page with the text in it: that page is cleared too, by the pass that
// acknowledged it.
func TestErasureClearsTextsAppendedAfterIt(t *testing.T) {
	for _, c := range []struct {
		name   string
		retain time.Duration
	}{
		{"text within its retention", time.Hour},
		{"retention run out while it waited", time.Nanosecond},
	} {
		t.Run(c.name, func(t *testing.T) { testErasureClearsTextsAppendedAfterIt(t, c.retain) })
	}
}

func testErasureClearsTextsAppendedAfterIt(t *testing.T, retain time.Duration) {
	e := newEnv(t, "embedded")
	st := e.store()
	ctx := context.Background()
	said := `[{"role":"user","content":"buy the plan held behind a webhook"}]`
	a := Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
		OrderNo: "PG9001", SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"}
	enqueue(t, st, store.Event{Kind: "webhook", Key: a.OrderNo, Payload: []byte(`{"event":"order.created"}`)}, mustEvent(t, a, said))
	w := newTestWorker(t, st, func(o *WorkerOptions) { o.RetainText = retain })
	if _, err := w.Erase(ctx, "shop-bot", "oAlice"); err != nil {
		t.Fatalf("erase: %v", err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if findEncoded(raw, said) < 0 {
		t.Fatalf("the waiting event's text is not in the file: the check cannot see a text")
	}
	// The relay delivers the webhook; the audit event is due and appended.
	heads, err := st.OutboxHeads(ctx, a.OrderNo)
	if err != nil || len(heads) != 1 || heads[0].Kind != "webhook" {
		t.Fatalf("outbox heads: %+v %v; want the webhook", heads, err)
	}
	if err := st.AckEvent(ctx, heads[0].Key, heads[0].ID); err != nil {
		t.Fatal(err)
	}
	if n := drainAll(t, w); n != 1 {
		t.Fatalf("drained %d events; want the waiting one", n)
	}
	if _, err := st.GetAuditText(ctx, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the erased user's text said before the erasure was kept: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if raw, err = os.ReadFile(e.path); err != nil {
		t.Fatal(err)
	}
	if i := findEncoded(raw, said); i >= 0 {
		t.Errorf("the erased text %q is still in the file at offset %d, in the page its acknowledged event freed", said, i)
	}
	e.open()
}

// hookAck runs before and after (when set) around the acknowledgement of
// an event of key: paygate stopping right after it, an erasure running
// while the pass is about to make it.
type hookAck struct {
	testStore
	key           string
	before, after func()
	// enqueued, when set, runs after events are enqueued; wiping, before
	// each clearing of the free pages.
	enqueued func(evs []store.Event)
	wiping   func()
}

func (s *hookAck) EnqueueEvents(ctx context.Context, evs ...store.Event) error {
	err := s.testStore.EnqueueEvents(ctx, evs...)
	if s.enqueued != nil {
		s.enqueued(evs)
	}
	return err
}

func (s *hookAck) AckEvent(ctx context.Context, key, id string) error {
	if key == s.key && s.before != nil {
		s.before()
	}
	err := s.testStore.AckEvent(ctx, key, id)
	if key == s.key && s.after != nil {
		s.after()
	}
	return err
}

func (s *hookAck) WipeFreePages(ctx context.Context) (int, error) {
	if s.wiping != nil {
		s.wiping()
	}
	return s.testStore.(freePageWiper).WipeFreePages(ctx)
}

// TestErasedTextClearedWhenStoppedInItsPass: paygate stopping in the pass
// that acknowledged an event whose text an erasure refused still clears the
// page the acknowledgement freed before the store closes. The pass's own
// clearing runs with the stopped context and fails, and the flag that owes
// it does not outlive the process: the erased text stayed in paygate.db.
func TestErasedTextClearedWhenStoppedInItsPass(t *testing.T) {
	e := newEnv(t, "embedded")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	said := `[{"role":"user","content":"buy the plan the stop came after"}]`
	a := Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
		OrderNo: "PG9002", SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"}
	st := &hookAck{testStore: e.store(), key: a.OrderNo, after: stop}
	enqueue(t, st, store.Event{Kind: "webhook", Key: a.OrderNo, Payload: []byte(`{"event":"order.created"}`)}, mustEvent(t, a, said))
	w := newTestWorker(t, st, nil)
	if _, err := w.Erase(context.Background(), "shop-bot", "oAlice"); err != nil {
		t.Fatalf("erase: %v", err)
	}
	if raw, err := os.ReadFile(e.path); err != nil || findEncoded(raw, said) < 0 {
		t.Fatalf("the waiting event's text is not in the file (%v): the check cannot see a text", err)
	}
	heads, err := st.OutboxHeads(context.Background(), a.OrderNo)
	if err != nil || len(heads) != 1 || heads[0].Kind != "webhook" {
		t.Fatalf("outbox heads: %+v %v; want the webhook", heads, err)
	}
	if err := st.testStore.AckEvent(context.Background(), heads[0].Key, heads[0].ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second): // a watchdog: Run ends at the acknowledgement
		t.Fatal("the worker did not stop after acknowledging the waiting event")
	}
	if heads, err := st.OutboxHeads(context.Background(), a.OrderNo); err != nil || len(heads) != 0 {
		t.Fatalf("outbox heads: %+v %v; want the waiting event acknowledged", heads, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if i := findEncoded(raw, said); i >= 0 {
		t.Errorf("the erased text is still in the file at offset %d after a stop in the pass that acknowledged its event", i)
	}
	e.open()
}

// TestErasureDuringAPassLeavesItsClearingOwed: an erasure answered while
// Run's pass holds the worker, between its check of an erased user's text
// and that event's acknowledgement, clears the free pages without taking
// the clearing the pass owes: the pass still clears the page its
// acknowledgement frees as it ends (4b21a0f; before it the erasure took the
// flag and the text stayed in the file).
func TestErasureDuringAPassLeavesItsClearingOwed(t *testing.T) {
	e := newEnv(t, "embedded")
	ctx := context.Background()
	// Several pages of it, and any piece left counts: the writes after
	// the acknowledgement reuse some of the pages it freed.
	piece := strings.Repeat("buy the plan acknowledged after another erasure; ", 2)
	said := `[{"role":"user","content":"` + strings.Repeat(piece, 100) + `"}]`
	a := Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
		OrderNo: "PG9003", SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"}
	st := &hookAck{testStore: e.store(), key: a.OrderNo}
	enqueue(t, st, store.Event{Kind: "webhook", Key: a.OrderNo, Payload: []byte(`{"event":"order.created"}`)}, mustEvent(t, a, said))
	w := newTestWorker(t, st, nil)
	if _, err := w.Erase(ctx, "shop-bot", "oAlice"); err != nil {
		t.Fatalf("erase: %v", err)
	}
	if raw, err := os.ReadFile(e.path); err != nil || findEncoded(raw, said) < 0 {
		t.Fatalf("the waiting event's text is not in the file (%v): the check cannot see a text", err)
	}
	heads, err := st.OutboxHeads(ctx, a.OrderNo)
	if err != nil || len(heads) != 1 || heads[0].Kind != "webhook" {
		t.Fatalf("outbox heads: %+v %v; want the webhook", heads, err)
	}
	if err := st.testStore.AckEvent(ctx, heads[0].Key, heads[0].ID); err != nil {
		t.Fatal(err)
	}
	erased := false
	st.before = func() {
		// Another erasure, answered while this pass holds the worker: its
		// own pass waits for this one until eraseAppendWait runs out.
		erased = true
		if _, err := w.Erase(ctx, "shop-bot", "oBob"); err != nil {
			t.Errorf("erase during the pass: %v", err)
		}
	}
	drainAll(t, w)
	if !erased {
		t.Fatal("the waiting event was not acknowledged")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if i := findEncoded(raw, piece); i >= 0 {
		t.Errorf("the erased text is still in the file at offset %d: the erasure during the pass took its clearing", i)
	}
	e.open()
}

// TestErasureAnswersAfterItsClearing: an erasure whose wait for Run's pass
// runs out clears the free pages itself, even when that pass took the
// clearing the erasure asked for and is still at it: the erasure answered
// (texts erased) while the texts were still in paygate.db, for as long as
// the pass's clearing took, and for good were that clearing to fail.
func TestErasureAnswersAfterItsClearing(t *testing.T) {
	e := newEnv(t, "embedded")
	ctx := context.Background()
	piece := strings.Repeat("buy the plan erased while another pass cleared; ", 2)
	said := `[{"role":"user","content":"` + strings.Repeat(piece, 100) + `"}]`
	alice := Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
		OrderNo: "PG9004", SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY"}
	bob := alice
	bob.User, bob.OrderNo = "oBob", "PG9005"
	st := &hookAck{testStore: e.store(), key: bob.OrderNo}
	w := newTestWorker(t, st, nil)
	enqueue(t, st, mustEvent(t, alice, said))
	drainAll(t, w)
	if raw, err := os.ReadFile(e.path); err != nil || findEncoded(raw, piece) < 0 {
		t.Fatalf("oAlice's text is not in the file (%v): the check cannot see a text", err)
	}
	enqueue(t, st, mustEvent(t, bob, ""))

	// The pass (Run's) acknowledges oBob's event once the erasure asked
	// for its clearing, and takes that clearing as it ends; its clearing
	// waits until the erasure has answered.
	inPass, erasureQueued, release, passDone := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan error, 1)
	st.enqueued = func(evs []store.Event) {
		if len(evs) == 1 && strings.HasPrefix(evs[0].Key, ErasureKeyPrefix) {
			close(erasureQueued)
		}
	}
	st.before = func() {
		close(inPass)
		<-erasureQueued
		for !w.wipeOwed.Load() { // set right after the enqueue
			runtime.Gosched()
		}
	}
	var held atomic.Bool
	st.wiping = func() {
		if held.CompareAndSwap(false, true) {
			<-release
		}
	}
	go func() { _, err := w.Drain(ctx); passDone <- err }()
	<-inPass
	n, err := w.Erase(ctx, "shop-bot", "oAlice")
	if err != nil || n != 1 {
		t.Fatalf("erase: %d %v; want 1 text", n, err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if i := findEncoded(raw, piece); i >= 0 {
		t.Errorf("the erasure answered with the erased text still in the file at offset %d", i)
	}
	close(release)
	if err := <-passDone; err != nil {
		t.Fatalf("the pass: %v", err)
	}
}
