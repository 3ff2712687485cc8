package payments_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
)

// TestSweepFailureWarnPaced: this host's clock is off, so WeChat Pay
// answers every query SIGN_ERROR and the sweep reconciles none of its
// pending orders. The sweep's warning of an order not reconciled is
// written for the first at once, its repeats of the same kind of failure
// within a minute left out (the sweep's own line counts the errors), and
// the next one past the minute says how many were. It was one warning per
// pending order per pass, beside the client's ALERT: 1,000 pending orders
// wrote 1,000 identical warnings a pass.
func TestSweepFailureWarnPaced(t *testing.T) {
	ctx := context.Background()
	var skew atomic.Int64
	e := newEnv(t, envOptions{notifyTo: "sink", sim: wxsim.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}})
	for i := range 3 {
		e.create(fmt.Sprintf("oUser-sweep-warn-%d", i), 1)
	}
	e.clock.Advance(10 * time.Second)
	skew.Store(int64(10 * time.Minute))
	warnings := func(from int) []map[string]any {
		return logRecords(e.logs.String()[from:], "sweep: order not reconciled")
	}
	st, err := e.svc.Sweep(ctx)
	if err != nil || st.Errors != 3 {
		t.Fatalf("sweep under SIGN_ERROR: %+v, %v; want 3 errors", st, err)
	}
	if w := warnings(0); len(w) != 1 {
		t.Errorf("%d warnings for 3 orders not reconciled; want 1: %v", len(w), w)
	}
	logged := len(e.logs.String())
	e.clock.Advance(time.Minute)
	if st, err := e.svc.Sweep(ctx); err != nil || st.Errors != 3 {
		t.Fatalf("second sweep: %+v, %v; want 3 errors", st, err)
	}
	w := warnings(logged)
	if len(w) != 1 || w[0]["suppressed"] != float64(2) {
		t.Errorf("second pass's warnings %v; want 1, saying 2 were left out", w)
	}
}

// TestSweepFailureWarnNewCodeAtOnce: WeChat Pay answers the query of a
// `creating` order FREQUENCY_LIMITED through its retries, then that of an
// order awaiting payment SYSTEM_ERROR through its retries, in one pass.
// Each is the first of its code, and its warning of an order not
// reconciled is written at once. Both are "unavailable" to the pacing by
// kind, so the rate limit that ends a pass (and has its own warning) left
// out the first SYSTEM_ERROR of the minute: 1 warning for 2 codes.
func TestSweepFailureWarnNewCodeAtOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{notifyTo: "sink"})
	awaiting := e.create("oUser-sweep-warn-code-awaiting", 1)
	creating := e.creatingOrder(payments.NewOrderNo(time.Now()), "oUser-sweep-warn-code-creating", time.Minute)
	e.clock.Advance(payments.DefaultActiveQueryAfter + time.Second)
	e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultFrequencyLimited, Times: 3})
	e.sim.InjectFault(wxsim.Fault{Op: "query", Kind: wxsim.FaultSystemError, Times: 3})
	st, err := e.svc.Sweep(ctx)
	if err != nil || st.Errors != 2 {
		t.Fatalf("sweep: %+v, %v; want 2 errors", st, err)
	}
	warned := map[string]bool{}
	for _, rec := range logRecords(e.logs.String(), "sweep: order not reconciled") {
		no, _ := rec["order_no"].(string)
		warned[no] = true
	}
	if !warned[creating.OrderNo] || !warned[awaiting.OrderNo] {
		t.Errorf("warnings of orders not reconciled: %v; want one for the FREQUENCY_LIMITED %s and one for the SYSTEM_ERROR %s", warned, creating.OrderNo, awaiting.OrderNo)
	}
}
