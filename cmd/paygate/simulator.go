package main

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/paygate/paygate/payments/wxsim"
)

// simPayHandler is POST /admin/api/simulator/orders/{order_no}/pay, served
// with payments.backend simulator only: the simulated user pays the order,
// and the simulator sends paygate the signed, encrypted notification WeChat
// Pay would. With payments.simulator.pay_after 0 (the default) it is how an
// order made on the defaults gets paid outside `paygate demo`. The answer
// says whether paygate acknowledged the notification.
func (a *app) simPayHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		no := r.PathValue("order_no")
		d, err := a.sim.Pay(r.Context(), no)
		switch {
		case errors.Is(err, wxsim.ErrUnknownOrder):
			simError(w, http.StatusNotFound, "order "+no+" is unknown to the simulator: not prepaid, or prepaid before this process started (the simulator keeps its orders in memory)")
			return
		case errors.Is(err, wxsim.ErrNotPayable):
			simError(w, http.StatusConflict, err.Error())
			return
		case err != nil:
			simError(w, http.StatusInternalServerError, err.Error())
			return
		}
		simDelivered(w, "order_no", no, d)
	})
}

// simRefundHandler is POST
// /admin/api/simulator/refunds/{out_refund_no}/complete, served with
// payments.backend simulator only: a refund the simulator holds as
// PROCESSING succeeds, and the simulator sends its REFUND.SUCCESS
// notification. With payments.simulator.refund_after 0 (the default) it is
// how a confirmed refund completes outside `paygate demo`; the refund's
// out_refund_no is in GET /admin/api/refunds.
func (a *app) simRefundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		no := r.PathValue("out_refund_no")
		d, err := a.sim.CompleteRefund(r.Context(), no)
		switch {
		case errors.Is(err, wxsim.ErrUnknownRefund):
			simError(w, http.StatusNotFound, "refund "+no+" is unknown to the simulator: not asked for, or asked for before this process started (the simulator keeps its refunds in memory)")
			return
		case errors.Is(err, wxsim.ErrNotProcessing):
			simError(w, http.StatusConflict, err.Error())
			return
		case err != nil:
			simError(w, http.StatusInternalServerError, err.Error())
			return
		}
		simDelivered(w, "out_refund_no", no, d)
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
