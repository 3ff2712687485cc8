package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy"
)

// simPayHandler is POST /admin/api/simulator/orders/{order_no}/pay, served
// with payments.backend simulator only: the simulated user pays the order,
// and the simulator sends paygate the signed, encrypted notification WeChat
// Pay would. With payments.simulator.pay_after 0 (the default) it is how an
// order made on the defaults gets paid outside `paygate demo`. The answer
// says whether paygate acknowledged the notification.
func (a *app) simPayHandler() http.Handler {
	return simAction("order_no", "order", a.sim.Pay, wxsim.ErrUnknownOrder, wxsim.ErrNotPayable,
		"is unknown to the simulator: not prepaid, or prepaid before this process started (the simulator keeps its orders in memory)")
}

// simRefundHandler is POST
// /admin/api/simulator/refunds/{out_refund_no}/complete, served with
// payments.backend simulator only: a refund the simulator holds as
// PROCESSING succeeds, and the simulator sends its REFUND.SUCCESS
// notification. With payments.simulator.refund_after 0 (the default) it is
// how a confirmed refund completes outside `paygate demo`; the refund's
// out_refund_no is in GET /admin/api/refunds.
func (a *app) simRefundHandler() http.Handler {
	return simAction("out_refund_no", "refund", a.sim.CompleteRefund, wxsim.ErrUnknownRefund, wxsim.ErrNotProcessing,
		"is unknown to the simulator: not asked for, or asked for before this process started (the simulator keeps its refunds in memory)")
}

// simAction serves one simulator step on the number (of a noun) in path
// parameter param: 400 for a query parameter (it takes none), 404 when the simulator does not know it (unknown, with why), 409
// when it is not in the state the step needs (conflict), else what the
// notification the step sent did.
func simAction(param, noun string, do func(context.Context, string) (*wxsim.Delivery, error), unknown, conflict error, why string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A step takes no query parameter: a ?dry_run=1 paid the order
		// for real, and the merchant was told order.paid.
		if !proxy.AdminQuery(w, r) {
			return
		}
		no := r.PathValue(param)
		d, err := do(r.Context(), no)
		switch {
		case errors.Is(err, unknown):
			simError(w, http.StatusNotFound, noun+" "+no+" "+why)
		case errors.Is(err, conflict):
			simError(w, http.StatusConflict, err.Error())
		case err != nil:
			simError(w, http.StatusInternalServerError, err.Error())
		default:
			simDelivered(w, param, no, d)
		}
	})
}

// simDelivered answers what the simulator's notification d did.
func simDelivered(w http.ResponseWriter, key, no string, d *wxsim.Delivery) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		key: no,
		"notification": map[string]any{
			"id": d.ID, "acked": d.Acked, "attempts": d.Attempts, "status": d.LastStatus, "error": d.Err,
		},
	})
}

// simError answers in the admin API's error format.
func simError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
