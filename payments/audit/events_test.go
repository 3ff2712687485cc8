package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

func TestTransitionAction(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("CST", 8*3600))
	order := func(st store.OrderStatus, refunded int64) store.Order {
		return store.Order{OrderNo: "PG1", Client: "shop-bot", User: "oAlice", SKU: "premium-monthly", Quantity: 2,
			AmountFen: 9998, Currency: "CNY", Status: st, RefundedFen: refunded, UpdatedAt: at}
	}
	none := store.Order{}
	proposal := &store.RefundProposal{RefundID: "rf_1", OrderNo: "PG1", AmountFen: 4999, Reason: "changed my mind"}
	cases := []struct {
		name          string
		before, after store.Order
		cause         string
		refund        *store.RefundProposal
		want          string
		wantRefundFen int64
	}{
		{name: "created", before: none, after: order(store.StatusCreating, 0), cause: "create", want: "order.created"},
		{name: "created awaiting approval", before: none, after: order(store.StatusApprovalRequired, 0), cause: "create", want: "order.created"},
		{name: "orphan payment", before: none, after: order(store.StatusNeedsReview, 0), cause: "orphan", want: "payment.orphan"},
		{name: "prepaid", before: order(store.StatusCreating, 0), after: order(store.StatusAwaitingPayment, 0), cause: "prepay", want: "order.awaiting_payment"},
		{name: "approved", before: order(store.StatusApprovalRequired, 0), after: order(store.StatusCreating, 0), cause: "approve", want: "order.approved"},
		{name: "rejected", before: order(store.StatusApprovalRequired, 0), after: order(store.StatusRejected, 0), cause: "reject", want: "order.rejected"},
		{name: "paid by notification", before: order(store.StatusAwaitingPayment, 0), after: order(store.StatusPaid, 0), cause: "notification", want: "order.paid"},
		{name: "closed", before: order(store.StatusAwaitingPayment, 0), after: order(store.StatusClosed, 0), cause: "close", want: "order.closed"},
		{name: "expired", before: order(store.StatusAwaitingPayment, 0), after: order(store.StatusExpired, 0), cause: "expire", want: "order.expired"},
		{name: "needs review", before: order(store.StatusAwaitingPayment, 0), after: order(store.StatusNeedsReview, 0), cause: "notification", want: "order.needs_review"},
		{name: "refund reserved", before: order(store.StatusPaid, 0), after: order(store.StatusRefunding, 0), cause: "refund", refund: proposal, want: "refund.reserved", wantRefundFen: 4999},
		{name: "a partly refunded order reserved", before: order(store.StatusPartiallyRefunded, 1000), after: order(store.StatusRefunding, 1000), cause: "refund", refund: proposal, want: "refund.reserved", wantRefundFen: 4999},
		{name: "refund succeeded", before: order(store.StatusRefunding, 0), after: order(store.StatusPartiallyRefunded, 4999), cause: "notification", refund: proposal, want: "refund.succeeded", wantRefundFen: 4999},
		{name: "refund failed", before: order(store.StatusRefunding, 0), after: order(store.StatusPaid, 0), cause: "refund_failed", refund: proposal, want: "refund.failed", wantRefundFen: 4999},
		{name: "refund closed", before: order(store.StatusRefunding, 1000), after: order(store.StatusPartiallyRefunded, 1000), cause: "notification", refund: proposal, want: "refund.failed", wantRefundFen: 4999},
		{name: "reservation undone before wechat pay", before: order(store.StatusRefunding, 0), after: order(store.StatusPaid, 0), cause: "refund_aborted", refund: proposal, want: "refund.aborted", wantRefundFen: 4999},
		{name: "refund went to review", before: order(store.StatusRefunding, 0), after: order(store.StatusNeedsReview, 0), cause: "notification", want: "order.needs_review"},
		{name: "fields only", before: order(store.StatusPaid, 0), after: order(store.StatusPaid, 0), cause: "query", want: "order.updated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := payments.Transition{Before: c.before, After: c.after, Cause: c.cause, Refund: c.refund}
			a := TransitionAction(tr)
			if a.Name != c.want || a.Cause != c.cause || a.RefundFen != c.wantRefundFen {
				t.Errorf("got %s (cause %s, refund %d); want %s (cause %s, refund %d)", a.Name, a.Cause, a.RefundFen, c.want, c.cause, c.wantRefundFen)
			}
			if a.OrderNo != "PG1" || a.Client != "shop-bot" || a.User != "oAlice" || a.AmountFen != 9998 || !a.Time.Equal(at) {
				t.Errorf("ids/amount/time: %+v", a)
			}
			if c.refund != nil && (a.RefundID != "rf_1" || a.Reason != "changed my mind") {
				t.Errorf("refund fields: %+v", a)
			}
			evs := TransitionEvents(tr)
			if len(evs) != 1 || evs[0].Kind != KindAudit || evs[0].Key != "PG1" {
				t.Fatalf("events: %+v; want one audit event keyed PG1", evs)
			}
			p, err := decodePayload(evs[0].Payload)
			if err != nil || p.Action.Name != c.want || p.Action.Time.Location() != time.UTC {
				t.Errorf("payload: %+v %v", p.Action, err)
			}
		})
	}
}

func TestProposalEventCarriesTheTurn(t *testing.T) {
	turn := TurnFromRequest("shop-bot", "oAlice", []byte(`{"messages":[{"role":"user","content":"refund please"}],"temperature":1}`), "deepseek", "deepseek-chat")
	ctx := payments.WithTurn(context.Background(), turn)
	ev, err := ProposalEvent(ctx, payments.ProposalMade, store.RefundProposal{RefundID: "rf_9", OrderNo: "PG7", Client: "shop-bot", User: "oAlice", AmountFen: 1000, Reason: "late", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := decodePayload(ev.Payload)
	if err != nil {
		t.Fatal(err)
	}
	a := p.Action
	params, _ := json.Marshal(a.Params)
	if ev.Key != store.ProposalEventKey("rf_9") || a.Name != "refund.proposed" || a.RefundID != "rf_9" || a.RefundFen != 1000 || a.Provider != "deepseek" ||
		a.Model != "deepseek-chat" || string(params) != `{"temperature":1}` || string(p.Text) != `[{"role":"user","content":"refund please"}]` {
		t.Errorf("got key %s action %+v text %s", ev.Key, a, p.Text)
	}
}

// TestProposalAnswerEvents: the user's answer to a proposal is recorded on
// the proposal's key, named for what the user did (refund.cancelled,
// refund.confirmed), with the proposal's ids and amount, at the time of the
// answer, and with no turn (the user answered, not the model).
func TestProposalAnswerEvents(t *testing.T) {
	p := store.RefundProposal{RefundID: "rf_9", OrderNo: "PG7", Client: "shop-bot", User: "oAlice", AmountFen: 1000, Reason: "late",
		CreatedAt: time.Now().Add(-time.Hour)}
	for _, c := range []struct {
		step        payments.ProposalStep
		name, cause string
	}{
		{payments.ProposalMade, "refund.proposed", "request_refund"},
		{payments.ProposalCancelled, "refund.cancelled", "cancel"},
		{payments.ProposalConfirmed, "refund.confirmed", "confirm"},
	} {
		t.Run(string(c.step), func(t *testing.T) {
			before := time.Now()
			evs := ProposalEvents(context.Background(), c.step, p, nil)
			if len(evs) != 1 || evs[0].Kind != KindAudit || evs[0].Key != store.ProposalEventKey("rf_9") {
				t.Fatalf("events %+v; want one audit event keyed by the proposal", evs)
			}
			pl, err := decodePayload(evs[0].Payload)
			if err != nil {
				t.Fatal(err)
			}
			a := pl.Action
			if a.Name != c.name || a.Cause != c.cause || a.RefundID != "rf_9" || a.OrderNo != "PG7" || a.RefundFen != 1000 ||
				a.Client != "shop-bot" || a.User != "oAlice" || a.Provider != "" || pl.Text != nil {
				t.Errorf("action %+v text %s; want %s (%s) of rf_9 with no turn", a, pl.Text, c.name, c.cause)
			}
			if c.step == payments.ProposalMade && !a.Time.Equal(p.CreatedAt.UTC()) {
				t.Errorf("time %v; want the proposal's %v", a.Time, p.CreatedAt)
			}
			if c.step != payments.ProposalMade && a.Time.Before(before.Add(-time.Second)) {
				t.Errorf("time %v; want the answer's (about %v)", a.Time, before)
			}
		})
	}
}

// TestTurnParamsRecordedExactly: the record keeps the turn's sampling
// parameters as the bot sent them. A seed above 2^53 went through a float64
// (in TurnFromRequest and again when the worker decoded the event) and was
// recorded as another number, 9007199254740992.
func TestTurnParamsRecordedExactly(t *testing.T) {
	body := []byte(`{"model":"gpt-4o","seed":9007199254740993,"temperature":0.70,"max_tokens":1e3,` +
		`"logit_bias":{ "50256": -100 },"stop":["\n"],"messages":[{"role":"user","content":"buy"}]}`)
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			turn := TurnFromRequest("shop-bot", "oAlice", body, "openrouter", "openai/gpt-4o")
			e := newEnv(t, driver)
			st := e.store()
			ev, err := ActionEvent(Action{Time: time.Now(), Name: "order.created", User: "oAlice", OrderNo: "PG1", AmountFen: 4999}, turn)
			if err != nil {
				t.Fatal(err)
			}
			enqueue(t, st, ev)
			drainAll(t, newTestWorker(t, st, nil))
			recs := readAll(t, st)
			if len(recs) != 1 {
				t.Fatalf("records: %d", len(recs))
			}
			// Canonical spelling (0.70 as 0.7, 1e3 as 1000), same values.
			want := `"params":{"logit_bias":{"50256":-100},"max_tokens":1000,"seed":9007199254740993,"stop":["\n"],"temperature":0.7}`
			if !strings.Contains(string(recs[0].Body), want) {
				t.Fatalf("record body %s\nwant %s", recs[0].Body, want)
			}
			r, err := Decode(recs[0].Body)
			if err != nil || r.Params["seed"] != json.Number("9007199254740993") {
				t.Errorf("decoded seed %#v (%v); want json.Number 9007199254740993", r.Params["seed"], err)
			}
			if _, err := Verify(context.Background(), st, VerifyOptions{Texts: true}); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

// TestProvidersSamplingParamsRecorded: the sampling parameters of the
// providers SPEC names beyond OpenAI (OpenRouter, vLLM, DashScope, DeepSeek)
// are on the record too (SPEC 7: "temperature and the other sampling
// parameters"); a member that samples nothing (a vendor's metadata) is not.
func TestProvidersSamplingParamsRecorded(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"buy"}],"temperature":0.2,"top_k":5,"min_p":0.1,` +
		`"repetition_penalty":1.3,"top_a":0.5,"reasoning":{"effort":"high"},"enable_thinking":true,"thinking_budget":512,` +
		`"thinking":{"type":"enabled"},"provider":{"order":["x"]}}`)
	tr := TurnFromRequest("bot", "oUser", body, "p", "m")
	for _, k := range []string{"temperature", "top_k", "min_p", "repetition_penalty", "top_a", "reasoning", "enable_thinking", "thinking_budget", "thinking"} {
		if _, ok := tr.Params[k]; !ok {
			t.Errorf("sampling parameter %q missing from the record's params %v", k, tr.Params)
		}
	}
	if _, ok := tr.Params["provider"]; ok {
		t.Errorf("the routing object is not a sampling parameter: %v", tr.Params)
	}
}

// TestRepeatedSamplingParamRecordsTheLast: a sampling parameter the bot
// sent twice is recorded as its last copy, the one the provider's parser
// keeps (Python's json, JSON.parse, Go's encoding/json) and the model was
// sampled with; paygate rejects a repeat of the members it acts on, not of
// these. The record kept the first: "temperature":0.2,"temperature":1.5
// recorded 0.2 for a turn sampled at 1.5.
func TestRepeatedSamplingParamRecordsTheLast(t *testing.T) {
	body := []byte(`{"model":"m","temperature":0.2,"messages":[{"role":"user","content":"buy","temperature":9}],"seed":1,` +
		`"temperature":1.5,"seed":2,"top_p":0.9}`)
	tr := TurnFromRequest("bot", "oUser", body, "p", "m")
	for k, want := range map[string]string{"temperature": "1.5", "seed": "2", "top_p": "0.9"} {
		got := fmt.Sprint(tr.Params[k])
		if raw, ok := tr.Params[k].(json.RawMessage); ok {
			got = string(raw)
		}
		if got != want {
			t.Errorf("%s recorded as %s; want the last copy's %s", k, got, want)
		}
	}
}

// TestPendingEventOfEarlierVersionRecordsSameParams: an audit event enqueued
// by an earlier version (its parameters already float64-encoded) and
// appended after the upgrade records what the earlier version would have.
func TestPendingEventOfEarlierVersionRecordsSameParams(t *testing.T) {
	e := newEnv(t, "embedded")
	st := e.store()
	payload := `{"action":{"time":"2026-03-01T10:01:00Z","action":"order.created","user":"oAlice","order_no":"PG1",` +
		`"amount_fen":4999,"provider":"openrouter","model":"openai/gpt-4o",` +
		`"params":{"logit_bias":{"50256":-100},"max_tokens":1000,"seed":9007199254740992,"stop":["\n"],"temperature":0.7}},` +
		`"text":"W3sicm9sZSI6InVzZXIiLCJjb250ZW50IjoiYnV5In1d"}`
	enqueue(t, st, store.Event{Kind: KindAudit, Key: "PG1", Payload: []byte(payload)})
	drainAll(t, newTestWorker(t, st, nil))
	recs := readAll(t, st)
	want := `"params":{"logit_bias":{"50256":-100},"max_tokens":1000,"seed":9007199254740992,"stop":["\n"],"temperature":0.7}`
	if len(recs) != 1 {
		t.Fatalf("records: %d", len(recs))
	}
	if !strings.Contains(string(recs[0].Body), want) {
		t.Fatalf("record body %s\nwant %s", recs[0].Body, want)
	}
}
