package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// TestScalingOutLeavesNoOrderBehind: a merchant on the default embedded
// store scales out as the README says, store.driver: redis, and restarts
// with an order still payable in the file. paygate started on the empty
// Redis knowing nothing of it: the user's payment came back as an orphan
// (the merchant never told order.paid, nothing delivered), and the same
// purchase asked again got a second payable order. It now refuses to
// start while the file it served on holds such state, naming the counts
// and what to do; `paygate store status` under the old config says what
// is left (exit 3) and, once the order is closed and its events sent under
// the old config, drained (exit 0), and the Redis config starts.
func TestScalingOutLeavesNoOrderBehind(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	dir := t.TempDir()
	path := filepath.Join(dir, "paygate.db")
	embeddedSrc := merchantDeployment(`{driver: embedded, path: `+path+`}`, "1900000109")
	redisSrc := merchantDeployment(`{driver: redis, path: `+path+`, redis: {addrs: ["`+srv.Addr()+`"]}}`, "1900000109")
	cfgPath := filepath.Join(dir, "old.yaml")
	writeFile(t, cfgPath, embeddedSrc)
	redisCfgPath := filepath.Join(dir, "new.yaml")
	writeFile(t, redisCfgPath, redisSrc)
	statusOf := func(cfgPath string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run([]string{"store", "status", "-config", cfgPath}, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	status := func() (int, string) { t.Helper(); return statusOf(cfgPath) }

	_, a := serveConfig(t, embeddedSrc, io.Discard)
	ctx := context.Background()
	res, err := a.payments.CreateOrder(ctx, payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"})
	if err != nil || res.Order.Status != store.StatusAwaitingPayment {
		t.Fatalf("order: %+v %v; want one payable", res, err)
	}
	a.close()

	err = startApp(t, redisSrc)
	if err == nil {
		t.Fatalf("started on Redis while %s holds a payable order", path)
	}
	if !errors.Is(err, errLeftState) {
		t.Fatalf("start on Redis: %v; want the left state refused", err)
	}
	for _, want := range []string{path, "1 payable (awaiting_payment)", "paygate store status", "move the file away"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %q: %v", want, err)
		}
	}
	if code, out := status(); code != 3 || !strings.Contains(out, "1 payable") {
		t.Errorf("store status with the order payable: exit %d %q; want 3 naming it", code, out)
	}

	// Drained under the old config: past order_ttl its sweep closes the
	// unpaid order (the simulator of this start does not know it: unpaid),
	// and the audit worker appends its records.
	_, a = serveConfig(t, embeddedSrc, io.Discard, withPaymentsClock(func() time.Time { return time.Now().Add(3 * time.Hour) }))
	if _, err := a.payments.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if code, out := status(); code != 1 || !strings.Contains(out, "paygate store status: "+path+" is in use by a running paygate") || !strings.Contains(out, "GET /admin/api/webhooks") {
		t.Errorf("store status while paygate serves on the file: exit %d %q; want 1 saying so and where to look instead", code, out)
	}
	awaitCondition(t, "the old store drained", 15*time.Second, func() bool {
		live, err := countLive(ctx, a.store)
		return err == nil && live.drained()
	})
	a.close()
	if code, out := status(); code != 0 || !strings.Contains(out, "drained") {
		t.Errorf("store status once drained: exit %d %q; want 0, drained", code, out)
	}
	if err := startApp(t, redisSrc); err != nil {
		t.Fatalf("start on Redis once the file is drained: %v", err)
	}

	// Scaling back in, the Redis store is asked the same.
	_, a = serveConfig(t, redisSrc, io.Discard)
	if _, err := a.payments.CreateOrder(ctx, payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly", Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	a.close()
	if code, out := statusOf(redisCfgPath); code != 3 || !strings.Contains(out, "1 payable (awaiting_payment)") {
		t.Errorf("store status of Redis with an order payable: exit %d %q; want 3 naming it", code, out)
	}
}

// TestStorePathMovedLeavesNoOrderBehind: a deployment on the default
// store.path moves it to another volume with an order held for a manager
// in the old file, which the new one knows nothing of. It is refused,
// naming the file and the count; another merchant's deployment, whose
// store the default file is not, starts.
func TestStorePathMovedLeavesNoOrderBehind(t *testing.T) {
	t.Chdir(t.TempDir())
	moved := filepath.Join(t.TempDir(), "paygate.db")
	held := "  rules: {approval_above: \"1.00\"}\nserver: {admin_listen: \"127.0.0.1:0\"}\nadmin: {token: " + testAdminToken + "}\n"
	_, a := serveConfig(t, merchantDeployment(`{driver: embedded}`, "1900000109")+held, io.Discard)
	res, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"})
	if err != nil || res.Order.Status != store.StatusApprovalRequired {
		t.Fatalf("order: %+v %v; want one held for approval", res, err)
	}
	a.close()
	err = startApp(t, merchantDeployment(`{driver: embedded, path: `+moved+`}`, "1900000109")+held)
	if !errors.Is(err, errLeftState) || !strings.Contains(err.Error(), "data/paygate.db holds 1 held for approval (approval_required)") {
		t.Fatalf("start on a moved store.path: %v; want the default file's held order refused", err)
	}
	if err := startApp(t, merchantDeployment(`{driver: embedded, path: `+moved+`}`, "1900000200")+held); err != nil {
		t.Errorf("another merchant on its own file: %v", err)
	}
}

// TestScalingOutWaitsForOrderPaid: an order paid just before the switch
// whose order.paid the merchant's endpoint has not taken yet (it answers
// 503) is in the embedded file's outbox alone: started on Redis, no relay
// would ever send it, and the goods would never be delivered. The start
// is refused naming the undelivered events.
func TestScalingOutWaitsForOrderPaid(t *testing.T) {
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(merchant.Close)
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	path := filepath.Join(t.TempDir(), "paygate.db")
	hooks := "webhooks: {url: \"" + merchant.URL + "\", secret: " + testWebhookSecret + "}\n"
	_, a := serveConfig(t, merchantDeployment(`{driver: embedded, path: `+path+`}`, "1900000109")+hooks, io.Discard)
	ctx := context.Background()
	res, err := a.payments.CreateOrder(ctx, payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := a.sim.Pay(ctx, res.Order.OrderNo); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}
	if o, err := a.store.GetOrder(ctx, res.Order.OrderNo); err != nil || o.Status != store.StatusPaid {
		t.Fatalf("order after the payment: %+v %v; want paid", o, err)
	}
	a.close()
	err = startApp(t, merchantDeployment(`{driver: redis, path: `+path+`, redis: {addrs: ["`+srv.Addr()+`"]}}`, "1900000109")+hooks)
	if !errors.Is(err, errLeftState) || !strings.Contains(err.Error(), "undelivered events") {
		t.Fatalf("start on Redis with order.paid undelivered in the file: %v; want refused naming the undelivered events", err)
	}
}

// TestScalingBackInLeavesNoOrderBehind: replicas on Redis scale back in to
// one on a new embedded file, store.redis left in the config, with an order
// payable in Redis. Refused at the first start on the file, naming Redis
// and the count; an empty file created at store.path (the state left
// behind knowingly) starts.
func TestScalingBackInLeavesNoOrderBehind(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	path := filepath.Join(t.TempDir(), "paygate.db")
	redisYAML := `redis: {addrs: ["` + srv.Addr() + `"], key_prefix: "scalein:"}`
	_, a := serveConfig(t, merchantDeployment(`{driver: redis, `+redisYAML+`}`, "1900000109"), io.Discard)
	if _, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"}); err != nil {
		t.Fatal(err)
	}
	a.close()
	embeddedSrc := merchantDeployment(`{driver: embedded, path: `+path+`, `+redisYAML+`}`, "1900000109")
	err := startApp(t, embeddedSrc)
	if !errors.Is(err, errLeftState) || !strings.Contains(err.Error(), `Redis at `+srv.Addr()+` (key prefix "scalein:", db 0) holds 1 payable (awaiting_payment)`) {
		t.Fatalf("first start on a new file with an order payable in Redis: %v; want refused naming Redis and the order", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused start left %s: %v", path, err)
	}
	writeFile(t, path, "")
	if err := startApp(t, embeddedSrc); err != nil {
		t.Errorf("start on an empty file made by hand: %v", err)
	}
}

// TestFirstStartAsksNoRedisItWasNotTold: the README's first command (the
// embedded store, the simulator, store.redis not written) on a developer
// machine whose Redis at the default address holds a simulator
// deployment's payable order under the default prefix (the Scaling out
// example tried there, or any test run that left one behind). That first
// start was refused, "the store this deployment served on before still
// holds live state", for an order the restarted simulator can never be
// paid for (it keeps its orders in memory), and so was every test of the
// suite starting on a new file, on whichever machine or CI runner's Redis
// held one: a Redis the config does not name is not asked for a
// simulator. srv stands in for the default address: state written under
// the default prefix of the Redis the tests share would refuse every
// other test's start.
func TestFirstStartAsksNoRedisItWasNotTold(t *testing.T) {
	srv := redistest.StartServer(t)
	_, a := serveConfig(t, merchantDeployment(`{driver: redis, redis: {addrs: ["`+srv.Addr()+`"]}}`, ""), io.Discard)
	if _, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"}); err != nil {
		t.Fatal(err)
	}
	a.close()
	start := func(src string) error {
		cfg, err := config.Parse([]byte(src), "paygate.yaml", func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Store.Redis.Addrs[0] != srv.Addr() {
			cfg.Store.Redis.Addrs = []string{srv.Addr()} // the default address
		}
		a, err := newApp(cfg, io.Discard, "http://127.0.0.1:9/wechatpay/notify")
		if err == nil {
			a.close()
		}
		return err
	}
	if err := start(merchantDeployment(`{driver: embedded, path: `+filepath.Join(t.TempDir(), "paygate.db")+`}`, "")); err != nil {
		t.Errorf("first start of the simulator on defaults, the Redis at the default address holding a simulator order: %v", err)
	}
	named := `{driver: embedded, path: ` + filepath.Join(t.TempDir(), "paygate.db") + `, redis: {addrs: ["` + srv.Addr() + `"]}}`
	if err := start(merchantDeployment(named, "")); !errors.Is(err, errLeftState) {
		t.Errorf("first start on a new file, the Redis store.redis names holding this deployment's order: %v; want refused", err)
	}
}

// TestScalingBackInToTheKeptFile: a deployment that drained its file and
// scaled out to Redis kept the file, as Moving to another store says, and
// scales back in to it with an order payable in Redis. The Redis check ran
// only on a store.path not made yet, so that start on the kept file went
// ahead knowing nothing of the order (its payment an orphan, its purchase
// payable twice). It is refused as on a new file; a file written since
// Redis's last order (touched: the state left behind knowingly, or
// served on since) starts, and so do its restarts.
func TestScalingBackInToTheKeptFile(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	path := filepath.Join(t.TempDir(), "paygate.db")
	storeYAML := func(driver string) string {
		return `{driver: ` + driver + `, path: ` + path + `, redis: {addrs: ["` + srv.Addr() + `"], key_prefix: "keptfile:"}}`
	}
	_, a := serveConfig(t, merchantDeployment(storeYAML("embedded"), "1900000109"), io.Discard)
	a.close()
	_, a = serveConfig(t, merchantDeployment(storeYAML("redis"), "1900000109"), io.Discard)
	if _, err := a.payments.CreateOrder(context.Background(), payments.CreateRequest{Client: "bot", User: testOpenID, SKU: "premium-monthly"}); err != nil {
		t.Fatal(err)
	}
	a.close()
	embeddedSrc := merchantDeployment(storeYAML("embedded"), "1900000109")
	err := startApp(t, embeddedSrc)
	if !errors.Is(err, errLeftState) || !strings.Contains(err.Error(), `(key prefix "keptfile:", db 0) holds 1 payable (awaiting_payment)`) {
		t.Fatalf("start on the kept file with an order payable in Redis: %v; want refused naming Redis and the order", err)
	}
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := startApp(t, embeddedSrc); err != nil {
			t.Errorf("start %d on the kept file touched: %v", i+1, err)
		}
	}
}
