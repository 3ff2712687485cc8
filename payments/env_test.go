package payments_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/logging/logtest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// drivers lists the store drivers to run against (Redis required under CI).
var drivers = testdrivers.Names

var testKeys = sync.OnceValues(wxsim.GenerateKeys)

// offsetClock is real time plus an adjustable offset: notifications stay
// within their 5 minute window while a test can still jump past expiries.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

type fullStore interface {
	payments.Store
	Close() error
}

func openStore(t testing.TB, driver string) fullStore {
	t.Helper()
	return openStoreAt(t, driver, nil)
}

// openStoreAt opens a store whose expiries are judged against now (nil:
// time.Now).
func openStoreAt(t testing.TB, driver string, now func() time.Time) fullStore {
	t.Helper()
	return testdrivers.Open(t, driver, now)
}

type env struct {
	t       testing.TB
	sim     *wxsim.Server
	api     *httptest.Server
	client  *wechatpay.Client
	st      fullStore
	svc     *payments.Service
	notify  *httptest.Server
	reg     *prometheus.Registry
	logs    *logtest.Buffer
	clock   *offsetClock
	catalog *payments.Catalog
	trans   chan payments.Transition
}

type envOptions struct {
	driver   string
	sim      wxsim.Options
	client   func(*wechatpay.Config)
	service  func(*payments.Options)
	notifyTo string // "": the service's own notify route; "sink": a 500 sink
	// storeClock makes the store judge expiries by the env's clock too, so
	// a test can jump past a TTL the store keeps (proposals, counters).
	storeClock bool
}

// transitions returns a channel receiving every committed transition.
func (e *env) transitions() <-chan payments.Transition { return e.trans }

// faultAttemptTimeout is the attempt timeout of tests that make an attempt
// time out (wxsim.FaultTimeout): shorter than newEnv's 2s, to keep them
// fast, yet long enough that every other attempt (signed and verified
// under -race) ends within it on a loaded CI machine, where 300ms was too
// little: a spurious timeout is one more request than the test counts.
const faultAttemptTimeout = time.Second

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	keys, err := testKeys()
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	if o.driver == "" {
		o.driver = "embedded"
	}
	e := &env{t: t, reg: prometheus.NewRegistry(), logs: &logtest.Buffer{}, clock: &offsetClock{}, trans: make(chan payments.Transition, 1024)}
	o.sim.Keys = keys
	if o.sim.NotifyAttempts == 0 {
		o.sim.NotifyAttempts = 1
	}
	e.sim, err = wxsim.New(o.sim)
	if err != nil {
		t.Fatalf("wxsim: %v", err)
	}
	e.api = httptest.NewServer(e.sim)
	if o.storeClock {
		e.st = openStoreAt(t, o.driver, e.clock.Now)
	} else {
		e.st = openStore(t, o.driver)
	}

	// The notify route exists before the client so its URL can go into
	// prepays; the handler is bound once the service exists.
	var handler http.Handler
	var hmu sync.RWMutex
	e.notify = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.RLock()
		h := handler
		hmu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	notifyURL := e.notify.URL + payments.NotifyPath
	if o.notifyTo == "sink" {
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
		t.Cleanup(sink.Close)
		notifyURL = sink.URL + payments.NotifyPath
	}
	cfg := e.sim.ClientConfig(e.api.URL, notifyURL)
	cfg.AttemptTimeout = 2 * time.Second
	cfg.RetryBackoff = 5 * time.Millisecond
	if o.client != nil {
		o.client(&cfg)
	}
	e.client, err = wechatpay.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("wechatpay: %v", err)
	}
	e.catalog, err = payments.NewCatalog([]payments.CatalogItem{
		{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99", MaxQuantity: 12},
		{SKU: "tip", Name: "Tip", Price: "0.01"},
	})
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	opts := payments.Options{
		Store: e.st, Backend: e.client, Notify: e.client.NotifyVerifier(), Catalog: e.catalog,
		MchID: e.sim.MchID(), AppID: e.sim.AppID(), Registerer: e.reg,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Now: e.clock.Now,
		PrepayTimeout: 5 * time.Second,
		Committed: func(tr payments.Transition) {
			select {
			case e.trans <- tr:
			default:
			}
		},
	}
	if o.service != nil {
		o.service(&opts)
	}
	e.svc, err = payments.New(opts)
	if err != nil {
		t.Fatalf("payments.New: %v", err)
	}
	hmu.Lock()
	handler = e.svc.NotifyHandler()
	hmu.Unlock()
	t.Cleanup(func() {
		_ = e.svc.Close()
		e.notify.Close()
		e.api.Close()
		_ = e.sim.Close()
	})
	return e
}

// await waits for a transition matching want.
func (e *env) await(want func(payments.Transition) bool) payments.Transition {
	e.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case tr := <-e.trans:
			if want(tr) {
				return tr
			}
		case <-timeout:
			e.t.Fatal("timed out waiting for a transition")
		}
	}
}

// counter reads a counter of the env's registry (0 when absent).
func (e *env) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
	metric:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
		return sum
	}
	return 0
}

func (e *env) order(no string) *store.Order {
	e.t.Helper()
	o, err := e.st.GetOrder(context.Background(), no)
	if err != nil {
		e.t.Fatalf("get order %s: %v", no, err)
	}
	return o
}

// create makes an awaiting_payment JSAPI order for user.
func (e *env) create(user string, qty int) *store.Order {
	e.t.Helper()
	res, err := e.svc.CreateOrder(context.Background(), payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly", Quantity: qty})
	if err != nil {
		e.t.Fatalf("create order: %v", err)
	}
	if res.Order.Status != store.StatusAwaitingPayment {
		e.t.Fatalf("create order: status %s; want awaiting_payment", res.Order.Status)
	}
	return res.Order
}

// paidTx is the transaction WeChat Pay would report for o once paid.
func (e *env) paidTx(o *store.Order) wxsim.Transaction {
	return wxsim.Transaction{
		AppID: o.AppID, MchID: e.sim.MchID(), OutTradeNo: o.OrderNo, TransactionID: "4200001234" + strings.Repeat("7", 18),
		TradeType: "JSAPI", TradeState: "SUCCESS", TradeStateDesc: "支付成功", BankType: "OTHERS",
		SuccessTime: time.Now().Format(time.RFC3339), Payer: &wxsim.Payer{OpenID: o.User},
		Amount: wxsim.Amount{Total: o.AmountFen, PayerTotal: o.AmountFen, Currency: "CNY", PayerCurrency: "CNY"},
	}
}

func (e *env) buildPayment(tx wxsim.Transaction, edit func(*wxsim.NotificationSpec)) *wxsim.Notification {
	e.t.Helper()
	spec := wxsim.NotificationSpec{EventType: wechatpay.EventTransactionSuccess, Summary: "支付成功", OriginalType: "transaction", Resource: tx}
	if edit != nil {
		edit(&spec)
	}
	n, err := e.sim.BuildNotification(spec)
	if err != nil {
		e.t.Fatalf("build notification: %v", err)
	}
	return n
}

// post sends a notification's exact bytes to the notify route.
func (e *env) post(h http.Header, body []byte) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.notify.URL+payments.NotifyPath, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("post notification: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func testNow() time.Time { return time.Now() }

func wechatpayValid(no string) error { return wechatpay.ValidOutTradeNo(no) }

// otherReplica is a second Service on opts (as newEnv's service hook saw
// them: the same store and WeChat Pay), another replica with its own
// metrics registry and no commit hook, closed when the test ends.
func otherReplica(t testing.TB, opts payments.Options) *payments.Service {
	t.Helper()
	opts.Registerer = prometheus.NewRegistry()
	opts.Committed = nil
	other, err := payments.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	return other
}
