package wechatpay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// bodyRecorder is a transport that keeps every request body it carries.
type bodyRecorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (b *bodyRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		raw, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		b.bodies = append(b.bodies, raw)
		b.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(raw))
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (b *bodyRecorder) all() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.bodies...)
}

// TestPrepayTimeExpireInBeijingTime: time_expire goes to WeChat Pay in the
// form its documents give (yyyy-MM-DDTHH:mm:ss+08:00), whatever zone the
// order's deadline was read in. The SDK formats the time in its own zone,
// so an order whose deadline came back from the store in UTC (every host
// and container on UTC) was sent "...Z", and the same order's prepay
// repeated from a record in another zone sent another text for the same
// deadline under the same out_trade_no.
func TestPrepayTimeExpireInBeijingTime(t *testing.T) {
	rec := &bodyRecorder{}
	r := newRig(t, wxsim.Options{}, "", func(c *wechatpay.Config) { c.Transport = rec })
	ctx := context.Background()
	deadline := time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	for i, at := range []time.Time{deadline, deadline.In(time.FixedZone("PST", -8*3600))} {
		for _, m := range []wechatpay.PayMethod{wechatpay.MethodJSAPI, wechatpay.MethodNative} {
			no := "PGexpire" + string(m) + string(rune('0'+i))
			if _, err := r.client.Prepay(ctx, wechatpay.PrepayRequest{
				Method: m, OutTradeNo: no, Description: "d", Total: 1, PayerOpenID: "o1", ExpireAt: at,
			}); err != nil {
				t.Fatalf("%s: %v", no, err)
			}
		}
	}
	n := 0
	for _, raw := range rec.all() {
		var b struct {
			OutTradeNo string `json:"out_trade_no"`
			TimeExpire string `json:"time_expire"`
		}
		if err := json.Unmarshal(raw, &b); err != nil || b.OutTradeNo == "" {
			continue
		}
		n++
		if want := "2030-01-02T11:04:05+08:00"; b.TimeExpire != want {
			t.Errorf("%s: time_expire %q; want %q", b.OutTradeNo, b.TimeExpire, want)
		}
	}
	if n != 4 {
		t.Fatalf("prepay bodies seen: %d; want 4", n)
	}
}
