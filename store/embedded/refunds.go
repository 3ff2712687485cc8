package embedded

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

// Refund proposal states.
const (
	refundLive      = "live"
	refundUsed      = "used"
	refundCancelled = "cancelled"
)

// refundRec is a proposal or, once State is not live, its tombstone. Until is
// when the sweeper may forget it: store.TombstoneTTL after it stopped being
// usable.
type refundRec struct {
	P     store.RefundProposal `json:"p"`
	State string               `json:"state"`
	Until int64                `json:"until"`
}

// PutRefundProposal implements store.RefundProposals: the proposal and its
// events are one transaction.
func (d *DB) PutRefundProposal(ctx context.Context, p *store.RefundProposal, ttl time.Duration, events ...store.Event) error {
	if p == nil || p.RefundID == "" || ttl <= 0 {
		return errors.New("embedded: refund proposal needs an id and a ttl")
	}
	key := store.ProposalEventKey(p.RefundID)
	evs := make([]store.Event, len(events))
	for i, e := range events {
		if e.Key != "" && e.Key != key {
			return fmt.Errorf("embedded: event %s keyed %q cannot ride on refund proposal %s", e.ID, e.Key, p.RefundID)
		}
		e.Key = key
		evs[i] = d.fillEvent(e)
	}
	now := d.now()
	rec := refundRec{P: *p, State: refundLive}
	if rec.P.CreatedAt.IsZero() {
		rec.P.CreatedAt = now
	}
	rec.P.ExpiresAt = now.Add(ttl)
	rec.Until = rec.P.ExpiresAt.Add(store.TombstoneTTL).UnixNano()
	err := d.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bRefunds)
		if b.Get([]byte(p.RefundID)) != nil {
			return fmt.Errorf("refund proposal %s: %w", p.RefundID, store.ErrExists)
		}
		if err := putJSON(b, p.RefundID, rec); err != nil {
			return err
		}
		return appendEvents(tx, evs)
	})
	if err != nil {
		return err
	}
	p.CreatedAt, p.ExpiresAt = rec.P.CreatedAt, rec.P.ExpiresAt
	return nil
}

func getRefund(tx *bolt.Tx, id string) (*refundRec, error) {
	v := tx.Bucket(bRefunds).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
	}
	var r refundRec
	if err := unmarshal(v, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// GetRefundProposal implements store.RefundProposals.
func (d *DB) GetRefundProposal(ctx context.Context, id string) (*store.RefundProposal, error) {
	now := d.now()
	var out *store.RefundProposal
	err := d.view(ctx, func(tx *bolt.Tx) error {
		r, err := getRefund(tx, id)
		if err != nil {
			return err
		}
		if r.State != refundLive || !now.Before(r.P.ExpiresAt) {
			return fmt.Errorf("refund proposal %s: %w", id, store.ErrGone)
		}
		out = &r.P
		return nil
	})
	return out, err
}

// ConsumeRefundProposal implements store.RefundProposals.
func (d *DB) ConsumeRefundProposal(ctx context.Context, id, user string) (*store.RefundProposal, error) {
	return d.finishRefund(ctx, id, user, refundUsed)
}

// CancelRefundProposal implements store.RefundProposals.
func (d *DB) CancelRefundProposal(ctx context.Context, id, user string) (*store.RefundProposal, error) {
	return d.finishRefund(ctx, id, user, refundCancelled)
}

func (d *DB) finishRefund(ctx context.Context, id, user, state string) (*store.RefundProposal, error) {
	now := d.now()
	var out *store.RefundProposal
	err := d.update(ctx, func(tx *bolt.Tx) error {
		r, err := getRefund(tx, id)
		if err != nil {
			return err
		}
		if r.P.User != user {
			return fmt.Errorf("refund proposal %s: %w", id, store.ErrNotFound)
		}
		if r.State != refundLive || !now.Before(r.P.ExpiresAt) {
			return fmt.Errorf("refund proposal %s: %w", id, store.ErrGone)
		}
		r.State = state
		r.Until = now.Add(store.TombstoneTTL).UnixNano()
		out = &r.P
		return putJSON(tx.Bucket(bRefunds), id, r)
	})
	return out, err
}
