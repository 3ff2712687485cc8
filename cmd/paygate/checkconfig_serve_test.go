package main

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// checkConfigCase is a config serve refuses to start with: check-config
// (config.Parse) must refuse it first, at the file:line of the key.
type checkConfigCase struct {
	name string
	body string // YAML added to a config that starts as it is
	key  string // the key path the error must name
}

// refusedByServe lists configs that serve cannot start with.
var refusedByServe = []checkConfigCase{
	{"notify_listen off", `server: {listen: "127.0.0.1:0", admin_listen: "off", notify_listen: "off"}`, "server.notify_listen"},
	{"admin on the main address", `server: {listen: "127.0.0.1:18931", admin_listen: "127.0.0.1:18931"}`, "server.admin_listen"},
	{"admin on every interface at the main port", `server: {listen: "127.0.0.1:18931", admin_listen: ":18931"}`, "server.admin_listen"},
	{"notify on the admin address", `server: {listen: "127.0.0.1:0", admin_listen: "localhost:18932", notify_listen: "127.0.0.1:18932"}`, "server.notify_listen"},
	{"port out of range", `server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:99999"}`, "server.admin_listen"},
	{"port not a number", `server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:http-admin"}`, "server.admin_listen"},
	{"catalog price with a leading zero", `payments: {catalog: [{sku: a, name: A, price: "049.99"}]}`, "payments.catalog[0].price"},
	{"catalog price 49.990", `payments: {catalog: [{sku: a, name: A, price: "49.990"}]}`, "payments.catalog[0].price"},
	{"catalog price x max_quantity too big", `payments: {catalog: [{sku: a, name: A, price: "99999999999.00", max_quantity: 1000}]}`, "payments.catalog[0].max_quantity"},
	{"missing merchant key file", `payments:
  backend: wechatpay
  wechatpay: {mch_id: "1900000001", app_id: wx1, mch_cert_serial: S, mch_private_key_file: /nonexistent/key.pem,
    apiv3_key: "0123456789abcdef0123456789abcdef", public_key_id: P, public_key_file: /nonexistent/pub.pem,
    notify_url: "https://pay.example.com/n"}`, "payments.wechatpay.mch_private_key_file"},
}

// TestCheckConfigRefusesWhatServeRefuses: what check-config accepts, serve
// starts with. Each config here makes serve fail (its error has no
// file:line); check-config must refuse it with "file:line: key: ...".
func TestCheckConfigRefusesWhatServeRefuses(t *testing.T) {
	for _, tc := range refusedByServe {
		t.Run(tc.name, func(t *testing.T) {
			src := "store: {path: \"" + filepath.Join(t.TempDir(), "p.db") + "\"}\n" + tc.body + "\n"
			if !strings.Contains(tc.body, "listen:") {
				src += "server: {listen: \"127.0.0.1:0\", admin_listen: \"127.0.0.1:0\"}\n"
			}
			cfg, err := config.Parse([]byte(src), "x.yaml", func(string) (string, bool) { return "", false })
			if err == nil {
				t.Errorf("check-config accepts it; serve says: %v", serveOnce(t, cfg))
				return
			}
			want := regexp.MustCompile(`^x\.yaml:\d+: ` + regexp.QuoteMeta(tc.key) + `: `)
			if first, _, _ := strings.Cut(err.Error(), "\n"); !want.MatchString(first) {
				t.Errorf("got %q; want it to start with x.yaml:LINE: %s:", err, tc.key)
			}
		})
	}
}

// serveOnce starts serve with cfg and stops it once ready; it returns
// serve's error when it does not start.
func serveOnce(t *testing.T, cfg *config.Config) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, ready) }()
	select {
	case <-ready:
		cancel()
		<-done
		return nil
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("serve neither ready nor failed")
		return nil
	}
}
