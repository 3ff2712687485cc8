package payments_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
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

// TestNotifyRefusalLogIsBounded: the notify route is open to the internet
// and every refusal is logged, so a refused notification's log line must
// not grow with what the sender put in its headers. A 500 KB
// Wechatpay-Serial (or timestamp, or signature type, or method) still
// gets its refusal and its log line, which quotes the value's beginning
// and its length: the line stays under 2 KB where it was 5.6 MB (the value
// twice, JSON-escaped), ten times the bytes the sender spent. Each case
// comes past the interval in which a reason's refusals are logged once
// (two are refused for their method).
func TestNotifyRefusalLogIsBounded(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := []byte(`{"id":"x"}`)
	long := strings.Repeat("\xff", 500<<10)
	for _, tc := range []struct {
		name, header, method, reason string
		status                       int
	}{
		{"serial", "Wechatpay-Serial", http.MethodPost, "unknown_serial", http.StatusUnauthorized},
		{"timestamp", "Wechatpay-Timestamp", http.MethodPost, "stale_timestamp", http.StatusUnauthorized},
		{"signature type", "Wechatpay-Signature-Type", http.MethodPost, "bad_signature", http.StatusUnauthorized},
		{"method", "", strings.Repeat("X", 500<<10), "method", http.StatusMethodNotAllowed},
		{"serial, method refused", "Wechatpay-Serial", http.MethodPut, "method", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Advance(payments.RefusalLogEvery)
			h := e.sim.Sign(body, time.Now(), e.sim.Keys().PublicKeyID)
			if tc.header != "" {
				h.Set(tc.header, long)
			}
			before := len(e.logs.String())
			req, err := http.NewRequest(tc.method, e.notify.URL+payments.NotifyPath, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = h
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			logged := e.logs.String()[before:]
			if resp.StatusCode != tc.status {
				t.Errorf("status %d; want %d", resp.StatusCode, tc.status)
			}
			if !strings.Contains(logged, `"reason":"`+tc.reason+`"`) {
				t.Errorf("no log line gives the reason %s: %.500s", tc.reason, logged)
			}
			if len(logged) > 2<<10 {
				t.Errorf("the refusal logged %d bytes for a %d-byte header; want under 2 KiB", len(logged), len(long))
			}
		})
	}
}

// TestNotifyDeclaredOversizedBodyIsRefusedAtOnce: a notification whose
// Content-Length already says it is above the limit is refused with 413
// FAIL (reason too_large) before a byte of it is read, as the bots' API
// refuses one, whatever the declared size. Read first, a sender that
// declared 1 MiB and sent one byte held its connection until the read
// deadline and was then told 400 "cannot read body", which says nothing of
// the size. Refused unread but on a keep-alive connection, one that
// declared less than net/http's 256 KiB post-handler drain (64 KiB and a
// byte) was held all the same: the server reads what the handler left of a
// small body before it answers, so the 413 waited for the deadline, as a
// refusal of the method with a small stalled body did. The read deadline
// here is an hour, so being held shows as no answer.
func TestNotifyDeclaredOversizedBodyIsRefusedAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{service: func(o *payments.Options) {
		o.NotifyReadTimeout = time.Hour
	}})
	for _, tc := range []struct {
		method string
		size   int
		status int
		reason string
	}{
		{http.MethodPost, 64<<10 + 1, http.StatusRequestEntityTooLarge, "too_large"},
		{http.MethodPost, 200 << 10, http.StatusRequestEntityTooLarge, "too_large"},
		{http.MethodPost, 1 << 20, http.StatusRequestEntityTooLarge, "too_large"},
		{http.MethodPut, 1000, http.StatusMethodNotAllowed, "method"},
	} {
		t.Run(tc.method+" "+strconv.Itoa(tc.size), func(t *testing.T) {
			labels := map[string]string{"outcome": "rejected", "reason": tc.reason}
			before := e.counter("paygate_notifications_total", labels)
			c, err := net.Dial("tcp", e.notify.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.method+" "+payments.NotifyPath+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+
				strconv.Itoa(tc.size)+"\r\n\r\n{"); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound on a hang, not a timing
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a notification that declared %d bytes: %v", tc.size, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var fail struct{ Code, Message string }
			if resp.StatusCode != tc.status || json.Unmarshal(b, &fail) != nil || fail.Code != "FAIL" || fail.Message == "" {
				t.Errorf("answer %d %s; want %d {\"code\":\"FAIL\",\"message\":…}", resp.StatusCode, b, tc.status)
			}
			if n := e.counter("paygate_notifications_total", labels); n != before+1 {
				t.Errorf("metric with reason %s: got %v; want %v", tc.reason, n, before+1)
			}
		})
	}
}
