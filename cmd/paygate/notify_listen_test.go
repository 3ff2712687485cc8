package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/proxy/console"
)

// TestNotifyListener: with server.notify_listen the notify route is served on
// its own listener and nothing else is: the bot API, the operator endpoints
// and the admin API answer 404 there, and the notify route is gone from the
// main listener, which stays on loopback. WeChat Pay's notification (the
// simulator's, signed and encrypted) reaches the notify listener and the
// order is paid: the merchant hears order.paid.
func TestNotifyListener(t *testing.T) {
	m := newMerchant(t, nil)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	src := `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", notify_listen: "127.0.0.1:0", shutdown_timeout: 5s}
clients: [{name: bot, key: ` + e2eClientKey + `}]
admin: {token: ` + testAdminToken + `}
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers: [{name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
payments:
  simulator: {pay_after: 50ms}
  catalog: [{sku: premium-monthly, name: "Premium", price: "49.99", max_quantity: 12}]
webhooks: {url: "` + m.URL + `", secret: ` + testWebhookSecret + `}
`
	cfg, err := config.Parse([]byte(src), "notify.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, ready) }()
	addrs := <-ready
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	mainURL, notifyURL, adminURL := "http://"+addrs["main"], "http://"+addrs["notify"], "http://"+addrs["admin"]
	if addrs["notify"] == "" || addrs["notify"] == addrs["main"] {
		t.Fatalf("listeners %v; want a notify listener of its own", addrs)
	}
	host, _, _ := net.SplitHostPort(addrs["main"])
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Errorf("main listener on %s; want loopback", addrs["main"])
	}

	do := func(method, url, auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(console.CSRFHeader, "1") // past the admin listener's CSRF guard, to the route (or its absence)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	client, adminTok := "Bearer "+e2eClientKey, "Bearer "+testAdminToken
	tests := []struct {
		name                string
		method, base, path  string
		auth, body          string
		want                int
		wantBodyContains    string
		wantBodyNotContains string
	}{
		{name: "notify: models", method: "GET", base: notifyURL, path: "/v1/models", auth: client, want: 404},
		{name: "notify: chat", method: "POST", base: notifyURL, path: "/v1/chat/completions", auth: client, body: `{"model":"gpt-4o","messages":[]}`, want: 404},
		{name: "notify: passthrough", method: "POST", base: notifyURL, path: "/v1/embeddings", auth: client, body: `{"model":"gpt-4o","input":"x"}`, want: 404},
		{name: "notify: orders", method: "GET", base: notifyURL, path: "/v1/paygate/orders", auth: client, want: 404},
		{name: "notify: healthz", method: "GET", base: notifyURL, path: "/healthz", want: 404},
		{name: "notify: metrics", method: "GET", base: notifyURL, path: "/metrics", want: 404, wantBodyNotContains: "paygate_"},
		{name: "notify: admin", method: "GET", base: notifyURL, path: "/admin/api/webhooks", auth: adminTok, want: 404},
		{name: "notify: unsigned notification refused by the notify route", method: "POST", base: notifyURL, path: "/wechatpay/notify", body: `{"id":"x"}`, want: 401, wantBodyContains: `"FAIL"`},
		{name: "main: models", method: "GET", base: mainURL, path: "/v1/models", auth: client, want: 200, wantBodyContains: "gpt-4o"},
		{name: "main: no notify route", method: "POST", base: mainURL, path: "/wechatpay/notify", body: `{"id":"x"}`, want: 404},
		{name: "admin: no notify route", method: "POST", base: adminURL, path: "/wechatpay/notify", body: `{"id":"x"}`, want: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(tc.method, tc.base+tc.path, tc.auth, tc.body)
			if status != tc.want {
				t.Errorf("%s %s: %d %s; want %d", tc.method, tc.path, status, body, tc.want)
			}
			if tc.wantBodyContains != "" && !strings.Contains(body, tc.wantBodyContains) {
				t.Errorf("body %s; want it to contain %s", body, tc.wantBodyContains)
			}
			if tc.wantBodyNotContains != "" && strings.Contains(body, tc.wantBodyNotContains) {
				t.Errorf("body shows %s", tc.wantBodyNotContains)
			}
		})
	}

	// A purchase on the main listener; the simulated user pays and WeChat
	// Pay's notification reaches the notify listener.
	no, _ := orderFor(t, mainURL, testOpenID, "premium please")
	paid := m.await(t, "order.paid", func(a hookArrival) bool { return a.env.Type == webhook.TypeOrderPaid })
	if paid.env.Data.Order["order_no"] != no || paid.verifyErr != nil {
		t.Errorf("order.paid %+v (signature %v); want %s", paid.env.Data.Order, paid.verifyErr, no)
	}
	if status, o := httpCall(t, http.MethodGet, mainURL+"/v1/paygate/orders/"+no, client, testOpenID); status != http.StatusOK || o.Get("status").Str != "paid" {
		t.Errorf("GET order on the main listener: %d %s; want paid", status, o.Raw)
	}
}

// TestNotifyListenerBoundsAStalledBody: the notification listener
// (facing the internet) reads a request's body within
// notifyReadTimeout: a client that declares a body and stops sending is cut
// off, where ReadHeaderTimeout alone would let it hold its connection and
// goroutine for as long as it stays connected.
func TestNotifyListenerBoundsAStalledBody(t *testing.T) {
	old := notifyReadTimeout
	notifyReadTimeout = 200 * time.Millisecond
	t.Cleanup(func() { notifyReadTimeout = old })
	for _, name := range []string{"notify"} {
		t.Run(name, func(t *testing.T) {
			readErr := make(chan error, 1)
			srv := newHTTPServer(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				readErr <- err
			}), nil)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "POST /wechatpay/notify HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{")
			select {
			case err := <-readErr:
				if err == nil {
					t.Fatal("a stalled body read without error")
				}
			case <-time.After(10 * time.Second): // a bound on a hang, not a timing
				t.Fatal("the handler's body read is still blocked 10 s after the client stalled")
			}
		})
	}
}

// TestNotifyOnTheMainListenerBoundsATrickledBody: with no
// server.notify_listen (the default) the notify route is on the bots'
// listener, whose server bounds each wait for body bytes but not a whole
// body. A client that trickles a declared notification body a byte at a
// time, each within that bound, held its connection and goroutine until
// the body was complete: 60000 bytes a second apart keep one for 16
// hours, and the route is open to the internet. The notification's body
// is read within notifyReadTimeout wherever the route is mounted: the
// client is answered with a FAIL while it is still sending.
func TestNotifyOnTheMainListenerBoundsATrickledBody(t *testing.T) {
	old := notifyReadTimeout
	notifyReadTimeout = 300 * time.Millisecond
	t.Cleanup(func() { notifyReadTimeout = old })
	src := `
server: {listen: "127.0.0.1:0", admin_listen: "off", shutdown_timeout: 5s}
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers: [{name: fake, base_url: "http://127.0.0.1:1/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
`
	cfg, err := config.Parse([]byte(src), "notify.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan map[string]string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, ready) }()
	addrs := <-ready
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	c, err := net.Dial("tcp", addrs["main"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /wechatpay/notify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{")
	// The trickle: a byte every 50 ms, far inside any stall bound.
	trickle := make(chan struct{})
	defer close(trickle)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-trickle:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound on a hang, not a timing
	head := make([]byte, 64)
	n, err := io.ReadAtLeast(c, head, len("HTTP/1.1 400"))
	if err != nil {
		t.Fatalf("no answer 10 s into a trickled notification body (%v); the route waits for all 60000 bytes", err)
	}
	if got := string(head[:n]); !strings.HasPrefix(got, "HTTP/1.1 4") {
		t.Fatalf("answer %q; want a 4xx", got)
	}
}
