package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/paygate/paygate/store"
)

// Refund proposal states, as stored in the record's st field.
const (
	refundLive      = "live"
	refundUsed      = "used"
	refundCancelled = "cancelled"
)

// PutRefundProposal implements store.RefundProposals. The record lives
// physically until store.TombstoneTTL after its expiry, so a late confirmation
// reads a tombstone.
func (s *Store) PutRefundProposal(ctx context.Context, p *store.RefundProposal, ttl time.Duration) error {
	if p == nil || p.RefundID == "" || ttl <= 0 {
		return errors.New("redis: refund proposal needs an id and a ttl")
	}
	now := s.now()
	rec := *p
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	rec.ExpiresAt = now.Add(ttl)
	j, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("redis: encode refund proposal: %w", err)
	}
	v, err := s.runMoney(ctx, "put refund proposal", s.sc.putRefund, []string{s.k.one("r", p.RefundID)},
		j, rec.User, rec.ExpiresAt.UnixMilli(), ms(ttl+store.TombstoneTTL+expiryGrace))
	if err != nil {
		return err
	}
	if n, _ := v.(int64); n == 0 {
		return fmt.Errorf("refund proposal %s: %w", p.RefundID, store.ErrExists)
	}
	p.CreatedAt, p.ExpiresAt = rec.CreatedAt, rec.ExpiresAt
	return nil
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
	if st, _ := replyStr(vals, 1); st != refundLive || replyInt(vals, 2) <= s.now().UnixMilli() {
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrGone)
	}
	return decodeProposal(j)
}

func decodeProposal(j string) (*store.RefundProposal, error) {
	var p store.RefundProposal
	if err := json.Unmarshal([]byte(j), &p); err != nil {
		return nil, fmt.Errorf("redis: decode refund proposal: %w", err)
	}
	return &p, nil
}

// ConsumeRefundProposal implements store.RefundProposals.
func (s *Store) ConsumeRefundProposal(ctx context.Context, id, user string) (*store.RefundProposal, error) {
	return s.finishRefund(ctx, "consume refund proposal", id, user, refundUsed)
}

// CancelRefundProposal implements store.RefundProposals.
func (s *Store) CancelRefundProposal(ctx context.Context, id, user string) (*store.RefundProposal, error) {
	return s.finishRefund(ctx, "cancel refund proposal", id, user, refundCancelled)
}

func (s *Store) finishRefund(ctx context.Context, op, id, user, state string) (*store.RefundProposal, error) {
	v, err := s.runMoney(ctx, op, s.sc.finishRefund, []string{s.k.one("r", id)},
		user, state, s.now().UnixMilli(), ms(store.TombstoneTTL+expiryGrace), rand.Text())
	if err != nil && v == nil {
		return nil, err
	}
	r := replySlice(v)
	switch replyInt(r, 0) {
	case -1:
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
	case -2:
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrGone)
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
