package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
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

// TestCheckConfigRefusesAPIBaseServeRefuses: as above, for
// payments.wechatpay.api_base, which serve reads only with the wechatpay
// backend (wechatpay.NewHostRewriter: scheme://host[:port], http or
// https). check-config took anything with a host; serve's refusal had no
// file:line and printed the value, a userinfo's password included.
func TestCheckConfigRefusesAPIBaseServeRefuses(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	writeFile(t, pubFile, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	for _, base := range []string{
		"https://api.mch.weixin.qq.com/v3",
		"ftp://api.mch.weixin.qq.com",
		"https://ops:hunter2@api.mch.weixin.qq.com",
		"https://api.mch.weixin.qq.com?x=1",
	} {
		t.Run(base, func(t *testing.T) {
			src := `server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
store: {path: "` + filepath.Join(t.TempDir(), "p.db") + `"}
payments:
  backend: wechatpay
  wechatpay:
    api_base: "` + base + `"
    mch_id: "1900000001"
    app_id: wxd678efh567hg6787
    mch_cert_serial: 5157F09EFDC096DE15EBE81A47057A7232F1B8E1
    mch_private_key_file: ` + keyFile + `
    apiv3_key: "0123456789abcdef0123456789abcdef"
    public_key_id: PUB_KEY_ID_0114232134912410000000000000
    public_key_file: ` + pubFile + `
    notify_url: https://pay.example.com/wechatpay/notify
`
			cfg, err := config.Parse([]byte(src), "x.yaml", func(string) (string, bool) { return "", false })
			if err == nil {
				t.Fatalf("check-config accepts it; serve says: %v", serveOnce(t, cfg))
			}
			if want := "x.yaml:6: payments.wechatpay.api_base: "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %q; want it to start with %q", err, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error prints the password: %v", err)
			}
		})
	}
	// serve's own check (the same rule) does not print the value either.
	cfg, err := config.Parse([]byte(`server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
store: {path: "`+filepath.Join(dir, "p.db")+`"}
payments:
  backend: wechatpay
  wechatpay: {mch_id: "1900000001", app_id: wx1, mch_cert_serial: S, mch_private_key_file: `+keyFile+`,
    apiv3_key: "0123456789abcdef0123456789abcdef", public_key_id: P, public_key_file: `+pubFile+`,
    notify_url: "https://pay.example.com/n"}
`), "x.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Payments.WeChatPay.APIBase = "https://ops:hunter2@api.mch.weixin.qq.com"
	if err := serveOnce(t, cfg); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("serve with a userinfo in api_base: %v; want an error that does not print the password", err)
	}
}

// TestCheckConfigRefusesStorePathServeRefuses: a store.path serve cannot
// open is refused by check-config at its line, as a directory there
// already was: under a regular file (a data "directory" that is a file),
// or naming a file that is not a store (store.path: config.yaml, a typo).
// check-config said ok to both and serve stopped at the open ("mkdir
// notadir: not a directory", "open c.yaml: invalid database"), with no
// line. A store serve made, and an empty file (bbolt starts one), still
// pass.
func TestCheckConfigRefusesStorePathServeRefuses(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "notadir"), "hello\n")
	writeFile(t, filepath.Join(dir, "config.yaml"), "server: {listen: \"127.0.0.1:0\"}\n")
	writeFile(t, filepath.Join(dir, "empty.db"), "")
	parse := func(path string) (*config.Config, error) {
		return config.Parse([]byte("server: {listen: \"127.0.0.1:0\", admin_listen: \"off\"}\nstore: {path: \""+path+"\"}\n"),
			"x.yaml", func(string) (string, bool) { return "", false })
	}
	made := filepath.Join(dir, "made", "paygate.db")
	cfg, err := parse(made)
	if err != nil {
		t.Fatal(err)
	}
	if err := serveOnce(t, cfg); err != nil {
		t.Fatalf("serve with a new store file: %v", err)
	}
	for _, tc := range []struct {
		name, path string
		refused    bool
	}{
		{"under a regular file", filepath.Join(dir, "notadir", "paygate.db"), true},
		{"deeper under a regular file", filepath.Join(dir, "notadir", "data", "paygate.db"), true},
		{"a file that is not a store", filepath.Join(dir, "config.yaml"), true},
		{"a store serve made", made, false},
		{"an empty file", filepath.Join(dir, "empty.db"), false},
		{"a file not there yet", filepath.Join(dir, "new", "paygate.db"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(tc.path)
			if !tc.refused {
				if err != nil {
					t.Fatalf("check-config refuses it: %v", err)
				}
				if err := serveOnce(t, cfg); err != nil {
					t.Errorf("serve refuses what check-config accepts: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("check-config accepts it; serve says: %v", serveOnce(t, cfg))
			}
			if want := "x.yaml:2: store.path: "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %q; want it to start with %q", err, want)
			}
		})
	}
}

// TestStoreWithATornFirstMetaPageStillLoads: bbolt keeps two meta pages and
// writes them in turn, so that a crash in the middle of one write leaves the
// other to open the store with; it opens a file whose first meta page is
// torn (its magic overwritten) from the second. The store.path check looked
// for the magic in the first page alone and refused that file as "not a
// paygate store": at check-config, and at serve's own load, which then
// would not start on a store bbolt recovers.
func TestStoreWithATornFirstMetaPageStillLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "paygate.db")
	parse := func() (*config.Config, error) {
		return config.Parse([]byte("server: {listen: \"127.0.0.1:0\", admin_listen: \"off\"}\nstore: {path: \""+path+"\"}\n"),
			"x.yaml", func(string) (string, bool) { return "", false })
	}
	cfg, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if err := serveOnce(t, cfg); err != nil {
		t.Fatalf("serve with a new store file: %v", err)
	}
	// The first meta page: a 16-byte page header, then the magic.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0, 0, 0, 0}, 16); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cfg, err = parse()
	if err != nil {
		t.Fatalf("check-config refuses a store bbolt opens from its second meta page: %v", err)
	}
	if err := serveOnce(t, cfg); err != nil {
		t.Errorf("serve with the torn first meta page: %v; want bbolt's second meta page used", err)
	}
}
