package payments_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// logRecords returns the JSON lines of logs whose msg is msg.
func logRecords(logs, msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestSweepCountsTheRefundsItChanges: a refund whose confirmation got no
// answer (SYSTEM_ERROR through its retries) is late, and WeChat Pay,
// restarted, knows neither it nor its order: the sweep's resend is
// refused (RESOURCE_NOT_EXISTS) and the order goes to needs_review (the
// first send's outcome is unknown: resendRefused). The pass changed that
// order, and its stats and its line ("sweep") say so once, with no error:
// the order was reconciled. They said changed 0 and
// errors 1. A resend WeChat Pay takes leaves the order refunding: checked,
// not changed.
func TestSweepCountsTheRefundsItChanges(t *testing.T) {
	for _, tt := range []struct {
		name   string
		forgot bool // WeChat Pay no longer knows the order
		want   store.OrderStatus
		stats  payments.SweepStats
	}{
		{"resend refused, order in review", true, store.StatusNeedsReview, payments.SweepStats{Checked: 1, Changed: 1}},
		{"resend taken, order refunding", false, store.StatusRefunding, payments.SweepStats{Checked: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{storeClock: true})
			o := paidOrder(t, e, "oUser-sweep-changed-refund", 1)
			p := propose(t, e, o, 0)
			e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultSystemError, Times: 3})
			if res, err := e.svc.ConfirmRefund(ctx, "shop-bot", o.User, p.RefundID); err != nil || res.Status != payments.RefundPending {
				t.Fatalf("confirm: %v, %v; want pending", resStatus(res), err)
			}
			e.clock.Advance(2 * time.Minute) // past refundQueryAfter and recordedGrace
			if tt.forgot {
				e.sim.InjectFault(wxsim.Fault{Op: "refund", Kind: wxsim.FaultNotExist})
			}
			st := payments.SweepLogged(ctx, e.svc)
			if got := e.order(o.OrderNo); got.Status != tt.want {
				t.Fatalf("order after the sweep: %s; want %s", got.Status, tt.want)
			}
			if st != tt.stats {
				t.Errorf("sweep stats %+v; want %+v", st, tt.stats)
			}
			lines := logRecords(e.logs.String(), "sweep")
			if len(lines) != 1 {
				t.Fatalf("%d sweep lines; want 1: %v", len(lines), lines)
			}
			l := lines[0]
			if l["checked"] != float64(tt.stats.Checked) || l["changed"] != float64(tt.stats.Changed) || l["errors"] != float64(tt.stats.Errors) {
				t.Errorf("sweep line checked %v changed %v errors %v; want %+v", l["checked"], l["changed"], l["errors"], tt.stats)
			}
		})
	}
}

// TestSweepCountsAnOrderOnce: a `creating` order a crash left is prepaid
// by the sweep, which moves it to awaiting_payment. The walk of
// awaiting_payment in the same pass listed it again and queried WeChat
// Pay about it at once: the pass's stats and line said 2 checked for one
// order, and WeChat Pay was asked twice. It is checked once, and queried
// by the next pass.
func TestSweepCountsAnOrderOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{notifyTo: "sink"})
	o := e.creatingOrder(payments.NewOrderNo(time.Now()), "oUser-sweep-once", time.Minute)
	queries := asked(e, "query")
	st := payments.SweepLogged(ctx, e.svc)
	if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment {
		t.Fatalf("order after the sweep: %s; want awaiting_payment", got.Status)
	}
	want := payments.SweepStats{Checked: 1, Changed: 1}
	if st != want {
		t.Errorf("sweep stats %+v; want %+v", st, want)
	}
	if lines := logRecords(e.logs.String(), "sweep"); len(lines) != 1 || lines[0]["checked"] != float64(1) || lines[0]["changed"] != float64(1) {
		t.Errorf("sweep lines %v; want one, 1 checked, 1 changed", lines)
	}
	if n := timesEach(queries())[o.OrderNo]; n > 1 {
		t.Errorf("the pass queried the order %d times; want at most once", n)
	}
}
