package accounting

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// takeFailsStore is a memStore whose TakeTally fails, as a store that
// stopped answering as a payment was counted.
type takeFailsStore struct{ *memStore }

func (takeFailsStore) TakeTally(context.Context, string) (int64, error) {
	return 0, errors.New("store unavailable")
}

// TestPaidOrderLinesNameTheOrder: the writer counts a paid order after
// the notification or sweep that paid it has moved on, so its lines carry
// no request; each names the order it concerns (order_no), or the
// operator cannot tell which transaction went without its conversation's
// cost.
func TestPaidOrderLinesNameTheOrder(t *testing.T) {
	var logs syncBuffer
	l := testLedgerOn(t, takeFailsStore{&memStore{m: map[string]int64{}}}, prometheus.NewRegistry(), &logs)
	a := l.Round(context.Background(), "p", "m", Usage{1000, 200, 0, 0})
	l.Turn(context.Background(), "bot", "u", "s", a)
	l.Paid(context.Background(), "bot", "u", "s", "ORD-LOG-1", time.Time{})
	l.Flush()
	found := false
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(line, "taking the conversation's cost") {
			continue
		}
		found = true
		if !strings.Contains(line, "order_no=ORD-LOG-1") {
			t.Errorf("the line does not name the paid order: %s", line)
		}
	}
	if !found {
		t.Fatalf("no line about the cost not taken: %s", logs.String())
	}
	l.Close()
}
