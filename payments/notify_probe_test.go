package payments_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/store"
)

// TestNotifySignatureProbeIsNamed: WeChat Pay sends merchants signature
// probes, notifications whose Wechatpay-Signature starts with
// "WECHATPAY/SIGNTEST/", to check that they verify signatures: the probe
// must be refused (4xx FAIL, nothing changed), as paygate does. It was
// counted and logged as a bad signature (a warning, reason bad_signature),
// the operator's sign of forgeries or a changed WeChat Pay key, so WeChat
// Pay's own routine probes looked like an attack. It is refused the same
// way, under its own reason (signature_probe), logged at info.
func TestNotifySignatureProbeIsNamed(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			o := e.create("oUser-probe", 1)
			n := e.buildPayment(e.paidTx(o), nil)
			n.Header.Set("Wechatpay-Signature", "WECHATPAY/SIGNTEST/"+base64.StdEncoding.EncodeToString([]byte(strings.Repeat("p", 256))))
			status, body := e.post(n.Header, n.Body)
			var fail struct{ Code, Message string }
			if status != http.StatusUnauthorized || json.Unmarshal([]byte(body), &fail) != nil || fail.Code != "FAIL" {
				t.Errorf("probe: got %d %q; want 401 FAIL", status, body)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment || got.Version != o.Version {
				t.Errorf("probe changed the order: %s v%d", got.Status, got.Version)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"outcome": "rejected", "reason": "signature_probe"}); n != 1 {
				t.Errorf("rejected/signature_probe: got %v; want 1", n)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"reason": "bad_signature"}); n != 0 {
				t.Errorf("bad_signature: got %v; want 0 (a probe is not a forgery)", n)
			}
			var line map[string]any
			for _, l := range strings.Split(e.logs.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(l), &rec) == nil && rec["reason"] == "signature_probe" {
					line = rec
				}
			}
			if line == nil || line["level"] != "INFO" {
				t.Errorf("log line of the probe: %v; want one at INFO naming reason signature_probe", line)
			}
		})
	}
}
