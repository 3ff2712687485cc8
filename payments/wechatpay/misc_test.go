package wechatpay_test

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments/wechatpay"
)

type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return rand.Read(p) }

var _ io.Reader = randReader{}

func TestNumbers(t *testing.T) {
	tests := []struct {
		name   string
		no     string
		refund bool
		ok     bool
	}{
		{name: "shortest", no: "abc123", ok: true},
		{name: "too short", no: "abc12", ok: false},
		{name: "longest", no: "A234567890123456789012345678901_", ok: true},
		{name: "too long", no: "A2345678901234567890123456789012X", ok: false},
		{name: "all allowed symbols", no: "a_b-c|d*e", ok: true},
		{name: "at sign not in trade numbers", no: "abc@123", ok: false},
		{name: "space", no: "abc 123", ok: false},
		{name: "unicode", no: "订单号123456", ok: false},
		{name: "refund with at", no: "r@1", refund: true, ok: true},
		{name: "refund empty", no: "", refund: true, ok: false},
		{name: "refund 64", no: "r123456789012345678901234567890123456789012345678901234567890123", refund: true, ok: true},
		{name: "refund 65", no: "r1234567890123456789012345678901234567890123456789012345678901234", refund: true, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.refund {
				err = wechatpay.ValidOutRefundNo(tt.no)
			} else {
				err = wechatpay.ValidOutTradeNo(tt.no)
			}
			if (err == nil) != tt.ok {
				t.Errorf("valid(%q): got err %v; want ok=%v", tt.no, err, tt.ok)
			}
		})
	}
}

func TestHostRewriter(t *testing.T) {
	var gotPath, gotQuery, gotHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotQuery, gotHost = r.URL.Path, r.URL.RawQuery, r.Host
		w.WriteHeader(204)
	}))
	defer srv.Close()
	rt, err := wechatpay.NewHostRewriter(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, wechatpay.DefaultAPIBase+"/v3/pay/transactions/out-trade-no/PG123456?mchid=19", nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gotPath != "/v3/pay/transactions/out-trade-no/PG123456" || gotQuery != "mchid=19" {
		t.Errorf("got %s?%s; want the path and query kept", gotPath, gotQuery)
	}
	if gotHost != srv.Listener.Addr().String() {
		t.Errorf("host: got %q; want %q", gotHost, srv.Listener.Addr().String())
	}
	if req.URL.Host != "api.mch.weixin.qq.com" {
		t.Errorf("caller's request was modified: host %q", req.URL.Host)
	}
	for _, bad := range []string{"ftp://x", "https://host/path", "https://host?q=1", "://",
		"https://ops:hunter2@host", "ftp://ops:hunter2@host", "https://ops:hunter2@host:port", "https://ops:hunter2@host/v3"} {
		_, err := wechatpay.NewHostRewriter(bad, nil)
		if err == nil {
			t.Errorf("api_base %q: got nil error; want a config error", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("api_base %q: the error prints the password: %v", bad, err)
		}
	}
}
