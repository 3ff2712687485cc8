package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// chainRecord builds the record that follows head, hashing prev hash and body the
// way an auditor would check it.
func chainRecord(head store.AuditHead, user string, body []byte) store.AuditRecord {
	sum := sha256.Sum256(append([]byte(head.Hash), body...))
	return store.AuditRecord{Seq: head.Seq + 1, PrevHash: head.Hash, Hash: hex.EncodeToString(sum[:]), Body: body, User: user}
}

// appendWithRetry appends body after whatever the head is, retrying lost races.
func appendWithRetry(ctx context.Context, st store.Audit, user string, body []byte) error {
	for range 1000 {
		h, err := st.AuditHead(ctx)
		if err != nil {
			return err
		}
		err = st.AppendAudit(ctx, chainRecord(h, user, body))
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return errors.New("append kept conflicting")
}

// verifyChain checks records 1..n are all present, in order, each linked to
// and hashed over the one before.
func verifyChain(t testing.TB, ctx context.Context, st store.Audit, n int) {
	t.Helper()
	var prev store.AuditHead
	seq := uint64(1)
	for {
		recs, err := st.ReadAudit(ctx, seq, 37)
		mustNil(t, "ReadAudit", err)
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			want := chainRecord(prev, r.User, r.Body)
			if r.Seq != seq || r.PrevHash != prev.Hash || r.Hash != want.Hash {
				t.Fatalf("record %d: got seq %d prev %.8s hash %.8s; want seq %d prev %.8s hash %.8s",
					seq, r.Seq, r.PrevHash, r.Hash, seq, prev.Hash, want.Hash)
			}
			prev = store.AuditHead{Seq: r.Seq, Hash: r.Hash}
			seq++
		}
	}
	if int(prev.Seq) != n {
		t.Fatalf("chain has %d records; want %d", prev.Seq, n)
	}
	head, err := st.AuditHead(ctx)
	mustNil(t, "AuditHead", err)
	if head != prev {
		t.Errorf("head: got %+v; want %+v", head, prev)
	}
}

func testAudit(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t, NewClock())

	head, err := st.AuditHead(ctx)
	mustNil(t, "AuditHead", err)
	if head != (store.AuditHead{}) {
		t.Fatalf("empty chain head: got %+v; want zero", head)
	}
	r1 := chainRecord(head, "u1", []byte(`{"action":"order_created"}`))
	mustNil(t, "AppendAudit", st.AppendAudit(ctx, r1))
	h1 := store.AuditHead{Seq: 1, Hash: r1.Hash}

	cases := []struct {
		name    string
		rec     store.AuditRecord
		wantErr error
	}{
		{"a gap", store.AuditRecord{Seq: 3, PrevHash: r1.Hash, Hash: "h3", Body: []byte(`{}`)}, store.ErrConflict},
		{"a rewrite of the last", store.AuditRecord{Seq: 1, PrevHash: "", Hash: "h1b", Body: []byte(`{}`)}, store.ErrConflict},
		{"a wrong previous hash", store.AuditRecord{Seq: 2, PrevHash: "forged", Hash: "h2", Body: []byte(`{}`)}, store.ErrConflict},
		{"the next link", chainRecord(h1, "u2", []byte(`{"action":"refund_proposed"}`)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := st.AppendAudit(ctx, tc.rec)
			if tc.wantErr == nil {
				mustNil(t, "AppendAudit", err)
				return
			}
			wantErr(t, "AppendAudit", err, tc.wantErr)
		})
	}
	for i := 3; i <= 10; i++ {
		mustNil(t, "append", appendWithRetry(ctx, st, "u1", fmt.Appendf(nil, `{"n":%d}`, i)))
	}
	verifyChain(t, ctx, st, 10)

	t.Run("read from the middle", func(t *testing.T) {
		recs, err := st.ReadAudit(ctx, 4, 3)
		mustNil(t, "ReadAudit", err)
		if len(recs) != 3 || recs[0].Seq != 4 || recs[2].Seq != 6 || string(recs[0].Body) != `{"n":4}` || recs[0].User != "u1" {
			t.Errorf("got %+v; want records 4..6", recs)
		}
		recs, err = st.ReadAudit(ctx, 11, 10)
		mustNil(t, "ReadAudit", err)
		if len(recs) != 0 {
			t.Errorf("past the head: got %d records; want none", len(recs))
		}
	})
}

func testAuditText(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	for i := 1; i <= 4; i++ {
		user := "u1"
		if i%2 == 0 {
			user = "u2"
		}
		mustNil(t, "append", appendWithRetry(ctx, st, user, fmt.Appendf(nil, `{"n":%d}`, i)))
		mustNil(t, "PutAuditText", st.PutAuditText(ctx, uint64(i), "c1", user, fmt.Appendf(nil, "conversation %d", i), clock.Now(), 180*24*time.Hour))
	}
	mustNil(t, "PutAuditText", st.PutAuditText(ctx, 99, "c1", "u3", []byte("short-lived"), clock.Now(), time.Hour))

	n, err := st.EraseAuditText(ctx, "c1", "u1")
	mustNil(t, "EraseAuditText", err)
	if n != 2 {
		t.Errorf("erased: got %d; want 2", n)
	}
	clock.Advance(time.Hour)
	cases := []struct {
		name    string
		seq     uint64
		want    string
		wantErr error
	}{
		{name: "erased user", seq: 1, wantErr: store.ErrNotFound},
		{name: "erased user again", seq: 3, wantErr: store.ErrNotFound},
		{name: "kept user", seq: 2, want: "conversation 2"},
		{name: "expired", seq: 99, wantErr: store.ErrNotFound},
		{name: "never kept", seq: 5, wantErr: store.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.GetAuditText(ctx, tc.seq)
			if tc.wantErr != nil {
				wantErr(t, "GetAuditText", err, tc.wantErr)
				return
			}
			mustNil(t, "GetAuditText", err)
			if string(got) != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
	t.Run("the chain is untouched", func(t *testing.T) { verifyChain(t, ctx, st, 4) })
	n, err = st.EraseAuditText(ctx, "c1", "u1")
	mustNil(t, "EraseAuditText", err)
	if n != 0 {
		t.Errorf("second erase: got %d; want 0", n)
	}

	// A text said before the erasure but written after it (its event waited
	// in the outbox) stays erased; one said after the erasure is kept.
	erasedAt := clock.Now()
	clock.Advance(time.Minute)
	for i := 5; i <= 6; i++ {
		mustNil(t, "append", appendWithRetry(ctx, st, "u1", fmt.Appendf(nil, `{"n":%d}`, i)))
	}
	mustNil(t, "PutAuditText said before the erasure", st.PutAuditText(ctx, 5, "c1", "u1", []byte("said before"), erasedAt.Add(-time.Second), time.Hour))
	mustNil(t, "PutAuditText said after the erasure", st.PutAuditText(ctx, 6, "c1", "u1", []byte("said after"), erasedAt.Add(time.Second), time.Hour))
	if got, err := st.GetAuditText(ctx, 5); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("text said before the erasure: got %q %v; want ErrNotFound", got, err)
	}
	if got, err := st.GetAuditText(ctx, 6); err != nil || string(got) != "said after" {
		t.Errorf("text said after the erasure: got %q %v; want %q", got, err, "said after")
	}
	n, err = st.EraseAuditText(ctx, "c1", "u1")
	mustNil(t, "EraseAuditText", err)
	if n != 1 {
		t.Errorf("third erase: got %d; want 1 (the text said after the second)", n)
	}
}

// testAuditErasedAt: the erasure mark is readable per client and user, so an auditor
// can tell an erased text from one deleted without an erasure. Times are
// compared to the millisecond (the Redis mark's resolution).
func testAuditErasedAt(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	odd := "o:{x}%3A" // escaped in keys; must not meet another user's mark
	for _, u := range []string{"u1", odd, "o"} {
		at, err := st.AuditErasedAt(ctx, "c1", u)
		mustNil(t, "AuditErasedAt", err)
		if !at.IsZero() {
			t.Errorf("%s never erased: got %v; want the zero time", u, at)
		}
	}
	first := clock.Now()
	_, err := st.EraseAuditText(ctx, "c1", "u1")
	mustNil(t, "EraseAuditText", err)
	clock.Advance(time.Hour)
	_, err = st.EraseAuditText(ctx, "c1", odd)
	mustNil(t, "EraseAuditText", err)
	want := map[string]time.Time{"u1": first, odd: first.Add(time.Hour), "o": {}, "u2": {}}
	for u, w := range want {
		at, err := st.AuditErasedAt(ctx, "c1", u)
		mustNil(t, "AuditErasedAt", err)
		if at.UnixMilli() != w.UnixMilli() || at.IsZero() != w.IsZero() {
			t.Errorf("%s: erased at %v; want %v", u, at, w)
		}
	}
	// A later erasure moves the mark.
	clock.Advance(time.Hour)
	_, err = st.EraseAuditText(ctx, "c1", "u1")
	mustNil(t, "EraseAuditText", err)
	if at, err := st.AuditErasedAt(ctx, "c1", "u1"); err != nil || at.UnixMilli() != first.Add(2*time.Hour).UnixMilli() {
		t.Errorf("u1 erased again: got %v %v; want %v", at, err, first.Add(2*time.Hour))
	}
}

// testAuditTextPerClient: an OpenID is per app, so the same user string
// under two clients is two users: erasing one erases only its own texts,
// sets only its own mark and refuses only its own late texts. Client and
// user strings that would meet if joined naively stay apart.
func testAuditTextPerClient(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	type owner struct{ client, user string }
	owners := []owner{{"shop-a", "oShared"}, {"shop-b", "oShared"}, {"shop-a:oShared", ""}, {"shop-a", "oShared:x"}}
	for i, o := range owners {
		mustNil(t, "append", appendWithRetry(ctx, st, o.user, fmt.Appendf(nil, `{"client":%q,"n":%d}`, o.client, i+1)))
		mustNil(t, "PutAuditText", st.PutAuditText(ctx, uint64(i+1), o.client, o.user, fmt.Appendf(nil, "said %d", i+1), clock.Now(), time.Hour))
	}
	erasedAt := clock.Now()
	n, err := st.EraseAuditText(ctx, "shop-a", "oShared")
	mustNil(t, "EraseAuditText", err)
	if n != 1 {
		t.Errorf("erased %d texts; want 1 (shop-a's oShared only)", n)
	}
	for i := range owners {
		_, err := st.GetAuditText(ctx, uint64(i+1))
		if i == 0 {
			wantErr(t, "GetAuditText of the erased user", err, store.ErrNotFound)
		} else if err != nil {
			t.Errorf("text of %+v (another user): %v; want it kept", owners[i], err)
		}
	}
	for i, o := range owners {
		at, err := st.AuditErasedAt(ctx, o.client, o.user)
		mustNil(t, "AuditErasedAt", err)
		if (i == 0) != !at.IsZero() {
			t.Errorf("erasure mark of %+v: %v", o, at)
		}
	}
	// A text said before the erasure, written after it: refused for the
	// erased user only.
	for i, o := range owners[:2] {
		mustNil(t, "append", appendWithRetry(ctx, st, o.user, []byte(`{}`)))
		mustNil(t, "PutAuditText", st.PutAuditText(ctx, uint64(len(owners)+i+1), o.client, o.user, []byte("late"), erasedAt.Add(-time.Second), time.Hour))
	}
	if _, err := st.GetAuditText(ctx, uint64(len(owners)+1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("late text of the erased user: %v; want ErrNotFound", err)
	}
	if _, err := st.GetAuditText(ctx, uint64(len(owners)+2)); err != nil {
		t.Errorf("late text of the other app's user: %v; want it kept", err)
	}
}

// Legacy writes what an earlier version of the driver kept: a text indexed
// by user alone (no client) and a user's erasure mark.
type Legacy struct {
	Text func(t testing.TB, st store.Store, seq uint64, user string, text []byte, until time.Time)
	Mark func(t testing.TB, st store.Store, user string, at time.Time)
	// Spoil writes data over chain record seq where the driver stores it
	// (the file or the key edited by hand).
	Spoil func(t testing.TB, st store.Store, seq uint64, data []byte)
}

// RunAuditLegacy checks that data of an earlier version, keyed by user
// alone, is still honoured: an erasure of (client, user) erases the old
// texts whose chain record names client and no others; an old mark still
// refuses late texts and counts as an erasure for every client of its user.
func RunAuditLegacy(t *testing.T, open Opener, old Legacy) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	for i, c := range []string{"shop-a", "shop-b", "shop-a"} {
		mustNil(t, "append", appendWithRetry(ctx, st, "oShared", fmt.Appendf(nil, `{"client":%q,"n":%d}`, c, i+1)))
		old.Text(t, st, uint64(i+1), "oShared", fmt.Appendf(nil, "old %d", i+1), clock.Now().Add(time.Hour))
	}
	n, err := st.EraseAuditText(ctx, "shop-a", "oShared")
	mustNil(t, "EraseAuditText", err)
	if n != 2 {
		t.Errorf("erased %d old texts; want 2 (those of shop-a's records)", n)
	}
	for seq, kept := range map[uint64]bool{1: false, 2: true, 3: false} {
		_, err := st.GetAuditText(ctx, seq)
		if kept != (err == nil) {
			t.Errorf("old text %d: %v; kept should be %v", seq, err, kept)
		}
	}
	n, err = st.EraseAuditText(ctx, "shop-b", "oShared")
	mustNil(t, "EraseAuditText", err)
	if n != 1 {
		t.Errorf("shop-b: erased %d old texts; want 1", n)
	}

	// An old text written again by this version (its event redelivered
	// after the upgrade, the earlier version's ack lost) is one text, in
	// both indexes: one erasure erases it and counts it once.
	mustNil(t, "append", appendWithRetry(ctx, st, "oAgain", []byte(`{"client":"shop-a"}`)))
	head, err := st.AuditHead(ctx)
	mustNil(t, "AuditHead", err)
	old.Text(t, st, head.Seq, "oAgain", []byte("said once"), clock.Now().Add(time.Hour))
	mustNil(t, "PutAuditText again", st.PutAuditText(ctx, head.Seq, "shop-a", "oAgain", []byte("said once"), clock.Now(), time.Hour))
	n, err = st.EraseAuditText(ctx, "shop-a", "oAgain")
	mustNil(t, "EraseAuditText", err)
	if n != 1 {
		t.Errorf("an old text written again: erased %d texts; want 1", n)
	}
	if _, err := st.GetAuditText(ctx, head.Seq); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an old text written again, erased: %v; want ErrNotFound", err)
	}

	markAt := clock.Now()
	old.Mark(t, st, "oOld", markAt)
	clock.Advance(time.Hour)
	for _, c := range []string{"shop-a", "shop-b"} {
		at, err := st.AuditErasedAt(ctx, c, "oOld")
		mustNil(t, "AuditErasedAt", err)
		if at.UnixMilli() != markAt.UnixMilli() {
			t.Errorf("%s: old mark read as %v; want %v", c, at, markAt)
		}
	}
	mustNil(t, "append", appendWithRetry(ctx, st, "oOld", []byte(`{}`)))
	seq := uint64(4)
	mustNil(t, "PutAuditText", st.PutAuditText(ctx, seq, "shop-b", "oOld", []byte("said before the old mark"), markAt.Add(-time.Second), time.Hour))
	if _, err := st.GetAuditText(ctx, seq); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("text said before an old mark: %v; want it refused", err)
	}
	// A newer per-client erasure moves that client's mark only.
	_, err = st.EraseAuditText(ctx, "shop-a", "oOld")
	mustNil(t, "EraseAuditText", err)
	if at, _ := st.AuditErasedAt(ctx, "shop-a", "oOld"); at.UnixMilli() != clock.Now().UnixMilli() {
		t.Errorf("shop-a after its own erasure: %v; want %v", at, clock.Now())
	}
	if at, _ := st.AuditErasedAt(ctx, "shop-b", "oOld"); at.UnixMilli() != markAt.UnixMilli() {
		t.Errorf("shop-b after shop-a's erasure: %v; want the old mark %v", at, markAt)
	}

	// An old text whose chain record does not decode (edited by hand):
	// whose it is cannot be told, and the user's erasure errs toward
	// erasing it; the erasure goes on with the user's other texts, old and
	// new, and records its mark. It failed whole, and the user's texts
	// could not be erased until the record was mended.
	for range 3 {
		mustNil(t, "append", appendWithRetry(ctx, st, "oSpoilt", []byte(`{"client":"shop-a"}`)))
	}
	head, err = st.AuditHead(ctx)
	mustNil(t, "AuditHead", err)
	spoilt, oldSeq, newSeq := head.Seq-2, head.Seq-1, head.Seq
	old.Text(t, st, spoilt, "oSpoilt", []byte("old, record spoilt"), clock.Now().Add(time.Hour))
	old.Text(t, st, oldSeq, "oSpoilt", []byte("old"), clock.Now().Add(time.Hour))
	mustNil(t, "PutAuditText", st.PutAuditText(ctx, newSeq, "shop-a", "oSpoilt", []byte("new"), clock.Now(), time.Hour))
	old.Spoil(t, st, spoilt, []byte("not json"))
	clock.Advance(time.Second)
	n, err = st.EraseAuditText(ctx, "shop-a", "oSpoilt")
	if err != nil || n != 3 {
		t.Errorf("erasure of a user with an old text of a spoilt record: %d, %v; want 3 erased, no error", n, err)
	}
	for seq, kept := range map[uint64]bool{spoilt: false, oldSeq: false, newSeq: false} {
		if _, err := st.GetAuditText(ctx, seq); kept != (err == nil) {
			t.Errorf("text %d after the erasure: %v; kept should be %v", seq, err, kept)
		}
	}
	if at, _ := st.AuditErasedAt(ctx, "shop-a", "oSpoilt"); at.UnixMilli() != clock.Now().UnixMilli() {
		t.Errorf("erasure mark: %v; want %v", at, clock.Now())
	}
}

// testAuditTextRetention: texts kept under a long retention, then the
// retention shortened (store.AuditTextRetention): a text whose record's
// time is older than the new one is deleted at once, a younger one is kept
// until its record's time plus the new retention; lengthened, no expiry
// moves later; 0 deletes every text. (Texts a replica under a longer
// retention keeps after the pass: TestShortenedRetentionCutsTextsALongerReplicaKeepsWriting
// in payments/audit, on Redis, where replicas share them.)
func testAuditTextRetention(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock()
	st := open(t, clock)
	rs, ok := st.(store.AuditTextRetention)
	if !ok {
		t.Skip("the driver does not apply a shortened retention to kept texts")
	}
	const long, short = 4320 * time.Hour, 720 * time.Hour
	keep := func(seq uint64, age time.Duration) {
		t.Helper()
		said := clock.Now().Add(-age)
		mustNil(t, "append", appendWithRetry(ctx, st, "u1", fmt.Appendf(nil, `{"n":%d,"time":%q}`, seq, said.UTC().Format(time.RFC3339Nano))))
		mustNil(t, "PutAuditText", st.PutAuditText(ctx, seq, "c1", "u1", fmt.Appendf(nil, "conversation %d", seq), said, long-age))
	}
	kept := func(when string, want map[uint64]bool) {
		t.Helper()
		for seq, w := range want {
			_, err := st.GetAuditText(ctx, seq)
			if got := err == nil; got != w || (err != nil && !errors.Is(err, store.ErrNotFound)) {
				t.Errorf("%s: text %d kept %v (err %v); want %v", when, seq, got, err, w)
			}
		}
	}
	keep(1, 1000*time.Hour)
	keep(2, 100*time.Hour)
	n, err := rs.RetainAuditTexts(ctx, long)
	mustNil(t, "RetainAuditTexts", err)
	if n != 0 {
		t.Errorf("under the retention they were kept with: deleted %d; want 0", n)
	}
	n, err = rs.RetainAuditTexts(ctx, short)
	mustNil(t, "RetainAuditTexts", err)
	if n != 1 {
		t.Errorf("shortened to 720h: deleted %d; want 1", n)
	}
	kept("shortened to 720h", map[uint64]bool{1: false, 2: true})
	_, err = rs.RetainAuditTexts(ctx, long) // lengthened: nothing moves later
	mustNil(t, "RetainAuditTexts", err)
	clock.Advance(621 * time.Hour)
	kept("621h on, lengthened since", map[uint64]bool{2: false})
	keep(3, time.Hour)
	_, err = rs.RetainAuditTexts(ctx, 0)
	mustNil(t, "RetainAuditTexts", err)
	kept("retain_text 0", map[uint64]bool{3: false})
}
