package main

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/console"
)

// redisYAML is the store section for a private redis-server at addr.
func redisYAML(addr string) string {
	return `store: {driver: redis, redis: {addrs: ["` + addr + `"]}}` + "\n" +
		`privacy: {hash_key: fixed-key-for-this-test}` + "\n"
}

// get makes a GET on the node's main listener and returns status and body.
func (n *crashNode) get(path, user string) (int, string) { return n.call(http.MethodGet, path, user) }

// TestRedisDownDuringPrepay: Redis (one that keeps every write: AOF with
// appendfsync always) goes away while a turn's create_order is on its way
// to WeChat Pay or at it, and comes back. The bot's turn ends with a clear
// answer; once Redis is back the user's next ask gets the one order, at
// WeChat Pay once, payable; it is paid once, announced once, and the audit
// chain verifies.
func TestRedisDownDuringPrepay(t *testing.T) {
	for _, tt := range []struct {
		name   string
		before bool
	}{{"before WeChat Pay", true}, {"at WeChat Pay", false}} {
		t.Run(tt.name, func(t *testing.T) {
			// Each waits for the order's grace on its own Redis,
			// simulator, provider, merchant and paygate process: side by side.
			t.Parallel()
			srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
			cs := newCrashSim(t)
			up := newScriptedProvider(t, buyScript())
			m := newMerchant(t, nil)
			n := newCrashNode(t, cs, redisYAML(srv.Addr()), up.URL, m.URL, "  reconcile: {sweep_interval: 1s}\n")
			n.creatingGrace = lostPrepayGrace
			n.start()
			const user = "oUser-redis-down"
			cs.mu.Lock()
			cs.before["prepay"] = tt.before
			cs.mu.Unlock()
			release := cs.hold("prepay")
			type answer struct {
				st  int
				ans gjson.Result
				err error
			}
			done := make(chan answer, 1)
			go func() {
				st, ans, err := n.chat(user, "premium please")
				done <- answer{st, ans, err}
			}()
			cs.awaitHeld(t, "prepay")
			srv.Kill()
			release()
			a := <-done
			reqs := up.requests()
			result := gjson.Get(reqs[len(reqs)-1], `messages.#(role=="tool").content`).Str
			t.Logf("turn with Redis gone mid-prepay: %d %v %s; tool result %s", a.st, a.err, a.ans.Raw, result)
			if a.err != nil || a.st != http.StatusOK || gjson.Get(result, "status").Str != "pending" {
				t.Errorf("turn: %d %v %s, tool result %s; want 200, the order pending", a.st, a.err, a.ans.Raw, result)
			}
			no := gjson.Get(result, "order_no").Str
			st, body := n.get("/v1/paygate/orders", user)
			t.Logf("orders with Redis down: %d %s", st, body)

			srv.Restart()
			awaitCondition(t, "ready again", 15*time.Second, func() bool {
				st, _ := n.get("/readyz", "")
				return st == http.StatusOK
			})
			st, ans, err := n.chat(user, "premium please")
			reqs = up.requests()
			t.Logf("retry: %d %v %s", st, err, ans.Raw)
			t.Logf("retry's state: %s", gjson.Get(reqs[len(reqs)-2], `messages.#(role=="system").content`).Str)
			t.Logf("retry's tool result: %s", gjson.Get(reqs[len(reqs)-1], `messages.#(role=="tool").content`).Str)
			// The order left creating is resolved once its grace
			// (lostPrepayGrace) is over: WeChat Pay holds it open.
			awaitCondition(t, "the order awaiting payment", 60*time.Second, func() bool {
				_, body := n.get("/v1/paygate/orders/"+no, user)
				return gjson.Get(body, "status").Str == "awaiting_payment"
			})
			st, ans, err = n.chat(user, "premium please")
			act := ans.Get("paygate.actions.0")
			if act.Get("order.order_no").Str != no || act.Get("order.status").Str != "awaiting_payment" || !strings.HasPrefix(act.Get("request_payment.package").Str, "prepay_id=") {
				t.Errorf("ask once the sweep resolved it: %d %v %s; want order %s, awaiting payment, payable", st, err, ans.Get("paygate").Raw, no)
			}
			if cs.OrderCount() != 1 {
				t.Fatalf("WeChat Pay holds %d orders; want 1", cs.OrderCount())
			}
			if d, err := cs.Pay(t.Context(), no); err != nil || !d.Acked {
				t.Fatalf("pay %s: %+v %v", no, d, err)
			}
			st, body = n.get("/v1/paygate/orders", user)
			t.Logf("orders: %d %s", st, body)
			if s := gjson.Get(body, `data.#(order_no=="`+no+`").status`).Str; s != "paid" {
				t.Errorf("order %s %q after payment; want paid", no, s)
			}
			awaitCondition(t, "order.paid delivered", 15*time.Second, func() bool {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, a := range m.all {
					if a.env.Type == "order.paid" {
						return true
					}
				}
				return false
			})
			// Nothing half-written: every transition of the order is in the
			// audit chain, once, in order.
			var actions []string
			for _, r := range gjson.Get(n.adminGet("/admin/api/audit?limit=50"), "records").Array() {
				if r.Get("body.order_no").Str == no {
					actions = append(actions, r.Get("body.action").Str)
				}
			}
			if want := []string{"order.created", "order.awaiting_payment", "order.paid"}; !slices.Equal(actions, want) {
				t.Errorf("audit of %s: %v; want %v", no, actions, want)
			}
			n.kill()
			if code, out := n.auditVerify(); code != 0 {
				t.Fatalf("audit verify: exit %d: %s", code, out)
			}
			m.mu.Lock()
			for _, a := range m.all {
				t.Logf("webhook: %s %s", a.env.Type, a.env.ID)
			}
			m.mu.Unlock()
		})
	}
}

// notifyPaid POSTs a signed TRANSACTION.SUCCESS notification of order no,
// as WeChat Pay holds it now, to the node's notify route; it returns the
// status and body. note is reused when given (WeChat Pay's retry of one
// notification carries the same id and bytes).
func (n *crashNode) notifyPaid(t *testing.T, cs *crashSim, no string, note *wxsim.Notification) (int, string, *wxsim.Notification) {
	t.Helper()
	if note == nil {
		tx, ok := cs.Order(no)
		if !ok {
			t.Fatalf("WeChat Pay holds no order %s", no)
		}
		var err error
		note, err = cs.BuildNotification(wxsim.NotificationSpec{
			EventType: wechatpay.EventTransactionSuccess, Summary: "支付成功", OriginalType: "transaction", Resource: tx,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+n.addr+"/wechatpay/notify", bytes.NewReader(note.Body))
	for k, v := range note.Header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("notify: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), note
}

// TestRedisDownNotificationsAndAdmin: with Redis down, WeChat Pay's
// notification is answered 5xx {"code":"FAIL",…} (it retries), /readyz and
// the admin API say unavailable, and a chat turn with no user passes; once
// Redis is back (it kept its data) WeChat Pay's retry records the payment.
func TestRedisDownNotificationsAndAdmin(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	cs := newCrashSim(t)
	up := newScriptedProvider(t, buyScript())
	n := newCrashNode(t, cs, redisYAML(srv.Addr()), up.URL, "", "")
	n.start()
	const user = "oUser-redis-notify"
	_, ans, err := n.chat(user, "premium please")
	no := ans.Get("paygate.actions.0.order.order_no").Str
	if err != nil || no == "" {
		t.Fatalf("no order: %v %s", err, ans.Raw)
	}
	srv.Kill()
	if _, err := cs.Pay(t.Context(), no); err != nil { // its own delivery is refused too
		t.Fatal(err)
	}
	st, body, note := n.notifyPaid(t, cs, no, nil)
	if st < 500 || gjson.Get(body, "code").Str != "FAIL" || gjson.Get(body, "message").Str == "" {
		t.Errorf("notification with Redis down: %d %s; want 5xx {\"code\":\"FAIL\",\"message\":…} so WeChat Pay retries", st, body)
	}
	if st, _ := n.get("/readyz", ""); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with Redis down; want 503", st)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.admin+"/admin/api/orders", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || gjson.GetBytes(b, "error").Str == "" {
			t.Errorf("admin orders with Redis down: %d %s; want 503 with the admin API's error object", resp.StatusCode, b)
		}
	}
	if st, ans, err := n.chat("", "hello"); err != nil || st != http.StatusOK || ans.Get("choices.0.message").Raw == "" {
		t.Errorf("a turn with no user, Redis down: %d %v %s; want it answered", st, err, ans.Raw)
	}

	srv.Restart()
	awaitCondition(t, "ready again", 15*time.Second, func() bool {
		st, _ := n.get("/readyz", "")
		return st == http.StatusOK
	})
	// WeChat Pay retries until acknowledged; /readyz can answer 200 while
	// the pool still holds a connection to the killed server, whose first
	// use fails (seen once on a slow host under -race: 500 "temporarily
	// unable to record"), so the retries are WeChat Pay's, each the same
	// notification, within a bound: never acknowledged still fails.
	awaitCondition(t, "WeChat Pay's retry acknowledged (2xx) once Redis is back", 15*time.Second, func() bool {
		st, _, _ := n.notifyPaid(t, cs, no, note)
		return st/100 == 2
	})
	if _, body := n.get("/v1/paygate/orders/"+no, user); gjson.Get(body, "status").Str != "paid" {
		t.Errorf("order after the retry: %s; want paid", body)
	}
}

// TestRedisRestartedEmptyThenPaid: Redis restarts empty (no persistence)
// while an order awaits payment; the payer pays. paygate must not answer
// WeChat Pay success for a payment it cannot record: the notification gets
// 5xx FAIL while the replica refuses the lost store. Once the operator
// restarts the replica, WeChat Pay's retry is acknowledged and the payment
// recorded from WeChat's signed word as an orphan for review (the order,
// its claim and its audit records are gone: nothing tells paygate what was
// bought), announced to the merchant as order.needs_review. /readyz says
// why it is not ready and what to do.
func TestRedisRestartedEmptyThenPaid(t *testing.T) {
	srv := redistest.StartServer(t)
	cs := newCrashSim(t)
	up := newScriptedProvider(t, buyScript())
	m := newMerchant(t, nil)
	n := newCrashNode(t, cs, redisYAML(srv.Addr()), up.URL, m.URL, "")
	n.start()
	const user = "oUser-redis-empty"
	_, ans, err := n.chat(user, "premium please")
	no := ans.Get("paygate.actions.0.order.order_no").Str
	if err != nil || no == "" {
		t.Fatalf("no order: %v %s", err, ans.Raw)
	}
	srv.Restart() // killed and started again: empty
	awaitCondition(t, "not ready on the emptied Redis", 15*time.Second, func() bool {
		st, _ := n.get("/readyz", "")
		return st == http.StatusServiceUnavailable
	})
	// Redis answers: "unreachable" would send the operator to the network,
	// not to the restart the replica waits for.
	if _, body := n.get("/readyz", ""); !strings.Contains(body, "lost its data") || !strings.Contains(body, "restart") {
		t.Errorf("/readyz on the emptied Redis says %q; want the cause (Redis lost its data) and the remedy (restart the replicas)", body)
	}
	// So does the admin API, where an operator looks for the orders.
	if e := gjson.Get(n.adminGet("/admin/api/orders"), "error").Str; !strings.Contains(e, "lost its data") || !strings.Contains(e, "restart") {
		t.Errorf("admin orders on the emptied Redis: error %q; want the cause and the remedy", e)
	}
	// And the admin API's webhook routes, which the console reads too: "try
	// again" would only be refused again until the restart.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/admin/api/webhooks"},
		{http.MethodPost, "/admin/api/orders/" + no + "/webhook"},
	} {
		resp, b := adminDo(t, c.method, "http://"+n.admin+c.path, map[string]string{"Authorization": "Bearer " + testAdminToken, console.CSRFHeader: "1"})
		if e := gjson.GetBytes(b, "error").Str; resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(e, "lost its data") || !strings.Contains(e, "restart") {
			t.Errorf("%s %s on the emptied Redis: %d %s; want 503 with the cause and the remedy", c.method, c.path, resp.StatusCode, b)
		}
	}
	if _, err := cs.Pay(t.Context(), no); err != nil {
		t.Fatal(err)
	}
	st, body, note := n.notifyPaid(t, cs, no, nil)
	t.Logf("notification on the emptied Redis: %d %s", st, body)
	if st < 500 || gjson.Get(body, "code").Str != "FAIL" {
		t.Errorf("notification on the emptied Redis: %d %s; want 5xx FAIL (nothing can be recorded)", st, body)
	}

	n.kill()
	n.start()
	st, body, _ = n.notifyPaid(t, cs, no, note)
	t.Logf("retry after the replica restarted: %d %s", st, body)
	if st/100 != 2 {
		t.Fatalf("WeChat Pay's retry after the restart: %d %s; want it acknowledged", st, body)
	}
	o := gjson.Get(n.adminGet("/admin/api/orders?limit=10"), `orders.#(order_no=="`+no+`")`)
	t.Logf("order: %s", o.Raw)
	if o.Get("status").Str != "needs_review" {
		t.Errorf("order after the retry: %s; want needs_review (an orphan payment)", o.Raw)
	}
	awaitCondition(t, "order.needs_review delivered", 15*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, a := range m.all {
			if a.env.Type == "order.needs_review" {
				return true
			}
		}
		return false
	})
	n.kill()
	if code, out := n.auditVerify(); code != 0 {
		t.Fatalf("audit verify: exit %d: %s", code, out)
	}
}

// TestRedisFullPaymentsUnavailable: a Redis at its maxmemory under
// noeviction refuses every write (OOM): a purchase tells the model that
// payments are temporarily unavailable and no order was created, not that
// the payment "could not be started" for no reason it can pass on, and
// once Redis has room again the user's next ask makes the order.
func TestRedisFullPaymentsUnavailable(t *testing.T) {
	srv := redistest.StartServer(t)
	cs := newCrashSim(t)
	up := newScriptedProvider(t, buyScript())
	n := newCrashNode(t, cs, redisYAML(srv.Addr()), up.URL, "", "")
	n.start()
	const user = "oUser-redis-full"
	admin := srv.Client()
	if err := admin.ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	st, ans, err := n.chat(user, "premium please")
	reqs := up.requests()
	result := gjson.Get(reqs[len(reqs)-1], `messages.#(role=="tool").content`).Str
	if err != nil || st != http.StatusOK || gjson.Get(result, "status").Str != "failed" ||
		!strings.Contains(gjson.Get(result, "error").Str, "temporarily unavailable") {
		t.Errorf("purchase on a full Redis: %d %v %s, tool result %s; want it failed as temporarily unavailable", st, err, ans.Raw, result)
	}
	if cs.OrderCount() != 0 {
		t.Errorf("WeChat Pay holds %d orders; want none", cs.OrderCount())
	}
	if err := admin.ConfigSet(t.Context(), "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	_, ans, err = n.chat(user, "premium please")
	if act := ans.Get("paygate.actions.0"); err != nil || act.Get("order.status").Str != "awaiting_payment" {
		t.Errorf("purchase once Redis has room: %v %s; want the order", err, ans.Raw)
	}
	if cs.OrderCount() != 1 {
		t.Errorf("WeChat Pay holds %d orders; want 1", cs.OrderCount())
	}
}
