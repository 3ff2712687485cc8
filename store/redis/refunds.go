package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// Refund proposal states, as stored in the record's st field.
const (
	refundLive      = "live"
	refundUsed      = "used"
	refundCancelled = "cancelled"
	refundExpired   = "expired"
)

// PutRefundProposal implements store.RefundProposals. The record lives
// physically until store.TombstoneTTL after its expiry, so a late confirmation
// reads a tombstone. Its events go to the queue of
// store.ProposalEventKey(p.RefundID), on the proposal's hash tag, in the same
// script; with events the write follows the intent protocol of an order
// write (sync.go) for the {idx} outbox index.
func (s *Store) PutRefundProposal(ctx context.Context, p *store.RefundProposal, ttl time.Duration, events ...store.Event) error {
	if p == nil || p.RefundID == "" || ttl <= 0 {
		return errors.New("redis: refund proposal needs an id and a ttl")
	}
	key := store.ProposalEventKey(p.RefundID)
	elems, err := s.proposalEvents(p.RefundID, events)
	if err != nil {
		return err
	}
	now := s.now()
	rec := *p
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	rec.ExpiresAt = store.ProposalExpiry(p, now, ttl)
	j, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("redis: encode refund proposal: %w", err)
	}
	_, ob, obv := s.k.orderTag(key)
	args := append([]any{j, rec.User, s.serverMs(ctx, rec.ExpiresAt), ms(ttl + store.TombstoneTTL + expiryGrace), rand.Text(), len(elems)}, elems...)
	in, v, err := s.proposalStep(ctx, key, len(elems) > 0, func(in writeIntent) (any, error) {
		return s.runMoney(ctx, "put refund proposal", s.sc.putRefund, []string{s.k.one("r", p.RefundID), ob, obv}, append(args, in.fence())...)
	})
	if err != nil && v == nil {
		return err // the intent's note stays for Repair
	}
	r := replySlice(v)
	if replyInt(r, 0) != 1 {
		if in.tok != "" {
			s.dropIntent(ctx, key, in)
		}
		return fmt.Errorf("refund proposal %s: %w", p.RefundID, store.ErrExists)
	}
	if in.tok != "" {
		s.syncIndexOrWarn(ctx, nil, key, strconv.FormatInt(replyInt(r, 1), 10), replyInt(r, 2), noteOf(key, in.tok))
	}
	if err != nil {
		// Written on the primary but not replicated in time: fail closed.
		return err
	}
	p.CreatedAt, p.ExpiresAt = rec.CreatedAt, rec.ExpiresAt
	s.indexRefund(ctx, &rec, ttl)
	return nil
}

// indexRefund adds proposal p, just put for ttl, to its user's index
// (OpenRefundProposals), in a step of its own: the index is on the user's
// tag, the proposal on its own, and a Redis Cluster runs no script over
// two. A failure leaves the proposal unlisted in the user's order list, not
// unusable (the turn's answer carries it): it is logged, not returned.
func (s *Store) indexRefund(ctx context.Context, p *store.RefundProposal, ttl time.Duration) {
	_, err := s.run(ctx, "index refund proposal", s.sc.indexRefund, []string{s.k.userRefunds(p.Client, p.User)},
		p.RefundID, s.serverMs(ctx, p.ExpiresAt), s.serverMs(ctx, s.now()), ms(ttl+expiryGrace))
	if err != nil {
		s.log.WarnContext(ctx, "store: a refund proposal is not listed in its user's orders", "refund_id", p.RefundID, "err", err)
	}
}

// OpenRefundProposals implements store.RefundProposals: the ids of the
// user's index that have not expired, then their records (one pipeline),
// of which those still live are returned. It costs one round trip for a
// user with no proposal open, two otherwise. A used or cancelled proposal
// stays in the index until it expires and is left out by its record.
func (s *Store) OpenRefundProposals(ctx context.Context, client, user string) ([]*store.RefundProposal, error) {
	now := s.serverMs(ctx, s.now())
	ids, err := s.c.ZRangeByScore(ctx, s.k.userRefunds(client, user),
		&goredis.ZRangeBy{Min: "(" + strconv.FormatInt(now, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, mapErr("list refund proposals", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*goredis.SliceCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = pl.HMGet(ctx, s.k.one("r", id), "j", "st", "exp")
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("read refund proposals", err)
	}
	var out []*store.RefundProposal
	for _, c := range cmds {
		vals := c.Val()
		j, ok := replyStr(vals, 0)
		if !ok {
			continue // gone past its tombstone
		}
		if st, _ := replyStr(vals, 1); st != refundLive || replyInt(vals, 2) <= now {
			continue
		}
		p, err := decodeProposal(j)
		if err != nil {
			return nil, err
		}
		if p.Client == client && p.User == user {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b *store.RefundProposal) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// GetRefundProposal implements store.RefundProposals.
func (s *Store) GetRefundProposal(ctx context.Context, id string) (*store.RefundProposal, error) {
	vals, err := s.c.HMGet(ctx, s.k.one("r", id), "j", "st", "exp").Result()
	if err != nil {
		return nil, mapErr("get refund proposal", err)
	}
	j, ok := replyStr(vals, 0)
	if !ok {
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
	}
	if st, _ := replyStr(vals, 1); st != refundLive || replyInt(vals, 2) <= s.serverMs(ctx, s.now()) {
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrGone)
	}
	return decodeProposal(j)
}

// RefundProposalState implements store.RefundProposals.
func (s *Store) RefundProposalState(ctx context.Context, id string) (*store.RefundProposal, store.ProposalState, error) {
	vals, err := s.c.HMGet(ctx, s.k.one("r", id), "j", "st").Result()
	if err != nil {
		return nil, "", mapErr("get refund proposal state", err)
	}
	j, ok := replyStr(vals, 0)
	if !ok {
		return nil, "", fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
	}
	st, _ := replyStr(vals, 1)
	return proposalState(id, j, st)
}

// proposalState decodes a proposal's record j and maps its state st to
// store.ProposalState.
func proposalState(id, j, st string) (*store.RefundProposal, store.ProposalState, error) {
	var state store.ProposalState
	switch st {
	case refundLive:
		state = store.ProposalOpen
	case refundUsed:
		state = store.ProposalUsed
	case refundCancelled:
		state = store.ProposalCancelled
	case refundExpired:
		state = store.ProposalExpired
	default:
		return nil, "", fmt.Errorf("redis: refund proposal %s has unknown state %q", id, st)
	}
	p, err := decodeProposal(j)
	if err != nil {
		return nil, "", err
	}
	return p, state, nil
}

// ExpireRefundProposal implements store.RefundProposals: one script on the
// proposal's tag reads it and, lapsed by the server's clock as this Store
// carries it (serverClock), tombstones it, so no consumption comes
// between; a money write (runMoney), since it decides that no replica can
// take the proposal. The record keeps the expiry PutRefundProposal gave
// it, TombstoneTTL past ExpiresAt.
func (s *Store) ExpireRefundProposal(ctx context.Context, id string) (*store.RefundProposal, store.ProposalState, error) {
	v, err := s.runMoney(ctx, "expire refund proposal", s.sc.expireRefund, []string{s.k.one("r", id)}, s.serverMs(ctx, s.now()))
	if err != nil {
		return nil, "", err
	}
	r := replySlice(v)
	if replyInt(r, 0) != 1 {
		return nil, "", fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
	}
	j, _ := replyStr(r, 1)
	st, _ := replyStr(r, 2)
	return proposalState(id, j, st)
}

func decodeProposal(j string) (*store.RefundProposal, error) {
	var p store.RefundProposal
	if err := json.Unmarshal([]byte(j), &p); err != nil {
		return nil, fmt.Errorf("redis: decode refund proposal: %w", err)
	}
	return &p, nil
}

// ConsumeRefundProposal implements store.RefundProposals. The tombstone and
// its events are one script on the proposal's tag; with events the write
// follows the intent protocol of an order write (sync.go) for the {idx}
// outbox index, as PutRefundProposal does.
func (s *Store) ConsumeRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	return s.finishRefund(ctx, "consume refund proposal", id, user, refundUsed, events)
}

// CancelRefundProposal implements store.RefundProposals, as
// ConsumeRefundProposal.
func (s *Store) CancelRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	return s.finishRefund(ctx, "cancel refund proposal", id, user, refundCancelled, events)
}

func (s *Store) finishRefund(ctx context.Context, op, id, user, state string, events []store.Event) (*store.RefundProposal, error) {
	key := store.ProposalEventKey(id)
	elems, err := s.proposalEvents(id, events)
	if err != nil {
		return nil, err
	}
	_, ob, obv := s.k.orderTag(key)
	args := append([]any{user, state, s.serverMs(ctx, s.now()), ms(store.TombstoneTTL + expiryGrace), rand.Text(), len(elems)}, elems...)
	in, v, err := s.proposalStep(ctx, key, len(elems) > 0, func(in writeIntent) (any, error) {
		return s.runMoney(ctx, op, s.sc.finishRefund, []string{s.k.one("r", id), ob, obv}, append(args, in.fence())...)
	})
	if err != nil && v == nil {
		return nil, err // the intent's note stays for Repair
	}
	r := replySlice(v)
	switch replyInt(r, 0) {
	case -1, -2:
		if in.tok != "" {
			s.dropIntent(ctx, key, in)
		}
		if replyInt(r, 0) == -1 {
			return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
		}
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrGone)
	}
	if in.tok != "" {
		s.syncIndexOrWarn(ctx, nil, key, strconv.FormatInt(replyInt(r, 2), 10), replyInt(r, 3), noteOf(key, in.tok))
	}
	j, _ := replyStr(r, 1)
	p, derr := decodeProposal(j)
	if derr != nil {
		return nil, derr
	}
	if err != nil {
		// Consumed on the primary but not replicated in time: fail closed, no
		// money moves on an unreplicated confirmation.
		return nil, err
	}
	return p, nil
}

// proposalStep runs the script of a refund proposal write: fenced behind an
// intent when it carries events (noted), which touch the {idx} outbox
// index; alone, with no intent and no fence, when it carries none.
func (s *Store) proposalStep(ctx context.Context, key string, noted bool, step func(writeIntent) (any, error)) (writeIntent, any, error) {
	if noted {
		return s.fenced(ctx, key, step)
	}
	v, err := step(writeIntent{})
	return writeIntent{}, v, err
}

// proposalEvents keys events passed with a write of refund proposal id by
// the proposal (store.ProposalEventKey), fills them in and encodes them.
func (s *Store) proposalEvents(id string, events []store.Event) ([]any, error) {
	return s.keyedEvents(events, store.ProposalEventKey(id), "refund proposal "+id)
}
