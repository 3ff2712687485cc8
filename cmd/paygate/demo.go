package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
)

// The demo plays a whole purchase through the real application — serve's
// handler, the WeChat Pay simulator over HTTP with signed notifications, the
// embedded store in a temp dir, the merchant webhook relay — against a
// scripted model served over HTTP. Nothing is faked by calling packages
// directly: the bot's requests, the model's rounds, the payment, the refund
// and the webhooks all cross real HTTP.

const (
	demoClientKey = "sk-paygate-demo"
	demoOpenID    = "oDemoUser-0001"
	demoSecret    = "whsec-demo-0123456789"
)

// demoUpstream is the scripted model: it answers from what the request
// carries (the last message, the tool results, paygate's state message).
type demoUpstream struct {
	mu     sync.Mutex
	rounds []string // request bodies, in order
}

// demoRoundHook, when set, runs first in each of the scripted model's
// rounds (the tests hold one with it).
var demoRoundHook func(*http.Request)

func (d *demoUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if demoRoundHook != nil {
		demoRoundHook(r)
	}
	b, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	d.rounds = append(d.rounds, string(b))
	d.mu.Unlock()
	body := string(b)
	last := gjson.Get(body, "messages.@reverse.0")
	var msg string
	switch {
	case last.Get("role").Str == "tool":
		res := gjson.Parse(last.Get("content").Str)
		switch {
		case res.Get("refund_id").Exists() || strings.Contains(last.Get("content").Str, "awaiting_user_confirmation"):
			msg = demoText("I've prepared the refund of " + res.Get("amount").Str + ". Please tap Confirm to receive it.")
		default:
			msg = demoText("Order " + res.Get("order_no").Str + " for " + res.Get("description").Str + " (" + res.Get("amount").Str + ") is ready: tap Pay to finish.")
		}
	case strings.Contains(last.Get("content").Str, "premium"):
		msg = demoCall("call_demo_1", "create_order", `{"sku":"premium-monthly","quantity":1}`, "Sure, setting that up. ")
	case strings.Contains(last.Get("content").Str, "refund"):
		no := orderNoIn(body)
		msg = demoCall("call_demo_2", "request_refund", `{"order_no":"`+no+`","reason":"changed my mind"}`, "")
	default:
		state := gjson.Get(body, `messages.#(role=="system")#.content`).String()
		if strings.Contains(state, "— paid") {
			msg = demoText("Yes — your payment for order " + orderNoIn(body) + " went through. Enjoy Premium!")
		} else {
			msg = demoText("I don't see a payment yet.")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, msg)
}

// orderNoIn finds the first order number paygate mentioned to the model.
func orderNoIn(body string) string {
	i := strings.Index(body, "order PG")
	if i < 0 {
		return ""
	}
	s := body[i+len("order "):]
	if j := strings.IndexAny(s, ": ,\\\""); j > 0 {
		s = s[:j]
	}
	return s
}

func demoText(text string) string {
	b, _ := json.Marshal(text)
	return `{"id":"chatcmpl-demo","object":"chat.completion","created":` + fmt.Sprint(time.Now().Unix()) +
		`,"model":"demo-model","choices":[{"index":0,"message":{"role":"assistant","content":` + string(b) +
		`},"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":25,"total_tokens":145}}`
}

func demoCall(id, name, args, text string) string {
	a, _ := json.Marshal(args)
	content := "null"
	if text != "" {
		c, _ := json.Marshal(text)
		content = string(c)
	}
	return `{"id":"chatcmpl-demo","object":"chat.completion","created":` + fmt.Sprint(time.Now().Unix()) +
		`,"model":"demo-model","choices":[{"index":0,"message":{"role":"assistant","content":` + content +
		`,"tool_calls":[{"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":` + string(a) +
		`}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120}}`
}

// demoMerchant is the merchant backend receiving signed webhooks.
type demoMerchant struct {
	mu     sync.Mutex
	events []string // "type order_no"
	seen   chan struct{}
}

func (m *demoMerchant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(demoSecret, r.Header.Get("X-Paygate-Signature"), b, time.Now(), 5*time.Minute); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	ev := gjson.ParseBytes(b)
	m.mu.Lock()
	m.events = append(m.events, ev.Get("type").Str+" "+ev.Get("data.order.order_no").Str)
	m.mu.Unlock()
	select {
	case m.seen <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (m *demoMerchant) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.events...)
}

// demoResult is what a demo run did, for its test.
type demoResult struct {
	upstream *demoUpstream
	merchant *demoMerchant
	app      *app
	orderNo  string
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprintln(stdout, "paygate demo: play a purchase offline (scripted model, WeChat Pay simulator); it takes no arguments")
		return 0
	}
	if len(args) > 0 {
		fmt.Fprintln(stderr, "paygate demo takes no arguments")
		return 2
	}
	// Ctrl-C (SIGINT) or SIGTERM ends the demo's run, whose deferred
	// cleanup removes its temp dir, and then the process as the signal
	// does (dieOf); left to their default they killed it at once, the dir
	// and its store file left behind. A second one ends it at once, as
	// serve's does.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// So does a reader of its transcript gone away (`paygate demo | head`):
	// the broken pipe's SIGPIPE at the next write killed it, the dir left.
	// Asked for, SIGPIPE no longer kills it; what ends the demo is its own
	// output's write failing with EPIPE, not the signal, which Go delivers
	// for any descriptor (a loopback connection of its proxy, model or
	// merchant reset mid-write would have ended a demo still read). The
	// signals are left unread. Only INT or TERM is the second signal that
	// ends it at once.
	sigpipes := make(chan os.Signal, 1)
	signal.Notify(sigpipes, syscall.SIGPIPE)
	defer signal.Stop(sigpipes)
	out := &pipeWriter{w: stdout, gone: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	caught := make(chan os.Signal, 1)
	ran := make(chan struct{})
	defer close(ran)
	go func() {
		select {
		case sig := <-sigs:
			caught <- sig
			cancel()
		case <-out.gone:
			caught <- syscall.SIGPIPE
			cancel()
		case <-ran:
			return
		}
		select {
		case sig := <-sigs:
			dieOf(sig.(syscall.Signal))
		case <-ran:
		}
	}()
	_, err := runDemo(ctx, out)
	select {
	case sig := <-caught:
		if sig != syscall.SIGPIPE { // a pipeline's end needs no word
			fmt.Fprintln(stderr, "demo: stopped by", sig)
		}
		dieOf(sig.(syscall.Signal))
	default:
	}
	if out.broken() {
		// Its last line's write broke the pipe after the run's last
		// step, before the watcher saw it: the end is the pipe's all the
		// same.
		dieOf(syscall.SIGPIPE)
	}
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

// pipeWriter is the demo's output: a write that fails with EPIPE (its
// reader gone) closes gone, once.
type pipeWriter struct {
	w    io.Writer
	once sync.Once
	gone chan struct{}
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		p.once.Do(func() { close(p.gone) })
	}
	return n, err
}

// broken reports whether a write has met the reader gone.
func (p *pipeWriter) broken() bool {
	select {
	case <-p.gone:
		return true
	default:
		return false
	}
}

// listen serves h on a loopback port and returns its URL and a stop func.
func listen(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func runDemo(ctx context.Context, out io.Writer) (*demoResult, error) {
	dir, err := os.MkdirTemp("", "paygate-demo-")
	if err != nil {
		// os's error names a path alone ("stat /x: no such file or
		// directory"): say what it was for and which setting chose it.
		return nil, fmt.Errorf("making its store's temp dir under %s (TMPDIR): %w", os.TempDir(), err)
	}
	defer os.RemoveAll(dir)
	res := &demoResult{upstream: &demoUpstream{}, merchant: &demoMerchant{seen: make(chan struct{}, 1)}}
	upURL, stopUp, err := listen(res.upstream)
	if err != nil {
		return nil, err
	}
	defer stopUp()
	merchantURL, stopMerchant, err := listen(res.merchant)
	if err != nil {
		return nil, err
	}
	defer stopMerchant()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	base := "http://" + ln.Addr().String()
	src := `
server: {listen: "` + ln.Addr().String() + `", admin_listen: "off"}
clients: [{name: demo-bot, key: ` + demoClientKey + `}]
store: {path: "` + filepath.Join(dir, "paygate.db") + `"}
providers: [{name: scripted, base_url: "` + upURL + `/v1", api_key: sk-demo-upstream}]
models: [{name: gpt-4o, targets: [{provider: scripted, model: demo-model}]}]
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
webhooks: {url: "` + merchantURL + `/hooks", secret: ` + demoSecret + `}
`
	cfg, err := config.Parse([]byte(src), "demo", func(string) (string, bool) { return "", false })
	if err != nil {
		ln.Close()
		return nil, err
	}
	a, err := newApp(cfg, io.Discard, base+"/wechatpay/notify", withoutLeftStoreCheck())
	if err != nil {
		ln.Close()
		return nil, err
	}
	defer a.close()
	res.app = a
	srv := &http.Server{Handler: a.server.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("paygate demo — a purchase played through the real proxy, offline.")
	p("  scripted model at %s, WeChat Pay simulator, embedded store in %s, merchant webhooks at %s", upURL, dir, merchantURL)
	p("")

	var history []map[string]any
	say := func(text string) (gjson.Result, error) {
		history = append(history, map[string]any{"role": "user", "content": text})
		p("user:  %s", text)
		body, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": history})
		ans, err := demoPost(ctx, base+"/v1/chat/completions", body)
		if err != nil {
			return ans, err
		}
		content := ans.Get("choices.0.message.content").Str
		history = append(history, map[string]any{"role": "assistant", "content": content})
		p("model: %s", content)
		ans.Get("paygate.actions").ForEach(func(_, a gjson.Result) bool {
			switch a.Get("type").Str {
			case "order_created":
				p("  [paygate] order_created: %s, %d fen, %s; request_payment.package=%s",
					a.Get("order.order_no").Str, a.Get("order.amount_fen").Int(), a.Get("order.status").Str, a.Get("request_payment.package").Str)
			case "payment_confirmed":
				p("  [paygate] payment_confirmed: %s is %s", a.Get("order.order_no").Str, a.Get("order.status").Str)
			case "refund_proposed":
				p("  [paygate] refund_proposed: %q → POST %s", a.Get("refund.label").Str, a.Get("refund.confirm_url").Str)
			default:
				p("  [paygate] %s", a.Raw)
			}
			return true
		})
		if r := ans.Get("paygate.rounds"); r.Exists() {
			p("  [paygate] %d upstream rounds: %s", len(r.Array()), r.Raw)
		}
		return ans, nil
	}

	ans, err := say("Hi! I'd like premium for a month.")
	if err != nil {
		return nil, err
	}
	res.orderNo = ans.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
	if res.orderNo == "" {
		return nil, errors.New("the model's create_order produced no order")
	}
	p("")
	p("[WeChat Pay] the user pays %s; the simulator sends a signed, encrypted notification to %s/wechatpay/notify", res.orderNo, base)
	d, err := a.sim.Pay(ctx, res.orderNo)
	if err != nil {
		return nil, err
	}
	p("[WeChat Pay] notification %s acknowledged by paygate: HTTP %d", d.ID, d.LastStatus)
	p("")
	if _, err := say("Did my payment go through?"); err != nil {
		return nil, err
	}
	rounds := res.upstream.requestBodies()
	state := gjson.Get(rounds[len(rounds)-1], `messages.#(role=="system").content`).Str
	p("  [paygate] state message injected before the user's last message:")
	for _, line := range strings.Split(state, "\n") {
		p("    | %s", line)
	}
	p("")
	ans, err = say("Actually, I'd like a refund.")
	if err != nil {
		return nil, err
	}
	confirm := ans.Get(`paygate.actions.#(type=="refund_proposed").refund.confirm_url`).Str
	if confirm == "" {
		return nil, errors.New("no refund proposal")
	}
	p("user:  (taps Confirm) POST %s", confirm)
	cr, err := demoPost(ctx, base+confirm, nil)
	if err != nil {
		return nil, err
	}
	p("  [paygate] refund %s: %s, order %s", cr.Get("refund.refund_id").Str, cr.Get("refund.status").Str, cr.Get("order.status").Str)
	outRefundNo := payments.OutRefundNo(cr.Get("refund.refund_id").Str)
	rd, err := a.sim.CompleteRefund(ctx, outRefundNo)
	if err != nil {
		return nil, err
	}
	p("[WeChat Pay] refund %s completed; REFUND.SUCCESS notification acknowledged: HTTP %d", outRefundNo, rd.LastStatus)

	want := []string{"order.paid", "refund.proposed", "refund.succeeded"}
	deadline := time.After(10 * time.Second)
	for !hasAll(res.merchant.list(), want) {
		select {
		case <-res.merchant.seen:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, fmt.Errorf("merchant webhooks: got %v; want %v", res.merchant.list(), want)
		}
	}
	p("")
	p("merchant backend received signed webhooks (signature verified):")
	for _, e := range res.merchant.list() {
		p("  %s", e)
	}
	p("")
	p("upstream rounds: %d; WeChat Pay prepays for %s: %d", len(res.upstream.requestBodies()), res.orderNo, a.sim.Prepays(res.orderNo))
	return res, nil
}

func hasAll(got []string, want []string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, w+" ") {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (d *demoUpstream) requestBodies() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.rounds...)
}

// demoPost is the bot: a client-key request for the demo user.
func demoPost(ctx context.Context, url string, body []byte) (gjson.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return gjson.Result{}, err
	}
	req.Header.Set("Authorization", "Bearer "+demoClientKey)
	req.Header.Set("X-WeChat-OpenID", demoOpenID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return gjson.Result{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return gjson.Result{}, fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	return gjson.ParseBytes(b), nil
}
