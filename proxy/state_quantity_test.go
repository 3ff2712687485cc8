package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestStateMessageNamesTheQuantityOnce: an order of two carries its
// quantity in its description already ("Premium tier, 1 year x2", what
// WeChat Pay shows the payer), and the state line added its own "×2": the
// model read "Premium tier, 1 year x2 ×2, 998.00 CNY", which says four
// as readily as two, and could tell the user they had bought four years.
// The line names the quantity once, as it does for an order of one.
func TestStateMessageNamesTheQuantityOnce(t *testing.T) {
	now := time.Now()
	orders := []*store.Order{
		{OrderNo: "PG1", Description: "Premium tier, 1 year x2", Quantity: 2, AmountFen: 99800, Currency: "CNY",
			Status: store.StatusAwaitingPayment, CreatedAt: now, UpdatedAt: now},
		{OrderNo: "PG2", Description: "Premium tier, 1 month", Quantity: 1, AmountFen: 4999, Currency: "CNY",
			Status: store.StatusAwaitingPayment, CreatedAt: now, UpdatedAt: now},
		// A name that itself ends in what looks like a count keeps it.
		{OrderNo: "PG3", Description: "Pack x3", Quantity: 1, AmountFen: 100, Currency: "CNY",
			Status: store.StatusAwaitingPayment, CreatedAt: now, UpdatedAt: now},
	}
	msg := stateMessage(orders, now, time.Hour, nil)
	for _, want := range []string{
		"- order PG1: Premium tier, 1 year ×2, 998.00 CNY — awaiting payment",
		"- order PG2: Premium tier, 1 month ×1, 49.99 CNY — awaiting payment",
		"- order PG3: Pack x3 ×1, 1.00 CNY — awaiting payment",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("state message\n%s\nhas no line %q", msg, want)
		}
	}
}
