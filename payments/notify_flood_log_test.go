package payments_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
)

// TestNotifyRefusalFloodLogsBounded: the notify route is open to the
// internet, and a refusal is decided before anything is written, so a
// flood of bogus notifications must cost the log a bounded number of
// lines, not one each: at 2,000 a second, a line of about 390 bytes each
// is 67 GB a day, a full disk from one sender. Every refusal is still
// counted in paygate_notifications_total, the first of each reason is
// logged at once (an operator still reads why WeChat Pay's notifications
// are refused), and the next line of a reason past the interval says how
// many were left out (suppressed).
func TestNotifyRefusalFloodLogsBounded(t *testing.T) {
	e := newEnv(t, envOptions{})
	pub := e.sim.Keys().PublicKeyID
	bogus := func(serial, sig string, ts time.Time) http.Header {
		h := http.Header{}
		h.Set(wechatpay.HeaderSerial, serial)
		h.Set(wechatpay.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(wechatpay.HeaderNonce, "n0nce")
		h.Set(wechatpay.HeaderSignature, sig)
		return h
	}
	randomSig := func() string {
		b := make([]byte, 256)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	kinds := []struct {
		reason string
		send   func() int
	}{
		// A serial paygate knows, a fresh timestamp and a random
		// signature: the costliest forgery, an RSA verification each.
		{"bad_signature", func() int { s, _ := e.post(bogus(pub, randomSig(), time.Now()), []byte(`{"id":"x"}`)); return s }},
		{"unknown_serial", func() int { s, _ := e.post(bogus("ABCDEF", randomSig(), time.Now()), []byte(`{}`)); return s }},
		{"stale_timestamp", func() int {
			s, _ := e.post(bogus(pub, randomSig(), time.Now().Add(-time.Hour)), []byte(`{}`))
			return s
		}},
		{"missing_headers", func() int { s, _ := e.post(http.Header{}, []byte(`{}`)); return s }},
		{"signature_probe", func() int {
			s, _ := e.post(bogus(pub, wechatpay.SignatureProbePrefix+randomSig(), time.Now()), []byte(`{}`))
			return s
		}},
		{"method", func() int {
			resp, err := http.Get(e.notify.URL + payments.NotifyPath)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}},
	}
	const each = 100
	for _, k := range kinds {
		for range each {
			if s := k.send(); s < 400 || s >= 500 {
				t.Fatalf("%s: status %d; want a 4xx refusal", k.reason, s)
			}
		}
	}
	type line struct {
		Msg        string
		Reason     string
		Suppressed int
	}
	lines := func() []line {
		var out []line
		for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
			var ln line
			if err := json.Unmarshal([]byte(l), &ln); err == nil && strings.HasPrefix(ln.Msg, "notification rejected") {
				out = append(out, ln)
			}
		}
		return out
	}
	per := map[string]int{}
	for _, ln := range lines() {
		per[ln.Reason]++
	}
	for _, k := range kinds {
		if n := e.counter("paygate_notifications_total", map[string]string{"reason": k.reason}); n != each {
			t.Errorf("%s: counted %v refusals; want %d", k.reason, n, each)
		}
		if per[k.reason] != 1 {
			t.Errorf("%s: %d log lines for %d refusals; want 1 (the first)", k.reason, per[k.reason], each)
		}
	}
	if t.Failed() {
		return
	}
	// Past the interval a refusal is logged again, saying how many were
	// left out since the last line of its reason.
	e.clock.Advance(payments.RefusalLogEvery)
	before := len(lines())
	if s := kinds[0].send(); s != http.StatusUnauthorized {
		t.Fatalf("status %d; want 401", s)
	}
	got := lines()[before:]
	if len(got) != 1 || got[0].Reason != "bad_signature" || got[0].Suppressed != each-1 {
		t.Errorf("the next refusal past the interval logged %+v; want one bad_signature line with suppressed %d", got, each-1)
	}
	if !bytes.Contains([]byte(e.logs.String()), []byte(`"remote_addr"`)) {
		t.Errorf("refusal lines lost their remote_addr")
	}
}
