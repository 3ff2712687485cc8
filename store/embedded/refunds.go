package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

// Refund proposal states.
const (
	refundLive      = "live"
	refundUsed      = "used"
	refundCancelled = "cancelled"
	refundExpired   = "expired"
)

// refundRec is a proposal or, once State is not live, its tombstone. Until is
// when the sweeper may forget it: store.TombstoneTTL after it stopped being
// usable.
type refundRec struct {
	P     store.RefundProposal `json:"p"`
	State string               `json:"state"`
	Until int64                `json:"until"`
}

// userRefundKey is a proposal's entry in bUserRefunds, the user's index
// that OpenRefundProposals reads: the user's prefix, then the id.
func userRefundKey(client, user, id string) []byte {
	return append(userPrefix(client, user), id...)
}

// PutRefundProposal implements store.RefundProposals: the proposal, its
// entry in the user's index and its events are one transaction.
func (d *DB) PutRefundProposal(ctx context.Context, p *store.RefundProposal, ttl time.Duration, events ...store.Event) error {
	if p == nil || p.RefundID == "" || ttl <= 0 {
		return errors.New("embedded: refund proposal needs an id and a ttl")
	}
	evs, err := d.proposalEvents(p.RefundID, events)
	if err != nil {
		return err
	}
	now := d.now()
	rec := refundRec{P: *p, State: refundLive}
	if rec.P.CreatedAt.IsZero() {
		rec.P.CreatedAt = now
	}
	rec.P.ExpiresAt = store.ProposalExpiry(p, now, ttl)
	rec.Until = rec.P.ExpiresAt.Add(store.TombstoneTTL).UnixNano()
	err = d.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bRefunds)
		if b.Get([]byte(p.RefundID)) != nil {
			return fmt.Errorf("refund proposal %s: %w", p.RefundID, store.ErrExists)
		}
		if err := putJSON(b, bRefunds, p.RefundID, rec); err != nil {
			return err
		}
		// The entry lives while the proposal can be confirmed; the
		// sweep removes it after.
		idx := expiring{Until: rec.P.ExpiresAt.UnixNano()}
		if err := putJSON(tx.Bucket(bUserRefunds), bUserRefunds, string(userRefundKey(p.Client, p.User, p.RefundID)), idx); err != nil {
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

// RefundProposalState implements store.RefundProposals.
func (d *DB) RefundProposalState(ctx context.Context, id string) (*store.RefundProposal, store.ProposalState, error) {
	var r *refundRec
	err := d.view(ctx, func(tx *bolt.Tx) error {
		var err error
		r, err = getRefund(tx, id)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return recordState(id, r)
}

// recordState is r's proposal and its store.ProposalState.
func recordState(id string, r *refundRec) (*store.RefundProposal, store.ProposalState, error) {
	st, err := proposalState(r.State)
	if err != nil {
		return nil, "", fmt.Errorf("refund proposal %s: %w", id, err)
	}
	return &r.P, st, nil
}

// proposalState maps a record's state to store.ProposalState.
func proposalState(s string) (store.ProposalState, error) {
	switch s {
	case refundLive:
		return store.ProposalOpen, nil
	case refundUsed:
		return store.ProposalUsed, nil
	case refundCancelled:
		return store.ProposalCancelled, nil
	case refundExpired:
		return store.ProposalExpired, nil
	}
	return "", fmt.Errorf("embedded: unknown refund proposal state %q", s)
}

// ExpireRefundProposal implements store.RefundProposals: read and, when
// lapsed by the store's clock, tombstoned in one transaction.
func (d *DB) ExpireRefundProposal(ctx context.Context, id string) (*store.RefundProposal, store.ProposalState, error) {
	now := d.now()
	var r *refundRec
	err := d.update(ctx, func(tx *bolt.Tx) error {
		var err error
		if r, err = getRefund(tx, id); err != nil {
			return err
		}
		if r.State != refundLive || now.Before(r.P.ExpiresAt) {
			return nil
		}
		r.State = refundExpired
		if err := putJSON(tx.Bucket(bRefunds), bRefunds, id, r); err != nil {
			return err
		}
		return tx.Bucket(bUserRefunds).Delete(userRefundKey(r.P.Client, r.P.User, id))
	})
	if err != nil {
		return nil, "", err
	}
	return recordState(id, r)
}

// ConsumeRefundProposal implements store.RefundProposals: the tombstone and
// its events are one transaction.
func (d *DB) ConsumeRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	return d.finishRefund(ctx, id, user, refundUsed, events)
}

// CancelRefundProposal implements store.RefundProposals, as
// ConsumeRefundProposal.
func (d *DB) CancelRefundProposal(ctx context.Context, id, user string, events ...store.Event) (*store.RefundProposal, error) {
	return d.finishRefund(ctx, id, user, refundCancelled, events)
}

func (d *DB) finishRefund(ctx context.Context, id, user, state string, events []store.Event) (*store.RefundProposal, error) {
	evs, err := d.proposalEvents(id, events)
	if err != nil {
		return nil, err
	}
	now := d.now()
	var out *store.RefundProposal
	err = d.update(ctx, func(tx *bolt.Tx) error {
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
		if err := putJSON(tx.Bucket(bRefunds), bRefunds, id, r); err != nil {
			return err
		}
		if err := tx.Bucket(bUserRefunds).Delete(userRefundKey(r.P.Client, r.P.User, id)); err != nil {
			return err
		}
		return appendEvents(tx, evs)
	})
	return out, err
}

// OpenRefundProposals implements store.RefundProposals: the user's index
// and the proposals it names, read in one transaction.
func (d *DB) OpenRefundProposals(ctx context.Context, client, user string) ([]*store.RefundProposal, error) {
	now := d.now()
	var out []*store.RefundProposal
	err := d.view(ctx, func(tx *bolt.Tx) error {
		prefix := userPrefix(client, user)
		c := tx.Bucket(bUserRefunds).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			r, err := getRefund(tx, string(k[len(prefix):]))
			if errors.Is(err, store.ErrNotFound) {
				continue // swept meanwhile
			}
			if err != nil {
				return err
			}
			if r.State == refundLive && now.Before(r.P.ExpiresAt) && r.P.Client == client && r.P.User == user {
				out = append(out, &r.P)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b *store.RefundProposal) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// proposalEvents keys events passed with a write of refund proposal id by
// the proposal (store.ProposalEventKey) and fills them in.
func (d *DB) proposalEvents(id string, events []store.Event) ([]store.Event, error) {
	return d.keyedEvents(events, store.ProposalEventKey(id), "refund proposal "+id)
}
