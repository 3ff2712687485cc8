package payments_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestNotifyOversizedBodyIsRefusedAndSaysWhy: a notification body above the
// limit (real ones are about 1 KiB) is answered 413 FAIL and changes
// nothing; as for every other refusal, a metric and a log line say why, so
// an operator whose ingress grows WeChat Pay's bodies (or who is probed)
// can tell from the log why notifications are refused.
func TestNotifyOversizedBodyIsRefusedAndSaysWhy(t *testing.T) {
	e := newEnv(t, envOptions{})
	o := e.create("oUser-oversized", 1)
	body := []byte(`{"id":"x","pad":"` + strings.Repeat("a", 64<<10) + `"}`)
	h := e.sim.Sign(body, time.Now(), e.sim.Keys().PublicKeyID)
	status, resp := e.post(h, body)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("status: got %d; want 413", status)
	}
	var fail struct{ Code, Message string }
	if err := json.Unmarshal([]byte(resp), &fail); err != nil || fail.Code != "FAIL" || fail.Message == "" {
		t.Errorf("body: got %q; want {\"code\":\"FAIL\",\"message\":…}", resp)
	}
	if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment || got.Version != o.Version {
		t.Errorf("order changed: %s v%d", got.Status, got.Version)
	}
	if n := e.counter("paygate_notifications_total", map[string]string{"outcome": "rejected", "reason": "too_large"}); n != 1 {
		t.Errorf("metric with reason too_large: got %v; want 1", n)
	}
	var logged bool
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["reason"] == "too_large" {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no log line says the notification was refused as too large; log:\n%s", e.logs.String())
	}
}
