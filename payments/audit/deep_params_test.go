package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// nested is a JSON value depth arrays deep: valid JSON, which gjson (the
// proxy validates requests with it) accepts at any depth and encoding/json
// refuses beyond 10000 levels.
func nested(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

// createWithWebhook writes order PG0001 with the audit events of its
// creation in turn, and behind them, on the same outbox key, the order's
// webhook (as serve's withWebhookEvents adds it).
func createWithWebhook(t *testing.T, st store.Store, turn *payments.Turn) {
	t.Helper()
	now := time.Now()
	o := store.Order{OrderNo: "PG0001", Client: "shop-bot", User: "oAlice", Status: store.StatusCreating,
		SKU: "premium-monthly", Quantity: 1, AmountFen: 4999, Currency: "CNY", CreatedAt: now, UpdatedAt: now}
	evs := TransitionEvents(payments.Transition{After: o, Cause: "create", Turn: turn})
	evs = append(evs, store.Event{Kind: "webhook", Key: "PG0001", Payload: []byte(`{"type":"order.paid"}`)})
	if err := st.CreateOrder(context.Background(), &o, evs...); err != nil {
		t.Fatal(err)
	}
}

// wantOrderQueueFlows drains w and checks that the order's record is in
// the chain, its params as want says, and that the webhook behind it is
// handed to the relay.
func wantOrderQueueFlows(t *testing.T, st store.Store, w *Worker, want func(params map[string]any) string) {
	t.Helper()
	ctx := context.Background()
	_, derr := w.Drain(ctx)
	recs := readAll(t, st)
	if len(recs) != 1 {
		t.Fatalf("chain has %d records after Drain (err %v); want the order.created record", len(recs), derr)
	}
	body, err := Decode(recs[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if body.Name != "order.created" || body.OrderNo != "PG0001" || body.AmountFen != 4999 {
		t.Errorf("record: %+v", body)
	}
	if msg := want(body.Params); msg != "" {
		t.Errorf("params %.200v: %s", body.Params, msg)
	}
	if text, err := st.GetAuditText(ctx, recs[0].Seq); err != nil || !strings.Contains(string(text), "buy") {
		t.Errorf("the turn's text: %q %v; want it kept", text, err)
	}
	claimed, err := st.ClaimEvents(ctx, "webhook", time.Now(), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 {
		t.Errorf("webhook relay claims %d events; want the order's webhook, behind its audit record", len(claimed))
	}
	if s, _ := st.OutboxStats(ctx); s.Pending != 1 { // the claimed webhook
		t.Errorf("%d events pending (%q); want only the claimed webhook", s.Pending, s.LastError)
	}
}

// TestDeeplyNestedParamIsRecordedAsText: a sampling parameter nested deeper
// than encoding/json reads (valid JSON; gjson, which the proxy validates
// requests with, has no such limit) is neither canonicalizable nor
// json.Valid. It was recorded as gjson's Value(), which json.Marshal wrote
// and decodePayload could never read back: the event was retried for ever at
// the head of its order's queue, and the order's later audit records and its
// webhook (order.paid) were never handed out. It is now recorded as the text
// the bot sent.
func TestDeeplyNestedParamIsRecordedAsText(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			deep := `{"type":"enabled","x":` + nested(10001) + `}`
			body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"buy"}],"temperature":0.7,"thinking":` + deep + `}`)
			turn := TurnFromRequest("shop-bot", "oAlice", body, "openrouter", "openai/gpt-4o")
			createWithWebhook(t, e.store(), turn)
			wantOrderQueueFlows(t, e.store(), newTestWorker(t, e.store(), nil), func(params map[string]any) string {
				if params["thinking"] != deep {
					return "thinking is not the text the bot sent"
				}
				if params["temperature"] != json.Number("0.7") {
					return "temperature is not kept"
				}
				return ""
			})
		})
	}
}

// TestParamTooDeepForItsEventIsRecordedUnencodable: a parameter that is
// canonicalizable on its own but, nested in the event's payload three levels
// down, goes past encoding/json's depth: the event would never decode. Such
// an event is caught before it is enqueued and the action recorded without
// its parameters (TransitionEvents' unencodable fallback, which kept the
// turn's params and so returned the zero event).
func TestParamTooDeepForItsEventIsRecordedUnencodable(t *testing.T) {
	raw := nested(9999)
	if _, err := CanonicalizeJSON([]byte(raw)); err != nil {
		t.Fatalf("the parameter alone must be canonicalizable: %v", err)
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"buy"}],"logit_bias":` + raw + `}`)
			turn := TurnFromRequest("shop-bot", "oAlice", body, "openrouter", "openai/gpt-4o")
			createWithWebhook(t, e.store(), turn)
			wantOrderQueueFlows(t, e.store(), newTestWorker(t, e.store(), nil), func(params map[string]any) string {
				if s, _ := params["unencodable"].(string); !strings.Contains(s, "depth") || len(params) != 1 {
					return "want the params replaced by unencodable, naming the depth"
				}
				return ""
			})
		})
	}
}

// TestProposalEventTooDeepIsRecordedUnencodable: the same for a refund
// proposal's record (ProposalEvents).
func TestProposalEventTooDeepIsRecordedUnencodable(t *testing.T) {
	turn := TurnFromRequest("shop-bot", "oAlice", []byte(`{"messages":[{"role":"user","content":"refund"}],"logit_bias":`+nested(9999)+`}`), "p", "m")
	evs := ProposalEvents(payments.WithTurn(context.Background(), turn), payments.ProposalMade,
		store.RefundProposal{RefundID: "rf_1", OrderNo: "PG1", Client: "shop-bot", User: "oAlice", AmountFen: 100, CreatedAt: time.Now()}, nil)
	if len(evs) != 1 || evs[0].Kind != KindAudit {
		t.Fatalf("events: %+v", evs)
	}
	p, err := decodePayload(evs[0].Payload)
	if err != nil {
		t.Fatalf("the event does not decode: %v", err)
	}
	if _, ok := p.Action.Params["unencodable"]; !ok || p.Action.Name != "refund.proposed" || string(p.Text) == "" {
		t.Errorf("payload: %+v", p.Action)
	}
}
