package payments_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestUndecryptableNotificationNamesItsCause: a signed notification that
// cannot be decrypted is still answered 500 FAIL with an alert (SPEC 2.4:
// WeChat Pay retries while an operator acts; its word about money is never
// acknowledged unread), but the alert names the cause. An algorithm paygate
// does not support or a resource that is not well formed said "check
// payments.wechatpay.apiv3_key", sending the operator to rotate a key that
// was right.
func TestUndecryptableNotificationNamesItsCause(t *testing.T) {
	e := newEnv(t, envOptions{})
	o := e.create("oUser-decrypt-cause", 1)
	tx := e.paidTx(o)
	// resigned builds a payment notification, edits its resource and signs
	// the result as WeChat Pay would.
	resigned := func(edit func(res map[string]any)) ([]byte, map[string][]string) {
		n := e.buildPayment(tx, nil)
		var env map[string]any
		if err := json.Unmarshal(n.Body, &env); err != nil {
			t.Fatal(err)
		}
		edit(env["resource"].(map[string]any))
		body, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return body, e.sim.Sign(body, time.Now(), e.sim.Keys().PublicKeyID)
	}
	for _, tt := range []struct {
		name      string
		make      func() ([]byte, map[string][]string)
		reason    string
		wantLog   string
		keyBlamed bool
	}{
		{name: "unsupported algorithm", reason: "unsupported_algorithm", wantLog: "AEAD_SM4_GCM", make: func() ([]byte, map[string][]string) {
			return resigned(func(r map[string]any) { r["algorithm"] = "AEAD_SM4_GCM" })
		}},
		{name: "nonce of the wrong size", reason: "malformed_resource", wantLog: "nonce of 16 bytes", make: func() ([]byte, map[string][]string) {
			return resigned(func(r map[string]any) { r["nonce"] = "0123456789abcdef" })
		}},
		{name: "ciphertext not base64", reason: "malformed_resource", wantLog: "ciphertext", make: func() ([]byte, map[string][]string) {
			return resigned(func(r map[string]any) { r["ciphertext"] = "not base64!" })
		}},
		{name: "another apiv3 key", reason: "decrypt_failed", wantLog: "apiv3_key", keyBlamed: true, make: func() ([]byte, map[string][]string) {
			n := e.buildPayment(tx, func(s *wxsim.NotificationSpec) { s.APIv3Key = strings.Repeat("w", 32) })
			return n.Body, n.Header
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.logs.String())
			body, h := tt.make()
			status, resp := e.post(h, body)
			var fail struct{ Code, Message string }
			if status != 500 || json.Unmarshal([]byte(resp), &fail) != nil || fail.Code != "FAIL" {
				t.Errorf("answer: got %d %s; want 500 FAIL (WeChat Pay retries)", status, resp)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment || got.Version != o.Version {
				t.Errorf("order changed: %s v%d", got.Status, got.Version)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"reason": tt.reason}); n < 1 {
				t.Errorf("metric with reason %q: got %v; want ≥1", tt.reason, n)
			}
			log := e.logs.String()[before:]
			if !strings.Contains(log, `"alert":true`) || !strings.Contains(log, tt.wantLog) {
				t.Errorf("alert naming %q: log:\n%s", tt.wantLog, log)
			}
			if blamed := strings.Contains(log, "apiv3_key"); blamed != tt.keyBlamed {
				t.Errorf("alert blames the apiv3 key: %v; want %v; log:\n%s", blamed, tt.keyBlamed, log)
			}
		})
	}
}

// TestSignedMalformedNotificationAlerts: a notification whose signature
// verifies is WeChat Pay's word, so one paygate cannot read (not JSON, no
// id or event_type) is answered 500 FAIL with an alert, as a resource
// that is not well formed is: it was a 400 "rejected" with no alert, a
// forgery's answer, which no alert rule (outcome="error") catches while
// WeChat Pay retries it for a day.
func TestSignedMalformedNotificationAlerts(t *testing.T) {
	e := newEnv(t, envOptions{})
	o := e.create("oUser-malformed-envelope", 1)
	for _, tt := range []struct {
		name string
		body string
	}{
		{name: "not json", body: "not json"},
		{name: "no id", body: `{"create_time":"2026-01-02T03:04:05+08:00","event_type":"TRANSACTION.SUCCESS","resource_type":"encrypt-resource","resource":{}}`},
		{name: "no event type", body: `{"id":"EV-malformed-1","create_time":"2026-01-02T03:04:05+08:00","resource_type":"encrypt-resource","resource":{}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.logs.String())
			body := []byte(tt.body)
			status, resp := e.post(e.sim.Sign(body, time.Now(), e.sim.Keys().PublicKeyID), body)
			var fail struct{ Code, Message string }
			if status != 500 || json.Unmarshal([]byte(resp), &fail) != nil || fail.Code != "FAIL" || fail.Message == "" {
				t.Errorf("answer: got %d %s; want 500 FAIL (WeChat Pay retries)", status, resp)
			}
			if got := e.order(o.OrderNo); got.Status != store.StatusAwaitingPayment || got.Version != o.Version {
				t.Errorf("order changed: %s v%d", got.Status, got.Version)
			}
			if n := e.counter("paygate_notifications_total", map[string]string{"outcome": "error", "reason": "malformed"}); n < 1 {
				t.Errorf("metric outcome=error reason=malformed: got %v; want ≥1", n)
			}
			if log := e.logs.String()[before:]; !strings.Contains(log, `"alert":true`) || !strings.Contains(log, "malformed") {
				t.Errorf("no alert naming it malformed; log:\n%s", log)
			}
		})
	}
}
