package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// A write to an order (or to an outbox key) touches three hash tags: the
// order's own (the atomic money step), the user's (the copy LoadUserState
// reads) and {idx} (listings and pending outboxes). It runs as:
//
//	1. intent:  {idx}:notes gets a repair note "member|token" of this writer's
//	            own, the token fresh, scored with the time of the server
//	            holding {idx}
//	2. write:   the order script on {o:NO}, order and outbox together;
//	            it refuses to write once RepairGrace/2 has passed since 1
//	            on the clock of {o:NO}'s server (luaFence)
//	3. user:    the copy on {u:CLIENT:USER}, applied only if newer
//	4. index:   {idx} indexes, applied only if newer; removes this writer's
//	            note
//
// Steps 3 and 4 are idempotent and version-guarded, so any replica may replay
// them in any order. A crash between 1 and 4 leaves the note; Repair replays
// 3 and 4 from the tag's current state for notes older than the grace period
// by the clock that scored them.
//
// A note is removed only once the member has been synced from state at least
// as new as the write it stands for. Each writer has its own note, so
// another writer's failed compare-and-set (two creates of one number happen
// by design, and the reconcile sweep races notifications) can never remove
// the note of a writer that committed and died before its sync; a writer
// whose write changed nothing resyncs the member before it removes its note,
// which also covers a write that did apply but was reported as a conflict
// because its reply was lost and the re-sent script found another writer's
// token in the record.
//
// Repair takes a note for abandoned once it is RepairGrace old, and by then
// its write has run or never will: step 2 refuses to write past the
// intent's deadline, RepairGrace/2 after it (luaFence), so a writer stalled
// between 1 and 2 (retrying through a failover, a paused process) cannot
// commit behind a repair pass that resynced the member from the state
// before its write and removed its note. Such a writer records a fresh
// intent and runs its script again (fenced). Both ages are read on the
// Redis servers' clocks, never on the replicas': this holds while the
// server holding {idx} and the one holding the member agree within
// RepairGrace/2, and while every replica uses the same RepairGrace.

// writeIntent is a recorded intent: the writer's token (noteOf(member, tok)
// is its note) and its deadline, the server time (unix ms) after which the
// write's script refuses to write. The zero value stands for a write that
// records no intent.
type writeIntent struct {
	tok      string
	deadline int64
}

// fence is the last ARGV of a script that checks it (luaFence).
func (in writeIntent) fence() any {
	if in.tok == "" {
		return ""
	}
	return in.deadline
}

// staleTries is how many intents a write gets before a refusal as stale is
// reported: once is a stall, three times in a row is a store that cannot be
// written in time.
const staleTries = 3

// intent is step 1.
func (s *Store) intent(ctx context.Context, member string) (writeIntent, error) {
	v, err := s.run(ctx, "write intent", s.sc.intent,
		[]string{s.k.idx("notes"), s.k.idx("seq")}, member, ms(s.grace/2))
	if err != nil {
		return writeIntent{}, err
	}
	r := replySlice(v)
	tok, _ := replyStr(r, 0)
	return writeIntent{tok: tok, deadline: replyInt(r, 1)}, nil
}

// fenced is steps 1 and 2: it records an intent for member and runs step,
// the write's script, under it. A script refused as stale (its intent got
// past its deadline before it ran) wrote nothing; fenced records a fresh
// intent and runs it again. The refused intent's note is left to Repair,
// which finds nothing of it to sync.
func (s *Store) fenced(ctx context.Context, member string, step func(writeIntent) (any, error)) (writeIntent, any, error) {
	for try := 1; ; try++ {
		in, err := s.intent(ctx, member)
		if err != nil {
			return in, nil, err
		}
		v, err := step(in)
		if !goredis.HasErrorPrefix(err, "STALEINTENT") {
			return in, v, err
		}
		if try == staleTries {
			return in, nil, fmt.Errorf("redis: %s written too late %d times: %w: %w", member, try, store.ErrUnavailable, err)
		}
		s.log.WarnContext(ctx, "store write refused as stale, retried under a fresh intent", "member", member, "err", err)
	}
}

// noteOf is the repair note of member's writer holding tok. Tokens are
// decimal, so the last '|' separates them from any member name.
func noteOf(member, tok string) string { return member + "|" + tok }

// memberOf is the member a repair note stands for.
func memberOf(note string) string {
	if i := strings.LastIndexByte(note, '|'); i >= 0 {
		return note[:i]
	}
	return note
}

// dropIntent ends the intent of a write that reported no change (a lost
// compare-and-set, a taken number): it resyncs the member from its tag and
// only then removes its note. The resync is what makes a conflict answer to
// a re-sent script safe (see above); it is cheap and on a failure path only.
// Failure is logged: the note stays for Repair.
func (s *Store) dropIntent(ctx context.Context, member string, in writeIntent) {
	if err := s.resync(ctx, member, noteOf(member, in.tok)); err != nil {
		s.log.WarnContext(ctx, "store sync after a lost write deferred to repair", "member", member, "err", err)
	}
}

// sync runs steps 3 and 4 after a successful write of o; obv and next are
// the outbox state the write left. Failures are logged, not returned: the
// money step is committed, and the note stays for Repair.
func (s *Store) sync(ctx context.Context, o *store.Order, obv, next int64, in writeIntent) {
	if err := s.syncUser(ctx, o); err != nil {
		s.log.WarnContext(ctx, "store user copy sync deferred to repair", "order_no", o.OrderNo, "err", err)
		return
	}
	s.syncIndexOrWarn(ctx, o, o.OrderNo, strconv.FormatInt(obv, 10), next, noteOf(o.OrderNo, in.tok))
}

// syncIndexOrWarn is syncIndex where a failure only delays the index: the
// notes stay for Repair, and DueEvents heals outbox entries on read.
func (s *Store) syncIndexOrWarn(ctx context.Context, o *store.Order, member, obv string, next int64, notes ...string) {
	if err := s.syncIndex(ctx, o, member, obv, next, notes...); err != nil {
		s.log.WarnContext(ctx, "store index sync deferred to repair", "member", member, "err", err)
	}
}

func (s *Store) syncUser(ctx context.Context, o *store.Order) error {
	j, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("redis: encode order copy: %w", err)
	}
	uo, uv, ur, uu := s.k.userTag(o.Client, o.User)
	_, err = s.run(ctx, "sync user copy", s.sc.syncUser, []string{uo, uv, ur, uu},
		o.OrderNo, o.Version, j, score(o.CreatedAt), score(o.UpdatedAt), store.UserStateOrders, userUpdatedSlack.Microseconds())
	return err
}

// syncIndex is step 4 for member: the order part when o != nil, the outbox
// part when obv != "", then the removal of notes.
func (s *Store) syncIndex(ctx context.Context, o *store.Order, member, obv string, next int64, notes ...string) error {
	keys := make([]string, 0, idxFixedKeys+len(s.statuses))
	client := ""
	if o != nil {
		client = o.Client
	}
	keys = append(keys, s.k.idx("v"), s.k.idx("all"), s.k.idx("ob"), s.k.idx("obv"), s.k.idx("notes"),
		s.k.clientOrders(client), s.k.idx("cv"))
	for _, st := range s.statuses {
		keys = append(keys, s.k.status(st))
	}
	ver, stIdx, created := "", 0, int64(0)
	if o != nil {
		ver = strconv.FormatInt(o.Version, 10)
		created = score(o.CreatedAt)
		for i, st := range s.statuses {
			if st == o.Status {
				stIdx = i + 1
			}
		}
	}
	args := make([]any, 0, 7+len(notes))
	args = append(args, member, ver, stIdx, created, member, obv, next)
	for _, n := range notes {
		args = append(args, n)
	}
	_, err := s.run(ctx, "sync index", s.sc.syncIndex, keys, args...)
	return err
}

// resync replays steps 3 and 4 for member from its tag's current state (read
// in one step), then removes notes: every write committed before the read is
// covered by it.
func (s *Store) resync(ctx context.Context, member string, notes ...string) error {
	rk, ob, obv := s.k.orderTag(member)
	// head_max 1: the outbox's version and due time, not its head (an
	// audit event of megabytes).
	v, err := s.run(ctx, "resync read", s.sc.readTag, []string{rk, ob, obv}, 1)
	if err != nil {
		return err
	}
	r := replySlice(v)
	var o *store.Order
	if j, ok := replyStr(r, 0); ok {
		if o, err = decodeOrder(j, replyInt(r, 1)); err != nil {
			return err
		}
		if err := s.syncUser(ctx, o); err != nil {
			return err
		}
	}
	return s.syncIndex(ctx, o, member, strconv.FormatInt(replyInt(r, 2), 10), replyInt(r, 3), notes...)
}

// Repair resyncs every member with a repair note older than the grace period
// (left by a crash or a lost connection between the steps) and reports how
// many notes it resolved; it then enters the orders an earlier version
// indexed into their clients' indexes (indexClients). A member it cannot
// resync for a reason of its own (a record that does not decode) keeps its
// notes and is counted in the error Repair returns (the first named) once
// it has gone on to every other; Redis failing ends the pass at once. It
// runs at start-up and every RepairInterval; it is exported for operators
// and tests. A note's age is judged by the clock that scored it, that of
// the server holding {idx}: by this replica's own clock (Options.Now), a
// replica running ahead of a writer would take the note of
// a write that has not run yet for abandoned, resync the order from the
// state before it and remove the note, and the write, once committed, would
// have none if its writer then died before its sync.
func (s *Store) Repair(ctx context.Context) (int, error) {
	now, err := s.run(ctx, "repair", s.sc.idxTime, []string{s.k.idx("notes")})
	if err != nil {
		return 0, err
	}
	nowMs, ok := now.(int64)
	if !ok {
		return 0, fmt.Errorf("redis: repair: server time reply %T", now)
	}
	cutoff := strconv.FormatInt(nowMs-s.grace.Milliseconds(), 10)
	n, left := s.repairNotes(ctx, cutoff)
	if left != nil && !errors.As(left, new(leftMembers)) {
		return n, left
	}
	m, leftLegacy := s.repairLegacy(ctx, cutoff)
	if leftLegacy != nil && !errors.As(leftLegacy, new(leftMembers)) {
		return n + m, leftLegacy
	}
	if _, err := s.indexClients(ctx); err != nil {
		return n + m, err
	}
	return n + m, errors.Join(left, leftLegacy)
}

// leftMembers is the error of a repair pass that went on past members it
// could not resync for a reason of their own (a record that does not
// decode, a script's error on their keys): their notes stay, and the pass
// reached every other. The first such member's error is kept.
type leftMembers struct {
	n     int
	first error
}

func (e leftMembers) Error() string {
	return fmt.Sprintf("%d members left unrepaired, the first: %v", e.n, e.first)
}

func (e leftMembers) Unwrap() error { return e.first }

// leave records that member could not be resynced, and reports whether the
// pass may go on past it: not when Redis itself failed (unavailable, the
// pass's context ended), which every other member would meet too. It logs
// nothing: the pass's error (logged once a pass by the background loop)
// counts the members left and names the first: a line for each would be
// as many lines a minute as records spoilt.
func (left *leftMembers) leave(ctx context.Context, member string, err error) bool {
	if errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
		return false
	}
	if left.n == 0 {
		left.first = fmt.Errorf("redis: repair %s: %w", member, err)
	}
	left.n++
	return true
}

func (s *Store) repairNotes(ctx context.Context, cutoff string) (int, error) {
	seen := map[string]bool{}
	stuck := map[string]bool{} // seen and still there
	var left leftMembers
	n := 0
	for {
		// Every note ranked before the first this pass has not seen is
		// one it saw and that is still there, so a page read past as many
		// as are known to be stuck starts at or before it: read from the
		// first note on, a page of stuck notes hid every note behind it.
		notes, err := s.c.ZRangeByScore(ctx, s.k.idx("notes"), &goredis.ZRangeBy{
			Min: "-inf", Max: cutoff, Offset: int64(len(stuck)), Count: 100,
		}).Result()
		if err != nil {
			return n, mapErr("repair", err)
		}
		var members []string
		byMember := map[string][]string{}
		grew := false
		for _, note := range notes {
			if seen[note] {
				// Left in place, or its removal failed silently: do not spin.
				grew = grew || !stuck[note]
				stuck[note] = true
				continue
			}
			seen[note] = true
			m := memberOf(note)
			if _, ok := byMember[m]; !ok {
				members = append(members, m)
			}
			byMember[m] = append(byMember[m], note)
		}
		if len(members) == 0 && !grew {
			return n, left.err()
		}
		for _, m := range members {
			if err := s.resync(ctx, m, byMember[m]...); err != nil {
				if !left.leave(ctx, m, err) {
					return n, fmt.Errorf("redis: repair %s: %w", m, err)
				}
				for _, note := range byMember[m] {
					stuck[note] = true
				}
				continue
			}
			n += len(byMember[m])
		}
	}
}

// repairLegacy drains the intent log of earlier versions ({idx}:dirty, one
// token per member, {idx}:dirtyat), which replicas not yet upgraded still
// write during a rolling upgrade.
func (s *Store) repairLegacy(ctx context.Context, cutoff string) (int, error) {
	dirty, dirtyat := s.k.idx("dirty"), s.k.idx("dirtyat")
	seen := map[string]bool{}
	stuck := map[string]bool{} // as repairNotes
	var left leftMembers
	n := 0
	for {
		members, err := s.c.ZRangeByScore(ctx, dirtyat, &goredis.ZRangeBy{
			Min: "-inf", Max: cutoff, Offset: int64(len(stuck)), Count: 100,
		}).Result()
		if err != nil {
			return n, mapErr("repair", err)
		}
		progress := false
		for _, m := range members {
			if seen[m] {
				progress = progress || !stuck[m]
				stuck[m] = true
				continue
			}
			seen[m] = true
			progress = true
			tok, err := s.c.HGet(ctx, dirty, m).Result()
			if err != nil && !errors.Is(err, goredis.Nil) {
				return n, mapErr("repair", err)
			}
			if err := s.resync(ctx, m); err != nil {
				if !left.leave(ctx, m, err) {
					return n, fmt.Errorf("redis: repair %s: %w", m, err)
				}
				stuck[m] = true
				continue
			}
			if _, err := s.run(ctx, "repair", s.sc.dropLegacy, []string{dirty, dirtyat}, m, tok); err != nil {
				return n, err
			}
			n++
		}
		if !progress {
			return n, left.err()
		}
	}
}

// err is nil when no member was left.
func (e leftMembers) err() error {
	if e.n == 0 {
		return nil
	}
	return e
}

// outbox list elements: the event with the fields the scripts read.
// CreatedMs scores a fresh head in {idx}:ob (luaObState); elements of
// earlier versions lack it.
type obElem struct {
	ID        string      `json:"id"`
	NextMs    int64       `json:"next_ms"`
	CreatedMs int64       `json:"created_ms"`
	Ev        store.Event `json:"ev"`
}

func (s *Store) fillEvent(e store.Event) store.Event {
	if e.Key == "" {
		e.Key = store.DefaultEventKey
	}
	if e.ID == "" {
		e.ID = newID("evt_")
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	return e
}

// encodeEvents encodes events as queue elements; next_ms, the due time the
// scripts compare, is on the server's clock (serverClock).
func (s *Store) encodeEvents(evs []store.Event) ([]any, error) {
	out := make([]any, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(obElem{ID: e.ID, NextMs: s.nextMs(e.NextAt), CreatedMs: e.CreatedAt.UnixMilli(), Ev: e})
		if err != nil {
			return nil, fmt.Errorf("redis: encode event: %w", err)
		}
		out[i] = b
	}
	return out, nil
}

// orderEvents keys events passed with an order write by that order.
func (s *Store) orderEvents(orderNo string, events []store.Event) ([]any, error) {
	return s.keyedEvents(events, orderNo, "order "+orderNo)
}

// keyedEvents keys events written with a record by its key
// (store.KeyEvents), fills them in and encodes them.
func (s *Store) keyedEvents(events []store.Event, key, what string) ([]any, error) {
	evs, err := store.KeyEvents(events, key, what)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	for i := range evs {
		evs[i] = s.fillEvent(evs[i])
	}
	return s.encodeEvents(evs)
}
