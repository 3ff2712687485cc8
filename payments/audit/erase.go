package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// ActionTextErased is the action of the record an erasure of conversation
// texts appends: it names the client and user and how many texts went, and
// holds no text. Verify accepts a missing text as erased only when such a
// record covers it, so texts cannot vanish without a trace in the chain.
const ActionTextErased = "audit.text_erased"

// ErasureKeyPrefix starts the outbox key of an erasure's record:
// "audit-erasure:<client>/<user>", a queue per client and user, so that
// Verify finds a pending erasure of a user at the head of a queue of its
// own, however many other erasures wait. (Earlier versions queued them all
// on store.DefaultEventKey, where only the first is a head.)
const ErasureKeyPrefix = "audit-erasure:"

func erasureKey(client, user string) string { return ErasureKeyPrefix + client + "/" + user }

// ErasureEvent is the outbox event of an erasure of n texts of user under
// client at at, keyed by them (ErasureKeyPrefix), with who asked for it
// (ctx's payments.Actor: the admin request's id and address, and the
// operator and reason its body gave; none when ctx carries none).
func ErasureEvent(ctx context.Context, client, user string, n int, at time.Time) (store.Event, error) {
	ev, err := ActionEvent(Action{Time: at, Name: ActionTextErased, Cause: "erasure", Client: client, User: user, TextsErased: n,
		Actor: actorOf(payments.ActorFrom(ctx))}, nil)
	ev.Key = erasureKey(client, user)
	return ev, err
}

// Erase erases the conversation texts of user under client
// (store.Audit.EraseAuditText) and records the erasure in the chain through
// the outbox, like any audit record, then appends it before returning
// where it can within eraseAppendWait (a failed or late append leaves it in
// the outbox for Run). Its time is taken after
// the erasure, so it is never before the store's mark: every text the
// erasure removed or refuses was said at or before it. Should the process
// stop between the erasure and the enqueue, Verify reports the texts as
// removed without erasure; erasing again records it. A store that fails
// partway is recorded too (it may have erased some texts, and set its
// mark, which refuses those of the user's records still in the outbox),
// and its error returned with the count it reports.
//
// Once begun, the erasure, its record and the clearing of the file's free
// pages run to their end whatever ctx does (as a money action does once
// started): a caller that hung up while the texts were being erased (an
// admin client's timeout) left them erased without their record, and
// Verify reported each as removed without erasure. Only the wait for the
// record to reach the chain is the caller's.
func (w *Worker) Erase(ctx context.Context, client, user string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err // not begun
	}
	// The user as the records and texts hold it (AsRecorded): named in
	// another encoding than UTF-8, its texts were not reached, and the
	// erasure's event, keyed by the raw bytes, was never acknowledged.
	client, user = AsRecorded(client), AsRecorded(user)
	run := context.WithoutCancel(ctx)
	// Recorded even when the store failed: it may have erased some texts
	// (n, those it reports) and set its mark, which refuses the texts of
	// the user's records still in the outbox, before it failed. Without
	// the record, verify reported each as removed without erasure.
	n, eraseErr := w.st.EraseAuditText(run, client, user)
	ev, err := ErasureEvent(run, client, user, n, w.now())
	if err == nil {
		err = w.st.EnqueueEvents(run, ev)
	}
	if err != nil {
		return n, errors.Join(eraseErr, fmt.Errorf("audit: record the erasure of %d texts: %w", n, err))
	}
	// Appended before the answer where it can be, but not waited for
	// longer than eraseAppendWait, counting the wait for the pass Run may
	// be running: Drain returns only once a pass finds nothing due, which
	// steady audit traffic can put off for as long as it lasts. Left in
	// the outbox, the record is appended by Run's next pass.
	//
	// The file's free pages are cleared after the pass, which acknowledged
	// the user's events then due (their payloads carry the texts), so that
	// these go too: by the pass itself as it ends (wipeOwed), or here when
	// it did not clear them (it waited for Run's pass, or ran out of
	// time). Here the flag is left set: Run's pass, which may be between
	// an erased text's check and its acknowledgement, clears again as it
	// ends. An event of the user still waiting is cleared by the pass that
	// acknowledges it (keepText).
	w.wipeOwed.Store(true)
	dctx, cancel := context.WithTimeout(ctx, eraseAppendWait)
	defer cancel()
	_, err = w.Drain(dctx)
	if err != nil {
		w.Wake()
		w.log.WarnContext(ctx, "audit erasure recorded in the outbox, not yet in the chain; it will be appended", "err", err)
	}
	// A Drain that ran ended after a clearing begun after the erasure (its
	// own, or that of the pass it waited for, which took the flag). One
	// that did not run cannot tell: the pass it waited for may have taken
	// the flag and still be clearing (or fail to), so it clears itself
	// rather than answer with the texts still in the file.
	if err != nil || w.wipeOwed.Load() {
		w.wipe(run)
	}
	return n, eraseErr
}

// AsRecorded is s as an audit event's JSON payload carries it, and so as the
// records, their texts and the outbox keys read back from the store hold
// it: each byte that is not part of valid UTF-8 replaced by U+FFFD, as
// encoding/json writes it. A bot may name its end user in another encoding
// (a GBK nickname in X-WeChat-OpenID), and an erasure names the user as the
// bot did.
func AsRecorded(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// freePageWiper is a store whose file keeps deleted values in its free
// pages until they are reused (embedded.DB.WipeFreePages): an erasure
// clears them, or the erased texts would still be on the disk.
type freePageWiper interface {
	WipeFreePages(ctx context.Context) (int, error)
}

// eraseAppendWait bounds Erase's wait for its record to reach the chain.
const eraseAppendWait = 2 * time.Second
