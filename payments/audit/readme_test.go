package audit

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// emittableActions is every action name the audit can record: actionName of
// every transition the state machine (payments.CanTransition) allows, of
// every creation and of a change of fields only, with each cause that
// steers it and with and without money refunded; and ProposalEvent's name of
// every proposal step; and an erasure's, and a webhook resend's.
func emittableActions(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	order := func(st store.OrderStatus, refunded int64) store.Order {
		return store.Order{OrderNo: "PG1", Status: st, AmountFen: 100, RefundedFen: refunded}
	}
	name := func(before, after store.Order, cause string) {
		seen[TransitionAction(payments.Transition{Before: before, After: after, Cause: cause}).Name] = true
	}
	causes := []string{"", "orphan", payments.CauseRefundAborted}
	for _, to := range store.Statuses() {
		for _, cause := range causes {
			name(store.Order{}, order(to, 0), cause) // a creation
			name(order(to, 0), order(to, 0), cause)  // fields only
			for _, from := range store.Statuses() {
				if from == to || !payments.CanTransition(from, to) {
					continue
				}
				name(order(from, 0), order(to, 0), cause)
				name(order(from, 0), order(to, 50), cause) // money went back
			}
		}
	}
	event := func(ev store.Event, err error) {
		if err != nil {
			t.Fatal(err)
		}
		p, err := decodePayload(ev.Payload)
		if err != nil {
			t.Fatal(err)
		}
		seen[p.Action.Name] = true
	}
	for _, step := range []payments.ProposalStep{payments.ProposalMade, payments.ProposalCancelled, payments.ProposalConfirmed} {
		event(ProposalEvent(context.Background(), step, store.RefundProposal{RefundID: "rf_1", OrderNo: "PG1"}))
	}
	event(ErasureEvent(context.Background(), "shop", "oUser", 1, time.Now()))
	event(ResendEvents(context.Background(), &store.Order{OrderNo: "PG1", Status: store.StatusPaid}, nil, false)[0], nil)
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// readmeActions is the action names the README's list of audit actions
// names: the paragraph from "Each audit record's `action` says what
// happened" to the end of its bullet.
func readmeActions(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const intro = "Each audit record's `action` says what happened:"
	s := string(b)
	i := strings.Index(s, intro)
	if i < 0 {
		t.Fatalf("README has no %q", intro)
	}
	s = s[i:]
	if end := strings.Index(s, "\n- "); end >= 0 {
		s = s[:end]
	}
	var out []string
	for _, m := range regexp.MustCompile("`((?:order|payment|refund|audit|webhook)\\.[a-z_]+)`").FindAllStringSubmatch(s, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// TestREADMEListsEveryAuditAction: the README's list of audit actions names
// every action the code can record, and none it cannot, so an operator
// reading a chain finds each record's action explained.
func TestREADMEListsEveryAuditAction(t *testing.T) {
	code, readme := emittableActions(t), readmeActions(t)
	for _, n := range code {
		if !slices.Contains(readme, n) {
			t.Errorf("the audit records %s, which the README's list of actions does not name", n)
		}
	}
	for _, n := range readme {
		if !slices.Contains(code, n) {
			t.Errorf("the README's list of actions names %s, which the audit never records", n)
		}
	}
	if t.Failed() {
		t.Logf("the code records: %v", code)
	}
}
