package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

var errImmutable = errors.New("order client, user and creation time cannot change")

func validOrder(o *store.Order) error {
	if o == nil || o.OrderNo == "" {
		return errors.New("redis: order number is required")
	}
	if !o.Status.Valid() {
		return fmt.Errorf("redis: invalid order status %q", o.Status)
	}
	return nil
}

func createdNS(o *store.Order) string { return strconv.FormatInt(o.CreatedAt.UnixNano(), 10) }

// score orders the time indexes: microseconds fit a float64 exactly.
func score(t time.Time) int64 { return t.UnixMicro() }

// userUpdatedSlack is how far before a user's newest update luaSyncUser
// keeps every order in the user's update index, whatever the cut: the
// most the replicas' clocks, which stamp UpdatedAt, may differ by (README:
// a minute).
const userUpdatedSlack = time.Minute

// createOrderArgs is the create script's ARGV: the record's json, its
// status, client, user and creation time, the write intent's token, the
// events' count and elements, and last the intent's fence.
func createOrderArgs(j []byte, o *store.Order, tok string, elems []any, fence any) []any {
	args := append([]any{j, string(o.Status), o.Client, o.User, createdNS(o), tok, len(elems)}, elems...)
	return append(args, fence)
}

// updateOrderArgs is the update script's ARGV: as createOrderArgs, with the
// status and version expected before the write.
func updateOrderArgs(j []byte, o *store.Order, expect store.OrderStatus, version int64, tok string, elems []any, fence any) []any {
	args := append([]any{j, string(o.Status), string(expect), o.Client, o.User, createdNS(o), version, tok, len(elems)}, elems...)
	return append(args, fence)
}

// CreateOrder implements store.Orders.
func (s *Store) CreateOrder(ctx context.Context, o *store.Order, events ...store.Event) error {
	if err := validOrder(o); err != nil {
		return err
	}
	elems, err := s.orderEvents(o.OrderNo, events)
	if err != nil {
		return err
	}
	now := s.now()
	rec := *o
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	rec.UpdatedAt = now
	rec.Version = 1
	j, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("redis: encode order: %w", err)
	}
	rk, ob, obv := s.k.orderTag(o.OrderNo)
	in, v, err := s.fenced(ctx, o.OrderNo, func(in writeIntent) (any, error) {
		return s.runMoney(ctx, "create order", s.sc.createOrder, []string{rk, ob, obv}, createOrderArgs(j, &rec, in.tok, elems, in.fence())...)
	})
	if err != nil && v == nil {
		return err
	}
	r := replySlice(v)
	if replyInt(r, 0) == 0 {
		s.dropIntent(ctx, o.OrderNo, in)
		return fmt.Errorf("order %s: %w", o.OrderNo, store.ErrExists)
	}
	s.sync(ctx, &rec, replyInt(r, 2), replyInt(r, 3), in)
	o.Version, o.CreatedAt, o.UpdatedAt = 1, rec.CreatedAt, rec.UpdatedAt
	return err // nil, or "applied but not replicated in time"
}

// UpdateOrder implements store.Orders.
func (s *Store) UpdateOrder(ctx context.Context, o *store.Order, expect store.OrderStatus, events ...store.Event) error {
	if err := validOrder(o); err != nil {
		return err
	}
	elems, err := s.orderEvents(o.OrderNo, events)
	if err != nil {
		return err
	}
	now := s.now()
	rec := *o
	rec.UpdatedAt = now
	j, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("redis: encode order: %w", err)
	}
	rk, ob, obv := s.k.orderTag(o.OrderNo)
	in, v, err := s.fenced(ctx, o.OrderNo, func(in writeIntent) (any, error) {
		args := updateOrderArgs(j, &rec, expect, o.Version, in.tok, elems, in.fence())
		return s.runMoney(ctx, "update order", s.sc.updateOrder, []string{rk, ob, obv}, args...)
	})
	if err != nil && v == nil {
		return err
	}
	r := replySlice(v)
	switch replyInt(r, 0) {
	case -1:
		s.dropIntent(ctx, o.OrderNo, in)
		return fmt.Errorf("order %s: %w", o.OrderNo, store.ErrNotFound)
	case -2:
		s.dropIntent(ctx, o.OrderNo, in)
		cur, _ := replyStr(r, 1)
		if cur == string(expect) {
			return fmt.Errorf("order %s is at version %d, not %d: %w", o.OrderNo, replyInt(r, 2), o.Version, store.ErrConflict)
		}
		return fmt.Errorf("order %s is %s, not %s: %w", o.OrderNo, cur, expect, store.ErrConflict)
	case -3:
		s.dropIntent(ctx, o.OrderNo, in)
		return fmt.Errorf("redis: update order %s: %w", o.OrderNo, errImmutable)
	}
	rec.Version = replyInt(r, 1)
	s.sync(ctx, &rec, replyInt(r, 2), replyInt(r, 3), in)
	o.Version, o.UpdatedAt = rec.Version, rec.UpdatedAt
	return err
}

// decodeOrder reads a record hash's json and version fields.
func decodeOrder(j string, version int64) (*store.Order, error) {
	var o store.Order
	if err := store.DecodeOrder([]byte(j), &o); err != nil {
		return nil, fmt.Errorf("redis: decode order: %w", err)
	}
	o.Version = version
	return &o, nil
}

// GetOrder implements store.Orders.
func (s *Store) GetOrder(ctx context.Context, orderNo string) (*store.Order, error) {
	rk, _, _ := s.k.orderTag(orderNo)
	vals, err := s.c.HMGet(ctx, rk, "j", "v").Result()
	if err != nil {
		return nil, mapErr("get order", err)
	}
	return orderFromHMGet(orderNo, vals)
}

// ConfirmOrder implements store.Replicated. With WaitReplicas, it writes
// (and removes) a key on the order's tag, on the primary that holds the
// order, with WAIT behind it in the same pipeline, as a money write does
// (runWrite) but raising no generation counter: it changes nothing a
// rollback could lose (generation.go). Replication is in order, so a
// replica that acknowledges this write has every earlier write to the
// order, the one whose own WAIT timed out among them.
func (s *Store) ConfirmOrder(ctx context.Context, orderNo string) error {
	if s.waitN <= 0 {
		return nil
	}
	rk, _, _ := s.k.orderTag(orderNo)
	_, err := s.runWrite(ctx, "confirm order", s.sc.confirm, false, []string{strings.TrimSuffix(rk, ":rec") + ":confirm"})
	return err
}

// ConfirmAudit implements store.Replicated as ConfirmOrder does, by a
// write to a key of the audit chain's hash tag with WAIT behind it: a
// replica that acknowledges it has every record the primary holds, those
// of an append whose own WAIT timed out among them.
func (s *Store) ConfirmAudit(ctx context.Context) error {
	if s.waitN <= 0 {
		return nil
	}
	_, err := s.runWrite(ctx, "confirm audit", s.sc.confirm, false, []string{s.k.audit("confirm")})
	return err
}

func orderFromHMGet(no string, vals []any) (*store.Order, error) {
	j, ok := replyStr(vals, 0)
	if !ok {
		return nil, fmt.Errorf("order %s: %w", no, store.ErrNotFound)
	}
	return decodeOrder(j, replyInt(vals, 1))
}

// ListOrders implements store.Orders. The index (the user's, the client's
// (clientListIndex), the status's or the global one) proposes candidates newest first; each candidate is read from
// its authoritative record and filtered, so a stale index entry never shows a
// wrong status. The index scores are microseconds and orders of one
// microsecond come out by number, not by their exact creation time: so the
// cursor's own microsecond is read too (and filtered exactly), the
// microsecond of the last order taken is read to its end, and the page is
// sorted into store.OrderListedBefore's order before it is cut to the limit.
func (s *Store) ListOrders(ctx context.Context, f store.OrderFilter) ([]*store.Order, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	limit = min(limit, store.MaxListLimit)
	if err := f.Check(); err != nil {
		return nil, fmt.Errorf("redis: list orders: %w", err)
	}
	var index string
	switch {
	case f.User != "":
		_, _, index, _ = s.k.userTag(f.Client, f.User)
	case f.Client != "" || f.NoClient:
		var err error
		if index, err = s.clientListIndex(ctx, f); err != nil {
			return nil, err
		}
	case f.Status != "":
		index = s.k.status(f.Status)
	default:
		index = s.k.idx("all")
	}
	maxScore := "+inf"
	if !f.Before.IsZero() {
		maxScore = strconv.FormatInt(score(f.Before), 10) // inclusive: PastCursor decides
	}
	var out []*store.Order
	full, last := false, 0.0 // last: the score of the limit-th order taken
	batch := int64(limit + 16)
	// Each batch after the first goes on from the score the one before
	// ended at, past the entries of that score it read (offset), not from
	// an offset counted from the top: an order created while the list
	// reads (newer than every entry) moved every entry down by one, and the
	// next batch began with the last entries already read, so a page whose
	// filter skips most of the index (a client's orders among every
	// client's) listed an order twice.
	offset := int64(0)
scan:
	for {
		zs, err := s.c.ZRevRangeByScoreWithScores(ctx, index, &goredis.ZRangeBy{Max: maxScore, Min: "-inf", Offset: offset, Count: batch}).Result()
		if err != nil {
			return nil, mapErr("list orders", err)
		}
		if len(zs) == 0 {
			break
		}
		nos := make([]string, len(zs))
		for i, z := range zs {
			nos[i], _ = z.Member.(string)
		}
		cmds := make([]*goredis.SliceCmd, len(nos))
		_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, no := range nos {
				rk, _, _ := s.k.orderTag(no)
				cmds[i] = p.HMGet(ctx, rk, "j", "v")
			}
			return nil
		})
		if err != nil {
			return nil, mapErr("list orders", err)
		}
		for i, cmd := range cmds {
			if full && zs[i].Score != last {
				break scan
			}
			o, err := orderFromHMGet(nos[i], cmd.Val())
			if errors.Is(err, store.ErrNotFound) {
				continue // an intent whose create never ran
			}
			if err != nil {
				return nil, err
			}
			if f.ClientMatches(o) && (f.User == "" || o.User == f.User) &&
				(f.Status == "" || o.Status == f.Status) && f.PastCursor(o) {
				out = append(out, o)
				if !full && len(out) == limit {
					full, last = true, zs[i].Score
				}
			}
		}
		if int64(len(zs)) < batch {
			break
		}
		edge := zs[len(zs)-1].Score
		atEdge := int64(0)
		for i := len(zs) - 1; i >= 0 && zs[i].Score == edge; i-- {
			atEdge++
		}
		if next := strconv.FormatFloat(edge, 'f', -1, 64); next == maxScore {
			offset += atEdge // a whole batch of one microsecond: on past it
		} else {
			maxScore, offset = next, atEdge
		}
	}
	store.SortListed(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// LoadUserState implements store.UserStates: one script on the user's tag,
// which reads the copies of the user's newest created orders and of their
// newest updated, and their announcement marks (ClaimAnnouncement). The
// index of the newest updated is written with each copy, so it holds the
// orders written since this version: a user whose orders were all last
// written by an earlier one (or, during a rolling upgrade, by a replica
// still running it) gets the newest created only, as before.
//
// The indexes score microseconds: the script reads each set to the end of
// its last order's microsecond, and each set is cut here by the exact
// times, as ListOrders cuts a page, so two orders of one microsecond at a
// cut are kept or dropped as on every driver, not by their numbers.
func (s *Store) LoadUserState(ctx context.Context, client, user string) (*store.UserState, error) {
	uo, _, ur, uu := s.k.userTag(client, user)
	ua := s.k.userAnnounced(client, user)
	v, err := s.run(ctx, "load user state", s.sc.loadUser, []string{uo, ur, uu, ua}, store.UserStateOrders)
	if err != nil {
		return nil, err
	}
	st := &store.UserState{Client: client, User: user, Now: s.now()}
	r := replySlice(v)
	var copies, marks, sets []any
	if len(r) == 3 {
		copies, marks, sets = replySlice(r[0]), replySlice(r[1]), replySlice(r[2])
	}
	var created, updated []*store.Order
	mark := map[*store.Order]string{}
	for i, x := range copies {
		j, ok := x.(string)
		if !ok {
			continue
		}
		o := new(store.Order)
		if err := store.DecodeOrder([]byte(j), o); err != nil {
			return nil, fmt.Errorf("redis: decode order copy: %w", err)
		}
		set := replyInt(sets, i)
		if set&1 != 0 {
			created = append(created, o)
		}
		if set&2 != 0 {
			updated = append(updated, o)
		}
		if m, ok := replyStr(marks, i); ok {
			mark[o] = m
		}
	}
	store.SortListed(created)
	slices.SortStableFunc(updated, func(a, b *store.Order) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.OrderNo, a.OrderNo)
	})
	st.Orders = slices.Clip(created[:min(len(created), store.UserStateOrders)])
	for _, o := range updated[:min(len(updated), store.UserStateOrders)] {
		if !slices.Contains(st.Orders, o) {
			st.Orders = append(st.Orders, o)
		}
	}
	for _, o := range st.Orders {
		if m, ok := mark[o]; ok {
			if err := addMarks(st, s.toServerMs(st.Now), o.OrderNo, m); err != nil {
				return nil, err
			}
		}
	}
	store.SortListed(st.Orders)
	return st, nil
}

// announceMark is one kind's mark in an order's field of the user's
// announcement marks (luaAnnounce): live until U (unix ms), set by the call
// whose token is T.
type announceMark struct {
	U string `json:"u"`
	T string `json:"t"`
}

// addMarks adds the marks of order no, its field j of the user's
// announcement marks, live at nowMs (the server's clock, as the marks'
// until is: ClaimAnnouncement), to st.Announced.
func addMarks(st *store.UserState, nowMs int64, no, j string) error {
	var m map[string]announceMark
	if err := json.Unmarshal([]byte(j), &m); err != nil {
		return fmt.Errorf("redis: decode announcement marks of order %s: %w", no, err)
	}
	for kind, e := range m {
		if until, err := strconv.ParseInt(e.U, 10, 64); err == nil && until > nowMs {
			if st.Announced == nil {
				st.Announced = make(map[store.Announcement]bool)
			}
			st.Announced[store.Announcement{Kind: kind, OrderNo: no}] = true
		}
	}
	return nil
}
