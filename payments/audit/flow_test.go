package audit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

var simKeys = sync.OnceValues(wxsim.GenerateKeys)

// TestTransitionsReachTheChain: a purchase made by a turn (payments.WithTurn)
// and paid through a WeChat Pay notification leaves one record per transition,
// the turn's messages, provider, model and sampling parameters on the records
// the turn caused, and the notification id on the payment's record.
func TestTransitionsReachTheChain(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			w := newTestWorker(t, st, nil)
			svc, sim := simService(t, st, w, payments.Options{Events: TransitionEvents})

			body := []byte(`{"model":"gpt-4o","temperature":0.2,"top_p":0.9,"seed":7,"stop":["END"],"max_tokens":300,` +
				`"messages":[{"role":"system","content":"You sell plans."},{"role":"user","content":"I want the monthly plan"}]}`)
			turn := TurnFromRequest("shop-bot", "oAlice", body, "openrouter", "openai/gpt-4o")
			ctx := payments.WithTurn(context.Background(), turn)
			res, err := svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: "oAlice", SKU: "premium-monthly"})
			if err != nil {
				t.Fatalf("create order: %v", err)
			}
			d, err := sim.Pay(context.Background(), res.Order.OrderNo)
			if err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			if got := drainAll(t, w); got != 3 {
				t.Fatalf("drained %d records; want 3 (created, awaiting_payment, paid)", got)
			}
			_, recs := chainEvents(t, st)
			want := []struct{ name, status, cause string }{
				{"order.created", "creating", "create"},
				{"order.awaiting_payment", "awaiting_payment", "prepay"},
				{"order.paid", "paid", "notification"},
			}
			if len(recs) != len(want) {
				t.Fatalf("chain: %d records; want %d", len(recs), len(want))
			}
			messages := `[{"role":"system","content":"You sell plans."},{"role":"user","content":"I want the monthly plan"}]`
			for i, r := range recs {
				w := want[i]
				if r.Name != w.name || r.Status != w.status || r.Cause != w.cause {
					t.Errorf("record %d: got %s %s %s; want %s %s %s", i+1, r.Name, r.Status, r.Cause, w.name, w.status, w.cause)
				}
				if r.OrderNo != res.Order.OrderNo || r.Client != "shop-bot" || r.User != "oAlice" || r.AmountFen != 4999 || r.Currency != "CNY" {
					t.Errorf("record %d: got order %s client %s user %s amount %d %s", i+1, r.OrderNo, r.Client, r.User, r.AmountFen, r.Currency)
				}
				if r.Time.IsZero() || r.AppendedAt.IsZero() {
					t.Errorf("record %d: times %v %v; want both set", i+1, r.Time, r.AppendedAt)
				}
				text, terr := st.GetAuditText(context.Background(), uint64(i+1))
				if w.cause == "notification" {
					if r.Provider != "" || r.TextSHA256 != "" || r.NotificationID == "" || r.TransactionID == "" {
						t.Errorf("paid record: provider %q text %q notification %q transaction %q; want no turn, both ids", r.Provider, r.TextSHA256, r.NotificationID, r.TransactionID)
					}
					continue
				}
				if r.Provider != "openrouter" || r.Model != "openai/gpt-4o" {
					t.Errorf("record %d: provider %q model %q", i+1, r.Provider, r.Model)
				}
				params, _ := json.Marshal(r.Params)
				if string(params) != `{"max_tokens":300,"seed":7,"stop":["END"],"temperature":0.2,"top_p":0.9}` {
					t.Errorf("record %d params: got %s", i+1, params)
				}
				if terr != nil || string(text) != messages || r.TextSHA256 != TextHash([]byte(messages)) || r.TextBytes != len(messages) {
					t.Errorf("record %d text: got %q %v (hash %s, %d bytes)", i+1, text, terr, r.TextSHA256, r.TextBytes)
				}
			}
			if stats, err := st.OutboxStats(context.Background()); err != nil || stats.Pending != 0 {
				t.Errorf("outbox: %+v %v; want empty", stats, err)
			}
		})
	}
}

// TestOperatorDecisionsReachTheChain: a manager's approval and rejection
// made under payments.WithActor (the admin API's) are recorded with who and
// why, in the record's hashed body, on the decision and on what the
// approval did at once (the prepay); what the user's turn did carries none.
// The chain verifies, records sealed before actors were recorded included.
func TestOperatorDecisionsReachTheChain(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			ctx := context.Background()
			for _, raw := range sealedBeforeExactParams {
				var r store.AuditRecord
				if err := json.Unmarshal([]byte(raw), &r); err != nil {
					t.Fatal(err)
				}
				if err := st.AppendAudit(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			w := newTestWorker(t, st, nil)
			svc, sim := simService(t, st, w, payments.Options{Events: TransitionEvents,
				Rules: payments.Rules{ApprovalAboveFen: payments.FenPtr(1000)}})
			hold := func(user string) string {
				t.Helper()
				res, err := svc.CreateOrder(ctx, payments.CreateRequest{Client: "shop-bot", User: user, SKU: "premium-monthly"})
				if err != nil || res.Order.Status != store.StatusApprovalRequired {
					t.Fatalf("create: %+v %v; want approval_required", res, err)
				}
				return res.Order.OrderNo
			}
			yes, no := hold("oAlice"), hold("oBob")
			alice := &payments.Actor{Kind: payments.ActorAdmin, RequestID: "req_1", RemoteAddr: "10.0.0.7:51234", Operator: "alice", Reason: "customer verified by phone"}
			if _, err := svc.Approve(payments.WithActor(ctx, alice), yes); err != nil || sim.Prepays(yes) != 1 {
				t.Fatalf("approve: %v, %d prepays", err, sim.Prepays(yes))
			}
			bob := &payments.Actor{Kind: payments.ActorAdmin, RequestID: "req_2", RemoteAddr: "10.0.0.8:40000"}
			if _, err := svc.Reject(payments.WithActor(ctx, bob), no); err != nil {
				t.Fatalf("reject: %v", err)
			}
			drainAll(t, w)
			want := map[string]string{
				yes + " order.created":          "",
				no + " order.created":           "",
				yes + " order.approved":         `{"kind":"admin","operator":"alice","reason":"customer verified by phone","remote_addr":"10.0.0.7:51234","request_id":"req_1"}`,
				yes + " order.awaiting_payment": `{"kind":"admin","operator":"alice","reason":"customer verified by phone","remote_addr":"10.0.0.7:51234","request_id":"req_1"}`,
				no + " order.rejected":          `{"kind":"admin","remote_addr":"10.0.0.8:40000","request_id":"req_2"}`,
			}
			recs := readAll(t, st)
			if len(recs) != len(sealedBeforeExactParams)+len(want) {
				t.Fatalf("%d records; want the %d earlier ones and %d new", len(recs), len(sealedBeforeExactParams), len(want))
			}
			for _, r := range recs[len(sealedBeforeExactParams):] {
				// The hashed bytes themselves, not a decoding of them.
				var body struct {
					OrderNo string          `json:"order_no"`
					Action  string          `json:"action"`
					Actor   json.RawMessage `json:"actor"`
				}
				if err := json.Unmarshal(r.Body, &body); err != nil || Hash(r.Body) != r.Hash {
					t.Fatalf("record %d: %v, hash %s of %s", r.Seq, err, r.Hash, r.Body)
				}
				k := body.OrderNo + " " + body.Action
				if w, ok := want[k]; !ok || string(body.Actor) != w {
					t.Errorf("record %d (%s): actor %s; want %q", r.Seq, k, body.Actor, w)
				}
			}
			if res, err := Verify(ctx, st, VerifyOptions{}); err != nil || res.Records != uint64(len(recs)) {
				t.Errorf("verify: %+v %v; want all %d records", res, err, len(recs))
			}
		})
	}
}

// simService is a payments.Service over st, paying through the WeChat Pay
// simulator with the official client, its notifications posted to the
// service's own notify handler, with one catalog item (premium-monthly,
// 49.99) and opts' event hooks; w, the audit worker, is woken at every
// commit.
func simService(t *testing.T, st store.Store, w *Worker, opts payments.Options) (*payments.Service, *wxsim.Server) {
	t.Helper()
	keys, err := simKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := wxsim.New(wxsim.Options{Keys: keys, NotifyAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(sim)
	t.Cleanup(func() { api.Close(); _ = sim.Close() })
	var mu sync.Mutex
	var notify http.Handler = http.NotFoundHandler()
	ns := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := notify
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ns.Close)
	client, err := wechatpay.New(context.Background(), sim.ClientConfig(api.URL, ns.URL+payments.NotifyPath))
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := payments.NewCatalog([]payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99"}})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Backend, opts.Notify, opts.Catalog = st, client, client.NotifyVerifier(), catalog
	opts.MchID, opts.AppID = sim.MchID(), sim.AppID()
	opts.Committed = func(payments.Transition) { w.Wake() }
	svc, err := payments.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	mu.Lock()
	notify = svc.NotifyHandler()
	mu.Unlock()
	return svc, sim
}
