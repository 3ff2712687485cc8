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
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"order_no": no,
			"notification": map[string]any{
				"id": d.ID, "acked": d.Acked, "attempts": d.Attempts, "status": d.LastStatus, "error": d.Err,
			},
		})
	})
}

// simError answers in the admin API's error format.
func simError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
