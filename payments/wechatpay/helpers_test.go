package wechatpay_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
)

// Key generation takes a while; one set serves the whole test binary.
var testKeys = sync.OnceValues(wxsim.GenerateKeys)

type rig struct {
	sim    *wxsim.Server
	api    *httptest.Server
	client *wechatpay.Client
	cfg    wechatpay.Config
}

// faultAttemptTimeout is the attempt timeout of tests that make an attempt
// time out (wxsim.FaultTimeout): shorter than the rig's 2s, to keep them
// fast, yet long enough that every other attempt (signed and verified
// under -race) ends within it on a loaded CI machine, where 300ms was too
// little: a spurious timeout is one more request than the test counts.
const faultAttemptTimeout = time.Second

// newRig starts a simulator over real HTTP and a client driving it. edit may
// change the client config before construction.
func newRig(t *testing.T, opts wxsim.Options, notifyURL string, edit func(*wechatpay.Config)) *rig {
	t.Helper()
	keys, err := testKeys()
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	opts.Keys = keys
	sim, err := wxsim.New(opts)
	if err != nil {
		t.Fatalf("wxsim.New: %v", err)
	}
	api := httptest.NewServer(sim)
	t.Cleanup(func() {
		api.Close()
		_ = sim.Close()
	})
	if notifyURL == "" {
		ack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		t.Cleanup(ack.Close)
		notifyURL = ack.URL + "/wechatpay/notify"
	}
	cfg := sim.ClientConfig(api.URL, notifyURL)
	cfg.AttemptTimeout = 2 * time.Second
	cfg.RetryBackoff = 10 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	c, err := wechatpay.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("wechatpay.New: %v", err)
	}
	return &rig{sim: sim, api: api, client: c, cfg: cfg}
}

func newSink(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

type x509Cert = x509.Certificate

func mustKeys(t *testing.T) *wxsim.Keys {
	t.Helper()
	k, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
