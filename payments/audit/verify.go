package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/store"
)

// ErrBroken is matched (errors.Is) by every *BrokenError.
var ErrBroken = errors.New("audit chain broken")

// BrokenError names the first record of the chain that does not fit: changed,
// missing, out of place, or cut off before the published head.
type BrokenError struct {
	Seq    uint64 // the first bad record
	Reason string
	// Text is set when what does not fit is the record's conversation
	// text (changed, or missing without erasure), not the chain.
	Text bool
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit chain broken at record %d: %s", e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrBroken) true.
func (e *BrokenError) Is(target error) bool { return target == ErrBroken }

func broken(seq uint64, format string, args ...any) error {
	return &BrokenError{Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// Head, when set, is a head published earlier outside the store (a log
	// line, the paygate_audit_head_info metric, the admin API): the chain
	// must reach it and its record there must have that hash, which catches
	// a cut from the end.
	Head *store.AuditHead
	// Texts also checks every conversation text against the hash its record
	// holds (one extra read per record). A text gone because RetainText ran
	// out, or erased by an erasure the chain records (an audit.text_erased
	// record of the text's client and user, at or after ClockSkew before
	// the text's time, also one appended after the head the walk read, as an erasure made
	// during it is) is not an error; any other missing text is (removed
	// without erasure), unless the record's event is still pending in the
	// outbox (appended, its text not yet kept) or an erasure's record of
	// its client and user is (counted in TextsPending).
	Texts bool
	// TrustErasureMarks also accepts a missing text that the store's
	// erasure mark of its user covers (store.Audit.AuditErasedAt) without
	// an erasure record in the chain: erasures made by versions that did
	// not record them. The mark lies outside the chain, so anyone who can
	// write the store can set one; such texts are counted apart
	// (VerifyResult.TextsGoneByMark).
	TrustErasureMarks bool
	// ClockSkew is the Worker's (WorkerOptions.ClockSkew): a text said up
	// to this long after an erasure of its user is not kept, so an erasure
	// covers the texts up to this long after its time. Zero means
	// DefaultClockSkew.
	ClockSkew time.Duration
	// RetainText is audit.retain_text, how long texts are kept from the
	// record's time (a text missing ClockSkew before that is gone with its
	// retention: replicas' clocks differ that much). Zero means DefaultRetainText (the config's default); a
	// negative value means no text was kept (retain_text: 0). A retention
	// raised since texts were written makes those that expired under the
	// shorter one report as removed.
	RetainText time.Duration
	// PageSize is how many records one read asks for (default 500).
	PageSize int
}

// VerifyResult is what a successful (or failed) walk saw.
type VerifyResult struct {
	Records      uint64          // records verified
	Head         store.AuditHead // the last verified record
	StoreHead    store.AuditHead // the head the store reports
	TextsChecked int             // texts present and matching
	TextsGone    int             // records whose text was erased or expired
	// TextsGoneByMark counts the texts of TextsGone accepted only on the
	// store's erasure mark (TrustErasureMarks).
	TextsGoneByMark int
	// TextsPending counts the records whose text waits in the outbox, or
	// whose user's erasure's record does.
	TextsPending int
}

// DefaultRetainText is the default of audit.retain_text (SPEC 7: 180 days).
const DefaultRetainText = 180 * 24 * time.Hour

// skew is ClockSkew with its default.
func (o VerifyOptions) skew() time.Duration {
	if o.ClockSkew <= 0 {
		return DefaultClockSkew
	}
	return o.ClockSkew
}

// retain is RetainText with its default.
func (o VerifyOptions) retain() time.Duration {
	if o.RetainText == 0 {
		return DefaultRetainText
	}
	return o.RetainText
}

// Verify walks the chain from record 1 and checks each record: it is at its
// place (no gap, no other record's seq), it links to the hash of the record
// before, its hash is the SHA-256 of its body, its body is canonical and names
// the same seq, previous hash and user. The walk goes up to the store's head
// as read before it, and the last record must be that head: on a live store
// (Redis, other replicas appending) records appended during the walk are
// the next verification's, not missing ones. No record may lie beyond the
// store's head, and the published head, if given, must be on the chain.
// The first failure is returned as a *BrokenError; other errors are read
// errors.
func Verify(ctx context.Context, st store.Audit, o VerifyOptions) (VerifyResult, error) {
	var res VerifyResult
	page := o.PageSize
	if page <= 0 {
		page = readPage
	}
	sh, err := st.AuditHead(ctx)
	if err != nil {
		return res, fmt.Errorf("read audit head: %w", err)
	}
	res.StoreHead = sh
	var prev store.AuditHead
	next := uint64(1)
	var tx textCheck
	for next <= sh.Seq {
		recs, err := st.ReadAudit(ctx, next, int(min(uint64(page), sh.Seq-next+1)))
		var corrupt *store.CorruptAuditRecordError
		if err != nil && !errors.As(err, &corrupt) {
			return res, fmt.Errorf("read audit records from %d: %w", next, err)
		}
		if len(recs) == 0 && corrupt == nil {
			break
		}
		for _, r := range recs {
			if err := checkRecord(r, next, prev); err != nil {
				return res, err
			}
			if o.Head != nil && r.Seq == o.Head.Seq && r.Hash != o.Head.Hash {
				return res, broken(r.Seq, "its hash %.12s… differs from the published head's %.12s…", r.Hash, o.Head.Hash)
			}
			if o.Texts {
				if err := tx.check(ctx, st, r, o, &res); err != nil {
					return res, err
				}
			}
			prev = store.AuditHead{Seq: r.Seq, Hash: r.Hash}
			res.Records++
			res.Head = prev
			next++
		}
		if corrupt != nil {
			return res, undecodable(corrupt, next)
		}
	}
	if err := tx.settle(ctx, st, prev, o, &res); err != nil {
		return res, err
	}
	switch {
	case sh.Seq > prev.Seq:
		return res, broken(prev.Seq+1, "missing: the chain ends at record %d but the store's head is record %d", prev.Seq, sh.Seq)
	case sh.Hash != prev.Hash:
		return res, broken(prev.Seq, "its hash differs from the store's head hash")
	}
	if err := beyondHead(ctx, st, sh); err != nil {
		return res, err
	}
	if sa, ok := st.(store.AuditStrays); ok {
		at, err := sa.AuditStrayAfterHead(ctx)
		if err != nil {
			return res, fmt.Errorf("look for audit records beyond the head: %w", err)
		}
		if at != 0 {
			return res, broken(at, "beyond the store's head, past an empty place: records were added outside the chain's append")
		}
	}
	if o.Head != nil && o.Head.Seq > prev.Seq {
		return res, broken(prev.Seq+1, "missing: the chain ends at record %d but the published head is record %d (cut from the end)", prev.Seq, o.Head.Seq)
	}
	return res, nil
}

// beyondHead looks for a record stored after sh, the head the walk ended
// at, that the store's head has not reached: one added outside the chain's
// append, which moves the head with the record in one step. The record is
// read before the head is read again, so an append in between moves the
// head past it and is not taken for one.
func beyondHead(ctx context.Context, st store.Audit, sh store.AuditHead) error {
	recs, err := st.ReadAudit(ctx, sh.Seq+1, 1)
	var corrupt *store.CorruptAuditRecordError
	if errors.As(err, &corrupt) {
		// Something is stored there, record or not.
		recs, err = []store.AuditRecord{{Seq: corrupt.Seq}}, nil
	}
	if err != nil {
		return fmt.Errorf("read audit records from %d: %w", sh.Seq+1, err)
	}
	if len(recs) == 0 {
		return nil
	}
	now, err := st.AuditHead(ctx)
	if err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	// It is stored after sh, whatever seq it claims: a record claiming one
	// at or before sh (a copy of an earlier one) is never the next append.
	if at := max(recs[0].Seq, sh.Seq+1); recs[0].Seq <= sh.Seq || at > now.Seq {
		// Named by the place it is stored at, where the store can say: the
		// seq is the record's own claim, and the embedded store's read
		// seeks past empty places, so neither is where it lies.
		if sa, ok := st.(store.AuditStrays); ok {
			if p, err := sa.AuditStrayAfterHead(ctx); err == nil && p != 0 {
				at = p
			}
		}
		if recs[0].Seq != at {
			return broken(at, "beyond the store's head (record %d), a record saying it is record %d: records were added outside the chain's append", sh.Seq, recs[0].Seq)
		}
		return broken(at, "beyond the store's head (record %d): records were added outside the chain's append", now.Seq)
	}
	return nil
}

// undecodable reports the stored record c names, read where record want
// should be, as the first bad one: not a record at all (edited by hand).
func undecodable(c *store.CorruptAuditRecordError, want uint64) error {
	if c.Seq != want {
		return broken(want, "missing or moved: a stored value that is not a record is in its place (at %d)", c.Seq)
	}
	return broken(want, "the value stored there is not a record (changed outside paygate): %v", c.Err)
}

// checkRecord checks r, read where record want should be, after prev.
func checkRecord(r store.AuditRecord, want uint64, prev store.AuditHead) error {
	switch {
	case r.Seq != want:
		return broken(want, "missing or moved: record %d is stored in its place", r.Seq)
	case r.PrevHash != prev.Hash:
		return broken(want, "its previous hash does not match record %d's hash (record %d or %d was changed or moved)", prev.Seq, prev.Seq, want)
	case Hash(r.Body) != r.Hash:
		return broken(want, "its hash does not match its body (the body was changed)")
	}
	body, err := Decode(r.Body)
	if err != nil {
		return broken(want, "its body is not a record: %v", err)
	}
	canon, err := CanonicalizeJSON(r.Body)
	if err != nil || !bytes.Equal(canon, r.Body) {
		return broken(want, "its body is not canonical JSON")
	}
	switch {
	case body.V != FormatVersion:
		return broken(want, "unknown record format %d", body.V)
	case body.Seq != r.Seq:
		return broken(want, "its body says record %d (moved from another place)", body.Seq)
	case body.PrevHash != r.PrevHash:
		return broken(want, "its body links to another previous hash")
	case body.User != r.User:
		return broken(want, "its user differs from the user in its body")
	}
	return nil
}

// textCheck checks the conversation texts along the walk. A missing text
// may be covered by an erasure recorded anywhere in the chain (one said
// before an erasure and appended after it was refused by the store's mark),
// so it is settled after the walk, against the erasures the chain holds.
// Only the texts no erasure covers are looked for in the outbox, all in one
// read, and only then are the records appended since the walk's head read:
// after a user's texts are erased, verify -text costs no outbox scan per
// text, however many there were and however full the outbox is.
type textCheck struct {
	erased  map[[2]string]time.Time // (client, user) -> the latest recorded erasure
	missing []missingText           // texts missing and not expired
}

// missingText is what settle needs of a record whose text is missing, kept
// until the walk ends (an erasure's record comes after the texts it
// removed): not the record whole, whose sampling parameters (a logit_bias
// of hundreds of entries) made verify -text of a chain after many
// erasures hold tens of kilobytes per erased text.
type missingText struct {
	Seq               uint64
	Time              time.Time
	Client, User      string
	EventID           string
	OrderNo, RefundID string
	TextSHA256        string
}

func missingOf(body Record) missingText {
	return missingText{Seq: body.Seq, Time: body.Time, Client: body.Client, User: body.User, EventID: body.EventID,
		OrderNo: body.OrderNo, RefundID: body.RefundID, TextSHA256: body.TextSHA256}
}

func (c *textCheck) check(ctx context.Context, st store.Audit, r store.AuditRecord, o VerifyOptions, res *VerifyResult) error {
	body, _ := Decode(r.Body) // checked before
	c.note(body)
	if body.TextSHA256 == "" {
		return nil
	}
	text, err := st.GetAuditText(ctx, r.Seq)
	if errors.Is(err, store.ErrNotFound) {
		// Its retention ran out. The text was kept for retain from when it
		// was said, on that replica's clock, less what the appending
		// worker's clock counted as passed: up to ClockSkew before the
		// record's time plus retain on this one.
		retain := o.retain()
		if retain < 0 || !time.Now().Before(body.Time.Add(retain-o.skew())) {
			res.TextsGone++
			return nil
		}
		c.missing = append(c.missing, missingOf(body))
		return nil
	}
	if err != nil {
		return fmt.Errorf("read audit text %d: %w", r.Seq, err)
	}
	return checkText(r.Seq, text, body.TextSHA256, res)
}

// note keeps the erasure body records, if it is one.
func (c *textCheck) note(body Record) {
	if body.Name != ActionTextErased {
		return
	}
	k := [2]string{body.Client, body.User}
	if c.erased == nil {
		c.erased = map[[2]string]time.Time{}
	}
	if body.Time.After(c.erased[k]) {
		c.erased[k] = body.Time
	}
}

// checkText checks a text against the hash its record holds.
func checkText(seq uint64, text []byte, textSHA256 string, res *VerifyResult) error {
	if TextHash(text) != textSHA256 {
		return textBroken(broken(seq, "its conversation text does not match the hash in the record (the text was changed)"))
	}
	res.TextsChecked++
	return nil
}

// settle decides about the missing texts. A text is erased when the chain
// records an erasure of its client and user that covers it
// (erasureCovers), or, with TrustErasureMarks, when the store's mark
// does. Otherwise it is pending when its record's event is still at the
// head of its outbox queue (appended, its text not yet kept: the worker
// keeps it before acknowledging), or when an erasure of its client and user
// is and can cover it (Worker.Erase answers with its record left in the
// outbox when the worker is busy, and shutdown may leave it there too): a
// text said by ClockSkew after that erasure, or after the store's mark of a
// later one queued behind it, never one said later. Then the records
// appended after walked, the head the walk ended at, are read for erasures:
// on a live store (Redis) an erasure made during the walk has its record
// beyond that head. The outbox is read first, so an erasure's record that
// leaves it between the two reads (appended, then acknowledged) is in the
// chain by the second. A text still unexplained is read again for the hash
// check (its event may have been finished since), and if it is still
// missing, it was removed without erasure.
func (c *textCheck) settle(ctx context.Context, st store.Audit, walked store.AuditHead, o VerifyOptions, res *VerifyResult) error {
	marks := map[[2]string]time.Time{}
	mark := func(body missingText) (time.Time, error) {
		k := [2]string{body.Client, body.User}
		if at, ok := marks[k]; ok {
			return at, nil
		}
		at, err := st.AuditErasedAt(ctx, body.Client, body.User)
		if err != nil {
			return at, fmt.Errorf("read erasure of the user of audit record %d: %w", body.Seq, err)
		}
		marks[k] = at
		return at, nil
	}
	left, err := c.uncovered(c.missing, o, mark, res)
	if err != nil || len(left) == 0 {
		return err
	}
	var pending map[string]bool
	var erasing map[[2]string]time.Time
	if ob, ok := st.(store.Outbox); ok {
		if pending, erasing, err = pendingEvents(ctx, ob, left); err != nil {
			return err
		}
	}
	if err := c.erasuresAfter(ctx, st, walked, o); err != nil {
		return err
	}
	if left, err = c.uncovered(left, o, mark, res); err != nil {
		return err
	}
	var removed []missingText
	for _, body := range left {
		if pending[body.EventID] {
			res.TextsPending++
			continue
		}
		if at, ok := erasing[[2]string{body.Client, body.User}]; ok {
			// A pending erasure covers the texts said before it, not
			// after. Erasures of the user queued behind the one at the
			// head, which the outbox does not show, are bounded by the
			// store's mark of the last one: every text said before it was
			// erased by it, whether its record waits or was lost (then
			// reported once the head's record is appended).
			m, err := mark(body)
			if err != nil {
				return err
			}
			if erasureCovers(latest(at, m), body.Time, o.skew()) {
				res.TextsPending++
				continue
			}
		}
		// Its event may have been finished (text kept, then acknowledged)
		// since the text was read.
		text, err := st.GetAuditText(ctx, body.Seq)
		switch {
		case errors.Is(err, store.ErrNotFound):
			removed = append(removed, body)
		case err != nil:
			return fmt.Errorf("read audit text %d: %w", body.Seq, err)
		default:
			if err := checkText(body.Seq, text, body.TextSHA256, res); err != nil {
				return err
			}
		}
	}
	return c.removed(removed, o, mark)
}

// uncovered counts in res the texts of missing that an erasure the chain
// records (or, with TrustErasureMarks, the store's mark) covers and
// returns the others.
func (c *textCheck) uncovered(missing []missingText, o VerifyOptions, mark func(missingText) (time.Time, error), res *VerifyResult) ([]missingText, error) {
	var left []missingText
	for _, body := range missing {
		if erasureCovers(c.erased[[2]string{body.Client, body.User}], body.Time, o.skew()) {
			res.TextsGone++
			continue
		}
		if o.TrustErasureMarks {
			at, err := mark(body)
			if err != nil {
				return nil, err
			}
			if erasureCovers(at, body.Time, o.skew()) {
				res.TextsGone++
				res.TextsGoneByMark++
				continue
			}
		}
		left = append(left, body)
	}
	return left, nil
}

// erasuresAfter notes the erasures recorded after walked, the head the
// walk ended at, in records appended since. Only records that link on from
// walked count; the first that does not (a break, the next verification's
// to report) ends the read.
func (c *textCheck) erasuresAfter(ctx context.Context, st store.Audit, walked store.AuditHead, o VerifyOptions) error {
	page := o.PageSize
	if page <= 0 {
		page = readPage
	}
	prev := walked
	for {
		recs, err := st.ReadAudit(ctx, prev.Seq+1, page)
		// A stored value that is not a record ends the records that link
		// on, as a break does.
		var corrupt *store.CorruptAuditRecordError
		ended := errors.As(err, &corrupt)
		if err != nil && !ended {
			return fmt.Errorf("read audit records from %d: %w", prev.Seq+1, err)
		}
		for _, r := range recs {
			if checkRecord(r, prev.Seq+1, prev) != nil {
				return nil
			}
			body, _ := Decode(r.Body) // checked
			c.note(body)
			prev = store.AuditHead{Seq: r.Seq, Hash: r.Hash}
		}
		if ended || len(recs) < page {
			return nil
		}
	}
}

// erasureCovers reports whether an erasure at at covers the text of a
// record of time said: one said at most skew after at, to the millisecond
// (the Redis mark's resolution): the Worker keeps no text said at or
// before an erasure, and, since replicas' clocks differ by up to skew, none
// said up to skew after it either (Worker.keepText).
func erasureCovers(at, said time.Time, skew time.Duration) bool {
	return !at.IsZero() && at.Add(skew).UnixMilli() >= said.UnixMilli()
}

// removed reports the first of texts, missing with nothing to explain it,
// as removed without erasure, saying what erasure there is of its user.
func (c *textCheck) removed(texts []missingText, o VerifyOptions, mark func(missingText) (time.Time, error)) error {
	if len(texts) == 0 {
		return nil
	}
	body := texts[0]
	const ms = "2006-01-02T15:04:05.000Z07:00"
	why := "no erasure of its client's user is recorded in the chain"
	if at, recorded := c.erased[[2]string{body.Client, body.User}]; recorded {
		why = "its client's user was last erased at " + at.UTC().Format(ms) + ", more than the clock skew (" + o.skew().String() + ") before the record"
	}
	m, err := mark(body)
	if err != nil {
		return err
	}
	if erasureCovers(m, body.Time, o.skew()) {
		why += " (the store holds an erasure mark of " + m.UTC().Format(ms) +
			" outside the chain: an erasure by an earlier version is accepted with -trust-marks)"
	}
	return textBroken(broken(body.Seq, "its conversation text is missing, though %s and audit.retain_text (%s) from the record's time %s has not run out: text removed without erasure",
		why, o.retain(), body.Time.UTC().Format(ms)))
}

// textBroken marks err, a *BrokenError, as about a conversation text.
func textBroken(err error) error {
	err.(*BrokenError).Text = true
	return err
}

// latest is the later of a and b.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// pendingEvents reads, in one outbox read, which of the events of texts are
// still pending (at the head of their queue), and of which of their
// clients' users an erasure's record is, with the latest such erasure's
// time: at the head of the user's erasure queue (ErasureEvent), or of
// store.DefaultEventKey's, where earlier versions queued every erasure's.
func pendingEvents(ctx context.Context, ob store.Outbox, texts []missingText) (map[string]bool, map[[2]string]time.Time, error) {
	keys := []string{store.DefaultEventKey}
	seen := map[string]bool{store.DefaultEventKey: true}
	for _, body := range texts {
		for _, k := range append(eventKeys(body), erasureKey(body.Client, body.User)) {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	heads, err := ob.OutboxHeads(ctx, keys...)
	if err != nil {
		return nil, nil, fmt.Errorf("read the outbox for the events of audit records whose text is missing (first %d): %w", texts[0].Seq, err)
	}
	pending := map[string]bool{}
	erasing := map[[2]string]time.Time{}
	for _, e := range heads {
		if e.Kind != KindAudit {
			continue
		}
		pending[e.ID] = true
		if e.Key != store.DefaultEventKey && !strings.HasPrefix(e.Key, ErasureKeyPrefix) {
			continue
		}
		if p, err := decodePayload(e.Payload); err == nil && p.Action.Name == ActionTextErased {
			k := [2]string{p.Action.Client, p.Action.User}
			if at, ok := erasing[k]; !ok || p.Action.Time.After(at) {
				erasing[k] = p.Action.Time
			}
		}
	}
	return pending, erasing, nil
}

// eventKeys are the outbox keys the event of a record may be queued on: its
// order's (ActionEvent, an order transition's), its refund proposal's
// (ProposalEvent, store.ProposalEventKey), or the default key of an event
// that names neither. They are prefixes to Outbox.OutboxHeads, so other keys
// they start may be listed too; the event id tells the record's apart.
func eventKeys(body missingText) []string {
	var keys []string
	if body.OrderNo != "" {
		keys = append(keys, body.OrderNo)
	}
	if body.RefundID != "" {
		keys = append(keys, store.ProposalEventKey(body.RefundID))
	}
	if len(keys) == 0 {
		keys = append(keys, store.DefaultEventKey)
	}
	return keys
}
