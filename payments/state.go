package payments

import (
	"errors"

	"github.com/paygate/paygate/store"
)

// ErrTransition: the state machine does not allow the change.
var ErrTransition = errors.New("order transition not allowed")

// transitions is SPEC 4's state machine. approval_required has no "approved"
// record of its own: approval commits `creating` and prepays at once.
// needs_review is reachable from every other state, because WeChat Pay's
// verified word about money can contradict an order in any of them (a
// payment on a held or rejected order, which has no prepay, too); a missing
// edge answered such a notification 500 until WeChat Pay gave up, with
// nothing recorded. It is left to a person (who may settle it as paid or
// closed).
var transitions = map[store.OrderStatus][]store.OrderStatus{
	store.StatusCreating:          {store.StatusAwaitingPayment, store.StatusPaid, store.StatusClosed, store.StatusExpired, store.StatusNeedsReview},
	store.StatusAwaitingPayment:   {store.StatusPaid, store.StatusClosed, store.StatusExpired, store.StatusNeedsReview},
	store.StatusApprovalRequired:  {store.StatusCreating, store.StatusRejected, store.StatusExpired, store.StatusNeedsReview},
	store.StatusPaid:              {store.StatusRefunding, store.StatusNeedsReview},
	store.StatusRefunding:         {store.StatusRefunded, store.StatusPartiallyRefunded, store.StatusPaid, store.StatusNeedsReview},
	store.StatusPartiallyRefunded: {store.StatusRefunding, store.StatusNeedsReview},
	store.StatusRefunded:          {store.StatusNeedsReview},
	store.StatusClosed:            {store.StatusNeedsReview},
	store.StatusExpired:           {store.StatusNeedsReview},
	store.StatusRejected:          {store.StatusNeedsReview},
	store.StatusNeedsReview:       {store.StatusPaid, store.StatusClosed},
}

// CanTransition reports whether an order may move from one status to another.
func CanTransition(from, to store.OrderStatus) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Pending reports whether an order still waits for WeChat Pay's word.
func Pending(s store.OrderStatus) bool {
	return s == store.StatusCreating || s == store.StatusAwaitingPayment
}

// PaidOrLater reports whether money was received for the order.
func PaidOrLater(s store.OrderStatus) bool {
	switch s {
	case store.StatusPaid, store.StatusRefunding, store.StatusPartiallyRefunded, store.StatusRefunded:
		return true
	}
	return false
}
