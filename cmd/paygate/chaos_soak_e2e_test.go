package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// The chaos soak's catalog: what each SKU costs in fen.
var soakPrices = map[string]int64{"premium-monthly": 4999, "premium-yearly": 49900, "addon-pack": 990}

// soakSeed is the soak's seed: PAYGATE_SOAK_SEED when set (to replay a
// failure), the clock otherwise. A failed run prints it.
func soakSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PAYGATE_SOAK_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PAYGATE_SOAK_SEED %q: %v", s, err)
		}
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos soak failed; replay with PAYGATE_SOAK_SEED=%d", seed)
		}
	})
	return seed
}

// soakSteps is the number of steps each worker takes: PAYGATE_SOAK_STEPS,
// or a size CI runs in seconds.
func soakSteps(t *testing.T) int {
	if s := os.Getenv("PAYGATE_SOAK_STEPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PAYGATE_SOAK_STEPS %q", s)
		}
		return n
	}
	return 12
}

// soakProvider is the model of the soak: the user's last message names the
// tool call to make ("CALL <tool> <json arguments>", with " CUT" when the
// stream is to break after the call's arguments and before its finish);
// a tool result is answered with a line of text. It speaks SSE when asked
// to stream and a chat.completion otherwise.
func soakProvider(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		stream := gjson.GetBytes(body, "stream").Bool()
		last := gjson.GetBytes(body, "messages.@reverse.0")
		tool, args, cut := "", "", false
		if last.Get("role").Str == "user" {
			f := strings.SplitN(last.Get("content").Str, " ", 3)
			if len(f) == 3 && f[0] == "CALL" {
				tool, args = f[1], f[2]
				if a, ok := strings.CutSuffix(args, " CUT"); ok {
					args, cut = a, true
				}
			}
		}
		if !stream {
			w.Header().Set("Content-Type", "application/json")
			if tool == "" {
				_, _ = io.WriteString(w, `{"id":"chatcmpl-S2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Done."},"finish_reason":"stop"}]}`)
				return
			}
			a, _ := json.Marshal(args)
			_, _ = io.WriteString(w, `{"id":"chatcmpl-S1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"id":"call_s1","type":"function","function":{"name":"`+tool+`","arguments":`+string(a)+`}}]},"finish_reason":"tool_calls"}]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		const head = `{"id":"chatcmpl-S","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
		send := func(c string) {
			_, _ = io.WriteString(w, "data: "+head+c+"]}\n\n")
			w.(http.Flusher).Flush()
		}
		if tool == "" {
			send(`{"index":0,"delta":{"role":"assistant","content":"Done."},"finish_reason":null}`)
			send(`{"index":0,"delta":{},"finish_reason":"stop"}`)
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		a, _ := json.Marshal(args)
		half := len(a) / 2
		send(`{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_s1","type":"function","function":{"name":"` + tool + `","arguments":""}}]},"finish_reason":null}`)
		first, _ := json.Marshal(args[:max(half-1, 0)])
		rest, _ := json.Marshal(args[max(half-1, 0):])
		send(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + string(first) + `}}]},"finish_reason":null}`)
		send(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + string(rest) + `}}]},"finish_reason":null}`)
		if cut {
			panic(http.ErrAbortHandler) // the connection breaks before the finish
		}
		send(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`)
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// soakSim is the one WeChat Pay of the soak, shared by the replicas the way
// the real one is: each replica's client is configured for it (the
// wechatpay backend, key files and all), its notifications go through a
// balancer that hands each to a replica the seed picks, sometimes to both
// at once, and sometimes drops the answer after the replica took it in, so
// WeChat Pay sends it again.
type soakSim struct {
	*wxsim.Server
	api, notify *httptest.Server
	keyFile     string
	pubFile     string
	apiv3       string

	mu       sync.Mutex
	rng      *rand.Rand
	replicas []string
	past     []soakNote // notifications seen, replayed late and out of order
}

// soakNote is one notification as WeChat Pay sent it.
type soakNote struct {
	path   string
	header http.Header
	body   []byte
}

func newSoakSim(t *testing.T, seed uint64) *soakSim {
	t.Helper()
	keys, err := wxsim.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	s := &soakSim{apiv3: "0123456789abcdef0123456789abcdef", rng: rand.New(rand.NewPCG(seed, 7))}
	s.Server, err = wxsim.New(wxsim.Options{
		Keys: keys, APIv3Key: s.apiv3, NotifyAttempts: 8, NotifyRetry: 5 * time.Millisecond,
		HTTPClient: &http.Client{Timeout: 20 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.api = httptest.NewServer(s.Server)
	t.Cleanup(s.api.Close)
	s.notify = httptest.NewServer(http.HandlerFunc(s.balance))
	t.Cleanup(s.notify.Close)

	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(keys.MerchantKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&keys.PayKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s.keyFile, s.pubFile = filepath.Join(dir, "apiclient_key.pem"), filepath.Join(dir, "pub_key.pem")
	writeFile(t, s.keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	writeFile(t, s.pubFile, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	return s
}

// wechatpayYAML is the payments.wechatpay section naming the shared simulator.
func (s *soakSim) wechatpayYAML() string {
	k := s.Keys()
	return `  backend: wechatpay
  wechatpay:
    api_base: "` + s.api.URL + `"
    mch_id: "1900000001"
    app_id: wxd930ea5d5a258f4f
    mch_cert_serial: ` + k.MerchantSerial + `
    mch_private_key_file: ` + s.keyFile + `
    apiv3_key: "` + s.apiv3 + `"
    public_key_id: ` + k.PublicKeyID + `
    public_key_file: ` + s.pubFile + `
    notify_url: "` + s.notify.URL + `/wechatpay/notify"
`
}

// balance forwards one notification: to one replica, or to both at once;
// now and then the replica's answer is lost (the sender sees a 502, and
// sends it again), and now and then an older notification is sent again
// after it, late and out of order, as WeChat Pay's retries arrive.
func (s *soakSim) balance(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	note := soakNote{path: r.URL.Path, header: r.Header.Clone(), body: body}
	s.mu.Lock()
	targets := []string{s.replicas[s.rng.IntN(len(s.replicas))]}
	if s.rng.IntN(4) == 0 {
		targets = s.replicas
	}
	drop := s.rng.IntN(5) == 0
	var late *soakNote
	if len(s.past) > 0 && s.rng.IntN(4) == 0 {
		late = &s.past[s.rng.IntN(len(s.past))]
	}
	lateTo := s.replicas[s.rng.IntN(len(s.replicas))]
	s.past = append(s.past, note)
	s.mu.Unlock()
	statuses := make([]int, len(targets))
	var wg sync.WaitGroup
	for i, u := range targets {
		wg.Go(func() { statuses[i] = forwardNote(r.Context(), u, note) })
	}
	wg.Wait()
	if late != nil {
		forwardNote(r.Context(), lateTo, *late)
	}
	st := statuses[0]
	for _, c := range statuses {
		if c/100 == 2 {
			st = c
		}
	}
	if drop {
		st = http.StatusBadGateway
	}
	w.WriteHeader(st)
}

// forwardNote POSTs n to the replica at base and returns its status (502
// when it did not answer).
func forwardNote(ctx context.Context, base string, n soakNote) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+n.path, bytes.NewReader(n.body))
	req.Header = n.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return http.StatusBadGateway
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// soakMerchant is the merchant's webhook endpoint: it counts distinct
// event ids per (type, order) and answers 204.
type soakMerchant struct {
	*httptest.Server
	mu     sync.Mutex
	events map[string]map[string]bool // type + " " + order_no -> event ids
}

func newSoakMerchant(t *testing.T) *soakMerchant {
	m := &soakMerchant{events: map[string]map[string]bool{}}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(testWebhookSecret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook with a bad signature: %v", err)
		}
		var env webhook.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		no, _ := env.Data.Order["order_no"].(string)
		k := env.Type + " " + no
		m.mu.Lock()
		if m.events[k] == nil {
			m.events[k] = map[string]bool{}
		}
		m.events[k][env.ID] = true
		m.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *soakMerchant) ids(typ, no string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events[typ+" "+no])
}

// soakReplica is one replica of the soak.
type soakReplica struct {
	url, admin string
	app        *app
}

// TestChaosSoak drives two replicas on one Redis and one WeChat Pay the way
// production does, with faults: a few users' bots buy, query and ask
// refunds in concurrent turns, streamed and not, some cut mid-stream, some
// hung up on, some retried at the other replica; the users pay, confirm
// and cancel refunds (double taps on both replicas); a manager approves and
// rejects large orders; WeChat Pay fails some calls, loses some answers
// after acting, and sends notifications twice, late, out of order and to
// both replicas. After everything settles the money invariants hold: no
// purchase paid twice, every charge the catalog price × quantity and
// agreeing with WeChat Pay's ledger, refunds confirmed and within what was
// paid, nothing stuck, every notification taken in, the audit chain whole
// with every payment and refund in it once, every payment's webhook event
// once.
//
// The seed (printed on failure; PAYGATE_SOAK_SEED replays it) fixes every
// worker's choices and the balancer's, not the goroutines' interleaving:
// a replay repeats the scenario, and usually the failure. PAYGATE_SOAK_STEPS
// sizes the run (CI's default takes seconds); PAYGATE_SOAK_LOG=1 prints the
// replicas' log.
func TestChaosSoak(t *testing.T) {
	if !slices.Contains(testdrivers.Names(t), "redis") {
		t.Skip("needs Redis: the replicas share the store through it")
	}
	seed := soakSeed(t)
	steps := soakSteps(t)
	t.Logf("seed %d, %d steps per worker", seed, steps)

	sim := newSoakSim(t, seed)
	up := soakProvider(t)
	merchant := newSoakMerchant(t)
	storeYAML := webhookStoreYAML(t, "redis")
	// The payments services' clock: moved past the reconciler's waits
	// (CreatingGrace, the late-refund query) once the traffic stopped.
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	var reps []soakReplica
	for range 2 {
		src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
` + storeYAML + `
admin: {token: ` + testAdminToken + `}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
webhooks: {url: "` + merchant.URL + `", secret: ` + testWebhookSecret + `}
payments:
` + sim.wechatpayYAML() + `
  rules: {approval_above: "500.00", max_payment_calls_per_minute: 10000, max_orders_per_user_per_day: 10000}
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
    - {sku: addon-pack, name: "Add-on pack", price: "9.90", max_quantity: 5}
`
		var logOut io.Writer = io.Discard
		if os.Getenv("PAYGATE_SOAK_LOG") != "" { // the replicas' JSON log, to read a failure by
			logOut = os.Stderr
		}
		url, a := serveConfig(t, src, logOut, withPaymentsClock(clock), withWebhookOptions(func(o *webhook.Options) {
			o.PollInterval = 10 * time.Millisecond
		}))
		admin := httptest.NewServer(a.adminHandler())
		t.Cleanup(admin.Close)
		reps = append(reps, soakReplica{url: url, admin: admin.URL, app: a})
	}
	sim.mu.Lock()
	sim.replicas = []string{reps[0].url, reps[1].url}
	sim.mu.Unlock()

	ctx := context.Background()
	st := reps[0].app.store
	users := []string{"oSoakUser0001", "oSoakUser0002", "oSoakUser0003", "oSoakUser0004"}
	skus := []string{"premium-monthly", "premium-yearly", "addon-pack"}
	var (
		mu           sync.Mutex
		confirmed    = map[string]bool{} // refund ids a confirm was answered 200 for
		timeoutsLeft = 2                 // FaultTimeout costs an attempt timeout: keep it rare
	)
	var wg sync.WaitGroup
	for w := range 8 {
		rng := rand.New(rand.NewPCG(seed, uint64(w)+100))
		user := users[w%len(users)]
		wg.Go(func() {
			for range steps {
				rep := reps[rng.IntN(2)]
				other := reps[1-slices.IndexFunc(reps, func(r soakReplica) bool { return r.url == rep.url })]
				switch k := rng.IntN(10); {
				case k < 3: // buy, sometimes cut mid-stream and retried
					sku := skus[rng.IntN(len(skus))]
					args := fmt.Sprintf(`{"sku":%q,"quantity":%d}`, sku, 1+rng.IntN(2))
					stream := rng.IntN(2) == 0
					msg := "CALL create_order " + args
					switch {
					case stream && rng.IntN(3) == 0: // the provider's stream breaks
						soakTurn(t, rep.url, user, msg+" CUT", true)
					case rng.IntN(4) == 0: // the bot hangs up after the first bytes
						soakHangUp(t, rep.url, user, msg)
					}
					soakTurn(t, rep.url, user, msg, stream)
					if rng.IntN(3) == 0 { // the bot timed out and retries at the other replica
						soakTurn(t, other.url, user, msg, !stream)
					}
				case k < 5: // the user pays one of their payable orders
					if no := soakPick(t, st, user, rng, store.StatusAwaitingPayment); no != "" {
						if _, err := sim.Pay(ctx, no); err != nil && !errors.Is(err, wxsim.ErrNotPayable) {
							t.Errorf("pay %s: %v", no, err)
						}
					}
				case k < 6: // query through the model
					if no := soakPick(t, st, user, rng); no != "" {
						soakTurn(t, rep.url, user, `CALL query_order {"order_no":"`+no+`"}`, rng.IntN(2) == 0)
					}
				case k < 8: // a refund asked, then confirmed, cancelled or double-tapped
					no := soakPick(t, st, user, rng, store.StatusPaid, store.StatusPartiallyRefunded)
					if no == "" {
						continue
					}
					amt := ""
					if rng.IntN(2) == 0 {
						amt = `,"amount":"` + []string{"1.00", "9.90", "5.00"}[rng.IntN(3)] + `"`
					}
					ans := soakTurn(t, rep.url, user, `CALL request_refund {"order_no":"`+no+`","reason":"soak"`+amt+`}`, false)
					id := ans.Get(`paygate.actions.#(type=="refund_proposed").refund.refund_id`).Str
					if id == "" {
						continue
					}
					var taps []string
					switch rng.IntN(4) {
					case 0:
						taps = []string{"confirm"}
					case 1:
						taps = []string{"cancel"}
					case 2:
						taps = []string{"confirm", "confirm"}
					default:
						taps = []string{"confirm", "cancel"}
					}
					var tw sync.WaitGroup
					for i, tap := range taps {
						r := reps[(i+rng.IntN(2))%2]
						tw.Go(func() {
							if tap == "confirm" {
								mu.Lock()
								confirmed[id] = true
								mu.Unlock()
							}
							soakPost(t, r.url+"/v1/paygate/refunds/"+id+"/"+tap, "Bearer "+e2eClientKey, user)
						})
					}
					tw.Wait()
					if rng.IntN(2) == 0 {
						if _, err := sim.CompleteRefund(ctx, payments.OutRefundNo(id)); err != nil &&
							!errors.Is(err, wxsim.ErrUnknownRefund) && !errors.Is(err, wxsim.ErrNotProcessing) {
							t.Errorf("complete refund %s: %v", id, err)
						}
					}
				case k < 9: // a manager decides a held order, sometimes at both replicas at once
					no := soakPick(t, st, "", rng, store.StatusApprovalRequired)
					if no == "" {
						continue
					}
					decisions := []string{[]string{"approve", "reject"}[rng.IntN(2)]}
					if rng.IntN(2) == 0 {
						decisions = append(decisions, []string{"approve", "reject"}[rng.IntN(2)])
					}
					var dw sync.WaitGroup
					for i, d := range decisions {
						r := reps[i%2]
						dw.Go(func() {
							soakPost(t, r.admin+"/admin/api/approvals/"+no+"/"+d, "Bearer "+testAdminToken, "")
						})
					}
					dw.Wait()
				default: // WeChat Pay misbehaves on one of the next calls
					kinds := []wxsim.FaultKind{wxsim.FaultHTTP500, wxsim.FaultSystemError, wxsim.FaultFrequencyLimited, wxsim.FaultBadResponseSignature}
					mu.Lock()
					if timeoutsLeft > 0 && rng.IntN(3) == 0 {
						timeoutsLeft--
						kinds = []wxsim.FaultKind{wxsim.FaultTimeout}
					}
					mu.Unlock()
					ops := []string{"prepay", "query", "close", "refund", "refund-query"}
					op := ops[rng.IntN(len(ops))]
					kind := kinds[rng.IntN(len(kinds))]
					if op == "close" && rng.IntN(2) == 0 {
						kind = wxsim.FaultOrderPaid // the payer paid as paygate closed it
					}
					sim.InjectFault(wxsim.Fault{Op: op, Kind: kind})
				}
			}
		})
	}
	wg.Wait()

	// Quiesce: WeChat Pay finishes every refund it holds; a fault still
	// queued is spent by sweeps; sweeps run until no order changes.
	soakSettle(t, sim, reps, &skew)

	orders, err := st.ListOrders(ctx, store.OrderFilter{Client: "bot", Limit: store.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	paidN, refundedN := 0, 0
	for _, o := range orders {
		if !o.PaidAt.IsZero() {
			paidN++
		}
		refundedN += len(o.RefundNos)
	}
	t.Logf("%d orders (%d paid), %d refunds confirmed (%d made), %d WeChat Pay requests", len(orders), paidN, len(confirmed), refundedN, len(sim.Requests()))
	soakCheck(t, sim, reps, merchant, orders, confirmed)
}

// soakTurn sends one chat turn (streamed or not) and returns the non-stream
// answer (the zero Result for a stream or a failed turn: the soak's
// invariants are checked on the state it leaves, not on each answer).
func soakTurn(t *testing.T, url, user, content string, stream bool) gjson.Result {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": "gpt-4o", "stream": stream,
		"messages": []map[string]string{{"role": "user", "content": content}},
	})
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("X-WeChat-OpenID", user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("turn %q: %v", content, err)
		return gjson.Result{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 5 && resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("turn %q: %d %s", content, resp.StatusCode, b)
	}
	if stream || resp.StatusCode != http.StatusOK {
		return gjson.Result{}
	}
	return gjson.ParseBytes(b)
}

// soakHangUp sends a streamed turn and hangs up once its first bytes came.
func soakHangUp(t *testing.T, url, user, content string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": "gpt-4o", "stream": true,
		"messages": []map[string]string{{"role": "user", "content": content}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("X-WeChat-OpenID", user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("turn %q: %v", content, err)
		return
	}
	var one [1]byte
	_, _ = resp.Body.Read(one[:])
	cancel()
	resp.Body.Close()
}

// soakPost POSTs with no body and returns the status and answer.
func soakPost(t *testing.T, url, auth, user string) (int, gjson.Result) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	req.Header.Set("Authorization", auth)
	if user != "" {
		req.Header.Set("X-WeChat-OpenID", user)
	}
	req.Header.Set(console.CSRFHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return 0, gjson.Result{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusInternalServerError {
		t.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return resp.StatusCode, gjson.ParseBytes(b)
}

// soakPick picks one of user's (any user's for "") orders in one of the
// statuses (any for none), "" when there is none.
func soakPick(t *testing.T, st store.Store, user string, rng *rand.Rand, statuses ...store.OrderStatus) string {
	t.Helper()
	f := store.OrderFilter{Client: "bot", User: user, Limit: store.MaxListLimit}
	orders, err := st.ListOrders(context.Background(), f)
	if err != nil {
		t.Errorf("list orders: %v", err)
		return ""
	}
	var nos []string
	for _, o := range orders {
		if len(statuses) == 0 || slices.Contains(statuses, o.Status) {
			nos = append(nos, o.OrderNo)
		}
	}
	slices.Sort(nos)
	if len(nos) == 0 {
		return ""
	}
	return nos[rng.IntN(len(nos))]
}

// soakSettle brings the system to rest: refunds WeChat Pay holds are
// completed, the payments clock moves past the reconciler's waits and
// sweeps run at both replicas until three clean ones change nothing,
// the audit workers and the webhook outbox drain.
func soakSettle(t *testing.T, sim *soakSim, reps []soakReplica, skew *atomic.Int64) {
	t.Helper()
	ctx := context.Background()
	st := reps[0].app.store
	snapshot := func() string {
		orders, err := st.ListOrders(ctx, store.OrderFilter{Client: "bot", Limit: store.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, o := range orders {
			fmt.Fprintf(&b, "%s %s %d %v|", o.OrderNo, o.Status, o.RefundedFen, o.RefundNos)
		}
		return b.String()
	}
	prev, stable := "", 0
	for round := 0; stable < 3; round++ {
		if round == 30 {
			t.Fatalf("the orders still change after %d sweeps: %s", round, prev)
		}
		for _, r := range sim.Requests() {
			if r.Op == "refund" && r.OutRefundNo != "" {
				_, _ = sim.CompleteRefund(ctx, r.OutRefundNo)
			}
		}
		skew.Add(int64(2 * time.Minute))
		errs := 0
		for _, r := range reps {
			sw, err := r.app.payments.Sweep(ctx)
			if err != nil {
				errs++
			}
			errs += sw.Errors
		}
		// A sweep that met a fault still queued at WeChat Pay changed
		// nothing and proves nothing: only clean sweeps count.
		if cur := snapshot(); cur == prev && errs == 0 {
			stable++
		} else {
			stable, prev = 0, cur
		}
	}
	awaitCondition(t, "the webhook outbox to drain", 90*time.Second, func() bool {
		s, err := st.OutboxStats(ctx)
		return err == nil && s.Pending == 0
	})
}

// soakCheck checks the money invariants on the state the soak left.
func soakCheck(t *testing.T, sim *soakSim, reps []soakReplica, merchant *soakMerchant, orders []*store.Order, confirmed map[string]bool) {
	t.Helper()
	ctx := context.Background()
	kept := func(s store.OrderStatus) bool {
		return s == store.StatusPaid || s == store.StatusRefunding || s == store.StatusPartiallyRefunded || s == store.StatusNeedsReview
	}
	byPurchase := map[string][]string{}
	var paid []*store.Order
	for _, o := range orders {
		switch o.Status {
		case store.StatusCreating, store.StatusRefunding, store.StatusNeedsReview:
			t.Errorf("order %s left %s after the sweeps settled: %+v", o.OrderNo, o.Status, o)
		}
		if want := soakPrices[o.SKU] * int64(o.Quantity); o.AmountFen != want {
			t.Errorf("order %s: %d fen for %d × %s; want %d", o.OrderNo, o.AmountFen, o.Quantity, o.SKU, want)
		}
		if o.RefundedFen > o.AmountFen || o.RefundedFen < 0 {
			t.Errorf("order %s: refunded %d of %d fen", o.OrderNo, o.RefundedFen, o.AmountFen)
		}
		for _, rn := range o.RefundNos {
			if !slices.ContainsFunc(slices.Collect(maps.Keys(confirmed)), func(id string) bool { return payments.OutRefundNo(id) == rn }) {
				t.Errorf("order %s: refund %s counted, but its user never tapped confirm", o.OrderNo, rn)
			}
		}
		if kept(o.Status) {
			k := o.User + " " + o.SKU + " " + strconv.Itoa(o.Quantity)
			byPurchase[k] = append(byPurchase[k], o.OrderNo)
		}
		if !o.PaidAt.IsZero() {
			paid = append(paid, o)
		}

		tx, atWeChat := sim.Order(o.OrderNo)
		charged := atWeChat && (tx.TradeState == "SUCCESS" || tx.TradeState == "REFUND")
		if charged != !o.PaidAt.IsZero() {
			t.Errorf("order %s: %s at paygate (paid at %v), %s at WeChat Pay", o.OrderNo, o.Status, o.PaidAt, tx.TradeState)
		}
		if charged && tx.Amount.Total != o.AmountFen {
			t.Errorf("order %s: WeChat Pay charged %d fen, paygate recorded %d", o.OrderNo, tx.Amount.Total, o.AmountFen)
		}
	}
	for k, nos := range byPurchase {
		if len(nos) > 1 {
			t.Errorf("purchase %s paid and kept %d times: %v", k, len(nos), nos)
		}
	}
	// Every charge WeChat Pay made is an order paygate knows of, and its
	// refunds are the ones paygate counted.
	seen := map[string]bool{}
	refundedAt := map[string]int64{}
	for _, r := range sim.Requests() {
		if r.OutTradeNo != "" && !seen[r.OutTradeNo] {
			seen[r.OutTradeNo] = true
			if tx, ok := sim.Order(r.OutTradeNo); ok && tx.TradeState == "SUCCESS" &&
				!slices.ContainsFunc(orders, func(o *store.Order) bool { return o.OrderNo == r.OutTradeNo }) {
				t.Errorf("WeChat Pay charged %s, an order paygate does not hold", r.OutTradeNo)
			}
		}
		if r.Op == "refund" && r.OutRefundNo != "" && !seen["r "+r.OutRefundNo] {
			seen["r "+r.OutRefundNo] = true
			if rf, ok := sim.Refund(r.OutRefundNo); ok && rf.Status == "SUCCESS" {
				refundedAt[rf.OutTradeNo] += rf.Amount.Refund
			}
		}
	}
	for _, o := range orders {
		if refundedAt[o.OrderNo] != o.RefundedFen {
			t.Errorf("order %s: WeChat Pay refunded %d fen, paygate counted %d (%v)", o.OrderNo, refundedAt[o.OrderNo], o.RefundedFen, o.RefundNos)
		}
	}

	// Every notification WeChat Pay sent was taken in at last: one refused
	// each of its attempts would leave a payment learnt only by querying.
	// (The balancer loses one answer in five: eight attempts all lost is
	// a chance in 390,625 per notification.)
	for _, d := range sim.Deliveries() {
		if !d.Acked {
			t.Errorf("notification %s %s of %s %s not acknowledged after %d attempts: last %d %s", d.ID, d.EventType, d.OutTradeNo, d.OutRefundNo, d.Attempts, d.LastStatus, d.Err)
		}
	}

	// Audit: the chain verifies and holds each payment once.
	paidIn, refundIn := map[string]int{}, map[string]int{}
	refundOf := map[string]string{} // out_refund_no -> refund id
	for id := range confirmed {
		refundOf[payments.OutRefundNo(id)] = id
	}
	awaitCondition(t, "every payment in the audit chain", 30*time.Second, func() bool {
		for _, r := range reps {
			r.app.audit.worker.Wake()
		}
		var b strings.Builder
		if _, err := audit.Export(ctx, reps[0].app.store, &b, audit.ExportOptions{}); err != nil {
			return false
		}
		clear(paidIn)
		clear(refundIn)
		for l := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
			e := gjson.Parse(l)
			switch act := e.Get("body.action").Str; act {
			case "order.paid":
				paidIn[e.Get("body.order_no").Str]++
			case "refund.confirmed", "refund.succeeded", "refund.cancelled":
				refundIn[act+" "+e.Get("body.refund_id").Str]++
			}
		}
		for _, o := range paid {
			if paidIn[o.OrderNo] == 0 {
				return false
			}
			for _, rn := range o.RefundNos {
				if refundIn["refund.succeeded "+refundOf[rn]] == 0 {
					return false
				}
			}
		}
		return true
	})
	// Every refund WeChat Pay made was confirmed by its user, once, and
	// recorded as it succeeded, once; none was both confirmed and cancelled.
	for _, o := range paid {
		for _, rn := range o.RefundNos {
			id := refundOf[rn]
			if n := refundIn["refund.confirmed "+id]; n != 1 {
				t.Errorf("order %s: refund %s (%s) has %d refund.confirmed audit records; want 1", o.OrderNo, rn, id, n)
			}
			if n := refundIn["refund.succeeded "+id]; n != 1 {
				t.Errorf("order %s: refund %s has %d refund.succeeded audit records; want 1", o.OrderNo, rn, n)
			}
		}
	}
	for id := range confirmed {
		if refundIn["refund.confirmed "+id] > 0 && refundIn["refund.cancelled "+id] > 0 {
			t.Errorf("refund %s recorded both confirmed and cancelled", id)
		}
	}
	if _, err := audit.Verify(ctx, reps[1].app.store, audit.VerifyOptions{}); err != nil {
		t.Errorf("audit verify: %v", err)
	}
	for _, o := range paid {
		if n := paidIn[o.OrderNo]; n != 1 {
			t.Errorf("order %s: %d order.paid audit records; want 1", o.OrderNo, n)
		}
		if n := merchant.ids(webhook.TypeOrderPaid, o.OrderNo); n != 1 {
			t.Errorf("order %s: %d distinct order.paid webhook events; want 1", o.OrderNo, n)
		}
	}
}
