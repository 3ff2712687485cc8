package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

// KindAudit is the outbox event kind of audit records. Other outbox consumers
// (the webhook deliverer) must leave events of this kind alone, and the
// Worker leaves every other kind alone.
const KindAudit = "audit"

// payload is an audit event's payload: the action and the conversation text.
type payload struct {
	Action Action `json:"action"`
	Text   []byte `json:"text,omitempty"`
}

// TransitionEvents is payments.Options.Events for the audit: every committed
// order transition becomes one audit event, keyed by the order, enqueued
// atomically with the transition. It never fails: an action that cannot be
// encoded, or whose event the Worker could not read back and seal
// (ActionEvent), is recorded with its sampling parameters replaced by
// {"unencodable": why}; only they are free-form.
func TransitionEvents(t payments.Transition) []store.Event {
	a := TransitionAction(t)
	ev, err := ActionEvent(a, t.Turn)
	if err != nil {
		// The turn's params, not a's: ActionEvent takes a turn's over a's.
		turn := payments.Turn{Client: a.Client, User: a.User}
		if t.Turn != nil {
			turn = *t.Turn
		}
		turn.Params = unencodable(err)
		ev, _ = ActionEvent(a, &turn)
	}
	return []store.Event{ev}
}

// TransitionAction describes an order transition as an audit Action.
func TransitionAction(t payments.Transition) Action {
	o := t.After
	a := Action{
		Time: o.UpdatedAt, Name: actionName(t), Cause: t.Cause,
		Client: o.Client, User: o.User, Session: o.Session, OrderNo: o.OrderNo,
		NotificationID: t.NotificationID, TransactionID: o.TransactionID,
		StatusBefore: string(t.Before.Status), Status: string(o.Status),
		SKU: o.SKU, Quantity: o.Quantity, AmountFen: o.AmountFen, Currency: o.Currency,
		RefundedFen: o.RefundedFen, Reason: o.ReviewReason,
	}
	if d := o.RefundedFen - t.Before.RefundedFen; d > 0 {
		a.RefundFen = d
	}
	if r := t.Refund; r != nil {
		a.RefundID, a.RefundFen = r.RefundID, r.AmountFen
		if a.Reason == "" {
			a.Reason = r.Reason
		}
	}
	a.Actor = actorOf(t.Actor)
	if a.Time.IsZero() {
		a.Time = o.CreatedAt
	}
	return a
}

// actorOf is x as recorded; nil for nil.
func actorOf(x *payments.Actor) *Actor {
	if x == nil {
		return nil
	}
	return &Actor{Kind: x.Kind, RequestID: x.RequestID, RemoteAddr: x.RemoteAddr, Operator: x.Operator, Reason: x.Reason}
}

// ActionWebhookResent is the action of an operator's webhook resend that
// queued events (ResendEvents).
const ActionWebhookResent = "webhook.resent"

// ResendEvents is webhook.Options.ResendEvents for the audit: the record of
// an operator's resend of order o's state to the merchant
// (POST /admin/api/orders/{order_no}/webhook) that queued events, queued by
// the resend in the same atomic step as them, on the order's queue: the
// order as it stands (client, user, status, amounts), the events queued
// (ids and types, in the order they leave), whether it was forced (a new
// event, on which the merchant acts again: order.paid delivers the goods
// again), and who asked (ctx's payments.Actor: the admin request's id and
// the operator and reason its body gave). Its fields are strings and
// integers, so ActionEvent cannot fail on it.
func ResendEvents(ctx context.Context, o *store.Order, queued []store.Event, forced bool) []store.Event {
	a := Action{
		Name: ActionWebhookResent, Cause: "resend",
		Client: o.Client, User: o.User, Session: o.Session, OrderNo: o.OrderNo, TransactionID: o.TransactionID,
		Status: string(o.Status), SKU: o.SKU, Quantity: o.Quantity, AmountFen: o.AmountFen, Currency: o.Currency,
		RefundedFen: o.RefundedFen, Forced: forced, Actor: actorOf(payments.ActorFrom(ctx)),
	}
	for _, e := range queued {
		a.Webhooks = append(a.Webhooks, Webhook{ID: e.ID, Type: gjson.GetBytes(e.Payload, "type").Str})
	}
	ev, err := ActionEvent(a, nil)
	if err != nil {
		panic("audit: " + err.Error()) // strings and integers only: unreachable
	}
	return []store.Event{ev}
}

// actionName names a transition: order.created for a creation (payment.orphan
// for WeChat Pay's payment of an unknown order), order.approved when a
// manager's approval lets it proceed, refund.reserved when a user's
// confirmation holds the order for its refund (the confirmation itself is
// the proposal's refund.confirmed, ProposalEvents, written only once it is
// taken), refund.succeeded or refund.failed when the refund ends,
// refund.aborted when a reservation is undone before anything went to
// WeChat Pay (the proposal was cancelled or expired in between, or the
// refund could not be recorded, or the confirmation stopped before taking
// the user's word and the proposal ended unconfirmed, or a late second tap
// held the order again for a refund already sent), order.<status> for
// any other status change, order.updated when only fields changed (the
// cause says why).
func actionName(t payments.Transition) string {
	b, a := t.Before, t.After
	switch {
	case b.OrderNo == "" && t.Cause == "orphan":
		return "payment.orphan"
	case b.OrderNo == "":
		return "order.created"
	case b.Status == a.Status:
		return "order.updated"
	case b.Status == store.StatusApprovalRequired &&
		(a.Status == store.StatusCreating || a.Status == store.StatusAwaitingPayment || a.Status == store.StatusPaid):
		return "order.approved"
	case a.Status == store.StatusRefunding:
		return "refund.reserved"
	case b.Status == store.StatusRefunding && a.RefundedFen > b.RefundedFen:
		return "refund.succeeded"
	case b.Status == store.StatusRefunding && t.Cause == payments.CauseRefundAborted && a.Status != store.StatusNeedsReview:
		return "refund.aborted"
	case b.Status == store.StatusRefunding && a.Status != store.StatusNeedsReview:
		return "refund.failed"
	}
	return "order." + string(a.Status)
}

// ProposalEvents is payments.Options.ProposalEvents for the audit: the
// record of a write of a refund proposal, written atomically with it
// (store.RefundProposals), so a live proposal never lacks its
// refund.proposed record and the turn that led to it, and the user's answer
// is recorded exactly when it ends the proposal: refund.cancelled for a
// "no", refund.confirmed for a confirmation taken for the refund. It never
// fails: a proposal that cannot be encoded, or whose event the Worker could
// not read back and seal, is recorded with its sampling parameters
// replaced by {"unencodable": why}, as TransitionEvents records one.
func ProposalEvents(ctx context.Context, step payments.ProposalStep, p store.RefundProposal, _ *store.Order) []store.Event {
	ev, err := ProposalEvent(ctx, step, p)
	if err != nil {
		var turn payments.Turn // only a turn's params can fail to encode
		if t := payments.TurnFrom(ctx); t != nil {
			turn = *t
		}
		turn.Params = unencodable(err)
		ev, _ = ProposalEvent(payments.WithTurn(ctx, &turn), step, p)
	}
	return []store.Event{ev}
}

// ProposalEvent is the audit event of step of refund proposal p: no order
// changes then, so it is keyed by the proposal (store.ProposalEventKey), the
// key of the events the proposal's writes carry; in Redis the order's queue
// is on another hash tag. The record is therefore not queued behind its
// order's events: refund.proposed is normally appended before the order's
// refund.reserved (a proposal is confirmed after the user saw it), but one
// that waits for a retry may come after it, and the proposal's
// refund.confirmed may come before or after the order's refund.reserved;
// all carry their times. The records of one proposal keep their order. The
// turn, if any, comes from ctx (payments.TurnFrom): the one that proposed
// it; an answer comes from the user, with no turn.
func ProposalEvent(ctx context.Context, step payments.ProposalStep, p store.RefundProposal) (store.Event, error) {
	a := Action{
		Client: p.Client, User: p.User, OrderNo: p.OrderNo, RefundID: p.RefundID,
		RefundFen: p.AmountFen, Reason: p.Reason,
	}
	switch step {
	case payments.ProposalMade:
		a.Time, a.Name, a.Cause = p.CreatedAt, "refund.proposed", "request_refund"
	case payments.ProposalCancelled:
		a.Name, a.Cause = "refund.cancelled", "cancel" // no Time: ActionEvent stamps now
	case payments.ProposalConfirmed:
		a.Name, a.Cause = "refund.confirmed", "confirm"
	default:
		a.Name = "refund." + string(step)
	}
	ev, err := ActionEvent(a, payments.TurnFrom(ctx))
	ev.Key = store.ProposalEventKey(p.RefundID)
	return ev, err
}

// ActionEvent is the outbox event of an action that is not an order
// transition (a refund proposal, a confirmation), for code that enqueues it
// itself with store.Outbox.EnqueueEvents or an order write. turn may be nil.
// The event is keyed by the action's order, so it is appended in order with
// that order's other records. An error also says that the Worker could not
// read the event back (decodePayload) or seal its record (Seal): such an
// event would be retried for ever at the head of its key's queue, holding
// back the order's later records and its webhooks, so it is never returned.
func ActionEvent(a Action, turn *payments.Turn) (store.Event, error) {
	p := payload{Action: a}
	p.Action.Time = p.Action.Time.UTC()
	if p.Action.Time.IsZero() {
		p.Action.Time = time.Now().UTC()
	}
	if turn != nil {
		p.Action.Provider, p.Action.Model, p.Action.Params = turn.Provider, turn.Model, turn.Params
		if p.Action.Client == "" {
			p.Action.Client = turn.Client
		}
		if p.Action.User == "" {
			p.Action.User = turn.User
		}
		p.Text = turn.Messages
	}
	b, err := json.Marshal(p)
	if err != nil {
		return store.Event{}, fmt.Errorf("encode audit event: %w", err)
	}
	if err := sealable(p.Action); err != nil {
		return store.Event{}, fmt.Errorf("encode audit event: %w", err)
	}
	return store.Event{Kind: KindAudit, Key: a.OrderNo, Payload: b}, nil
}

// sealable checks that the Worker can read back the payload of action a
// and seal its record: encoding/json reads no value nested deeper than
// 10000 levels (gjson, which the proxy validates requests with, has no
// limit), and the canonical form carries no number out of float64's range.
// Only the action is read back, at its place in the payload: the text is a
// string, which reads back whatever it holds.
func sealable(a Action) error {
	b, err := json.Marshal(payload{Action: a})
	if err != nil {
		return err
	}
	p, err := decodePayload(b)
	if err != nil {
		return err
	}
	_, err = Seal(store.AuditHead{}, Record{Action: p.Action})
	return err
}

// decodePayload reads an audit event's payload. Numbers in the sampling
// parameters stay json.Number, exactly as written: a float64 would turn a
// seed above 2^53 into another number before the record is sealed.
func decodePayload(b []byte) (payload, error) {
	var p payload
	if err := unmarshalExact(b, &p); err != nil {
		return p, fmt.Errorf("decode audit event: %w", err)
	}
	return p, nil
}

// withoutParams reads payload b, which decodePayload refused with err,
// without its sampling parameters, and gives it params {"unencodable": err}
// instead, as TransitionEvents and ProposalEvents record an action whose
// params the worker could not read back. Earlier versions enqueued such
// events (a parameter nested deeper than encoding/json reads, which gjson,
// the proxy's validator, accepts): retried, one would hold its order's later
// records and webhooks back for ever. The params are the only free-form
// part of a payload; one that does not decode without them returns err.
func withoutParams(b []byte, err error) (payload, error) {
	if !gjson.GetBytes(b, "action.params").Exists() {
		return payload{}, err
	}
	rest, derr := sjson.DeleteBytes(b, "action.params")
	if derr != nil {
		return payload{}, err
	}
	p, derr := decodePayload(rest)
	if derr != nil {
		return payload{}, err
	}
	p.Action.Params = unencodable(err)
	return p, nil
}

// unencodable is the params of an action recorded without its own: why.
func unencodable(why error) map[string]any { return map[string]any{"unencodable": why.Error()} }

// unmarshalExact is json.Unmarshal with numbers in untyped places (the
// sampling parameters) kept as json.Number.
func unmarshalExact(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the value")
	}
	return nil
}

// samplingParams lists the chat request fields an audit record keeps as the
// turn's sampling parameters.
var samplingParams = []string{
	"temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "seed", "stop",
	"presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
	"response_format", "reasoning_effort", "tool_choice", "parallel_tool_calls",
	// Those of the providers SPEC names beyond OpenAI's: OpenRouter's
	// (top_k, min_p, top_a, repetition_penalty, reasoning), vLLM's and
	// DashScope's (top_k, repetition_penalty, enable_thinking,
	// thinking_budget), DeepSeek's and Kimi's (thinking).
	"top_k", "min_p", "top_a", "repetition_penalty", "reasoning", "enable_thinking",
	"thinking_budget", "thinking",
}

// TurnFromRequest builds the payments.Turn of a chat completions request body
// for the audit: its messages verbatim and its sampling parameters, each as
// the JSON the bot sent (json.RawMessage), so the record states them exactly
// (a seed above 2^53 decoded to a float64 would be recorded as another
// number). The record's canonical form then normalises only their spelling
// (whitespace, key order, 0.70 as 0.7). The caller adds the provider and
// upstream model of the round that made the payment call.
func TurnFromRequest(client, user string, body []byte, provider, model string) *payments.Turn {
	t := &payments.Turn{Client: client, User: user, Provider: provider, Model: model}
	if m := gjson.GetBytes(body, "messages"); m.Exists() {
		t.Messages = []byte(m.Raw)
	}
	// Each parameter's last copy, the one the provider's parser keeps
	// (Python's json, JSON.parse, Go's encoding/json) and the model was
	// sampled with: a path lookup reads the first.
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		if !slices.Contains(samplingParams, k.Str) {
			return true
		}
		if t.Params == nil {
			t.Params = map[string]any{}
		}
		name, raw := k.Str, []byte(v.Raw)
		if _, err := CanonicalizeJSON(raw); err == nil {
			t.Params[name] = json.RawMessage(raw)
			return true
		}
		// JSON the canonical form cannot carry (a number out of float64's
		// range, 1e400), or that encoding/json does not read at all (nested
		// deeper than its 10000 levels, which gjson accepts): recorded as
		// the text the bot sent, a JSON string. Kept as JSON, or as gjson's
		// reading of it, the record could never be sealed, or its event
		// never decoded, and the order's queue (its webhooks too) would
		// stall behind it.
		t.Params[name] = v.Raw
		return true
	})
	return t
}
