package proxy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/sse"
)

// PaymentTools is what the turn needs from payments: which tool names are
// paygate's and how to execute a call. *payments.Tools implements it.
type PaymentTools interface {
	IsPayment(name string) bool
	Execute(ctx context.Context, c payments.Caller, name, args string) payments.Outcome
	Refused(name, why string) payments.Outcome
}

var _ PaymentTools = (*payments.Tools)(nil)

// toolNamer is a PaymentTools that names its tools, as payments.Tools does:
// the stream capture then reads a payment tool's name that a provider
// streams in pieces (interceptors.Capture.PaymentNames).
type toolNamer interface {
	Names() payments.ToolNames
}

var _ toolNamer = (*payments.Tools)(nil)

// turn is one client request that may take several upstream rounds: a round
// that ends in payment tool calls is executed by paygate and followed by the
// next round on the same client stream, so the bot sees one answer.
type turn struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	chat interceptors.Chat
	body []byte
	// toolsTail is the end of the first round's body from the payment
	// tools AppendTools added as its last member (nil when it added
	// none): each round whose body still ends so tells failover
	// (failover.Request.ToolsTail). Later rounds insert their messages
	// before it; a member set anew after it (tool_choice) ends that.
	toolsTail []byte
	caller    payments.Caller
	// reqBody is the bot's request as it came, before kept exchanges were
	// restored into it: its last message is the one the bot's next request
	// has before the assistant message of this turn's calls, half of where
	// a kept exchange belongs. Fingerprinted only when an exchange or the
	// news told with the bot's calls is kept (keepExchange, keepNews), not
	// on every turn. The bot's own bytes, not their
	// rewrite for the provider (interceptors.RewriteChat: the end user's
	// identity, stream usage), which no read of it tells apart: the bot's
	// body is held to the turn's end in any case (failover resends from
	// it, and the Chat read from it views it), and the rewrite kept here
	// beside it was a fourth copy of the conversation at the provider (a
	// WeChat bot's history of 4 MiB held 16 MiB a turn).
	reqBody []byte

	budget       config.Budget
	moneyCalls   int  // money-moving calls executed
	callsSpent   bool // a money-moving call was refused for max_payment_calls
	clarify      bool // the next round runs with tool_choice "none"; no money moves after it
	afterPayment bool // a payment result is in the conversation: followup_model may answer
	// followupFailed: followup_model answered none of a round, which the
	// turn's own model answered instead, as it answers the later ones
	// (openWith).
	followupFailed bool
	// bound: a money-moving call of this turn reached the payment
	// service, or a payment call asked the user to clarify (execute). The user's message's later requests (the
	// bot's follow-ups with its own tools' results) are held to it only
	// through the exchange the turn keeps (paymentsSinceUser), so an
	// answer whose exchange could not be kept is withdrawn (keepExchange).
	bound bool
	// inWord: the text the client has so far ends in a word, so the next
	// round's text starts a new paragraph (paragraphBreak).
	inWord   bool
	hasUse   bool // a round reported usage (usage)
	req0Used bool // req0 went to the first round
	// payChoice is what the bot's tool_choice lets the model call of the
	// payment tools, read once from the bot's request: paygate's own
	// changes to tool_choice in later rounds do not widen it.
	payChoice interceptors.PaymentChoice

	turnID  string
	created int64
	// brk is what goes between two rounds' text there: "\n\n", or what
	// the bot's stop sequences leave (roundsBreak).
	brk     string
	actions []json.RawMessage // the turn's own, from its payment calls
	rounds  []roundInfo
	// round0 is the room of rounds' first entry: most turns have one
	// round, accounted without a slice of its own on the heap (endRound).
	round0 [1]roundInfo
	// req0 is the first round's upstream request (request), held here:
	// most turns have one round. Later rounds' requests are their own.
	req0  failover.Request
	usage interceptors.Usage // summed over the rounds that reported usage
	cost  accounting.Pico
	sw    *sse.Writer
	// fingerprint is the last streamed round's system_fingerprint (a JSON
	// string, nil for none), for the chunks paygate writes at the turn's
	// end (RoundResult.Fingerprint).
	fingerprint []byte
	// annotations are the streamed rounds' annotations so far, as
	// comma-separated elements, for the one delta before the finish
	// (finishStream).
	annotations []byte
	// capture watches a streaming turn's rounds (nil for a non-stream
	// turn); the chunks paygate writes itself ask it whether they carry
	// the turn's role delta (ClaimRole).
	capture *interceptors.Capture
	// namesCapture judges, for a non-stream turn, a tool call's name that
	// events answering a round give in pieces (NameGoesOn); made when
	// first asked, which only such an answer does.
	namesCapture *interceptors.Capture

	// pending are the announcements the turn may make (payment confirmed,
	// payment parameters of an approved order), claimed into announced
	// when its answer is about to leave (claimAnnouncements).
	pending   []announcement
	announced []json.RawMessage
	// handed are the bot's own tool calls the answer hands it, as it gets
	// them: what it told is kept for its follow-up (keepNews).
	handed []interceptors.ToolCall
	// retold is the news an earlier answer with the bot's calls told, which
	// this request, their follow-up, lists in its state (toldToCalls): an
	// answer of more of the bot's calls passes it on to their follow-up.
	retold []announcement

	// system is the payment-state system message the turn inserted, nil
	// when there is none: each round's request names it, so a target
	// whose provider takes system messages only first gets it there.
	system *failover.SystemMessage

	// appended is what the turn added to the conversation: each payment
	// round's assistant message and tool results, in order. A turn that
	// ends with the client's calls keeps it for the bot's next request.
	appended [][]byte

	// clientGone: a payment call of the turn was not run, or not waited
	// for, because the request ended (execute): the client left, or the
	// drain's deadline came, before it started or while it ran
	// (executeUnlessCut); or the client left while the round's calls ran.
	// It ends the turn.
	clientGone bool

	// capLowered: capLeft asked a later round for less than the bot's
	// token cap (capRefused).
	capLowered bool

	// extQueued: the chunk of what the turn did went out before its error
	// event (queueExtension).
	extQueued bool

	// tooSmall are the targets that refused one of the turn's rounds for
	// its length (context_length_exceeded, 413): the later rounds only
	// add to the conversation, so none of them asks those again (SPEC 5).
	tooSmall []failover.TargetName
}

// roundInfo is one entry of paygate.rounds: the provider's config name and
// the model that answered, as its "model" field said.
type roundInfo struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	// dropped are the request fields the provider's drop_fields kept from
	// it (failover.Response.DroppedFields), left out of the audit's record
	// of the round's sampling parameters.
	dropped []string
	// usage is the round's usage object as its provider sent it (nil: it
	// reported none): the bot gets the rounds' sum with its token details
	// (AppendUsage, usageObjects).
	usage []byte
}

// runTurn serves a chat request whose user is known: the payment tools are
// offered and the turn loops over rounds until one ends without a payment call.
//
// sent is the bot's body as it came, body its rewrite (RewriteChat).
func (s *Server) runTurn(w http.ResponseWriter, r *http.Request, chat interceptors.Chat, sent, body []byte, caller payments.Caller) {
	ctx, reqID := r.Context(), reqInfo(r).id
	if chat.Choices > 1 {
		// Each choice could call a payment tool, and the turn continues one
		// conversation: refused rather than executed for a choice the bot
		// may not show, or passed to the bot raw. A request that leaves the
		// payment tools out gets here only for its tool calls
		// (paymentToolsOffered), and is told so: told the payment tools
		// were offered, its bot would look for them in its tool_choice.
		why := "with the payment tools offered to a signed-in user"
		if toolsRuledOut(chat, body) != "" || paymentChoice(chat, body, s.tools.IsPayment).None() {
			why = "to a signed-in user whose messages carry tool calls (a kept payment exchange may be restored into them)"
		}
		writeError(w, paramError("n", "paygate: n above 1 is not served "+why+"; send n: 1 or leave it out"))
		return
	}
	t := &turn{s: s, w: w, r: r, chat: chat, caller: caller, budget: s.cfg.Payments.Budget,
		reqBody:   sent,
		brk:       roundsBreak(gjson.Parse(chat.Stop)),
		payChoice: paymentChoice(chat, body, s.tools.IsPayment)}
	ruledOut := toolsRuledOut(chat, body)
	if ruledOut != "" {
		// The payment tools, which are tools, cannot go beside what the
		// bot asked for: every turn of such a bot's signed-in users failed
		// with a 400 about tools it never sent, where the provider serves
		// its request as it is. The turn runs without them (the payment
		// state still reaches the model), and a payment call that comes
		// anyway is refused.
		t.payChoice = interceptors.NoPaymentTools()
		// Said once per client and cause: a bot that uses them does so in
		// every turn, and a line per turn broke the README's "a healthy
		// turn writes no line at the default level".
		if _, said := s.ruledOutSaid.LoadOrStore(caller.Client+"\x00"+ruledOut, struct{}{}); !said {
			s.log.Info("payment tools not offered: the client's requests use "+ruledOut+", which providers refuse beside tools (logged once for this client)",
				"request_id", reqID, "client", caller.Client)
		}
	}
	// What the turn reads from the store before its upstream call, it reads
	// by deadlines (stateTimeout): a store that does not answer must not
	// hold the chat. The kept exchanges, one to three reads per tool-call
	// round of the conversation (lookupExchange), share one; the state
	// load has its own, so a long agent conversation on a loaded store
	// cannot spend it.
	var err error
	// unread are the first call ids of the assistant messages whose kept
	// exchange could not be read (unreadSinceUser).
	var unread []string
	// calls: whether the body may carry tool calls at all; without, nothing
	// is restored into it and no payment has run since the user's message.
	calls := toolCallsKey.InKey(body)
	if s.state != nil && calls {
		var n, failed int
		var lookupErr error
		ectx, cancel := s.stateCtx(ctx)
		body, n, err = interceptors.RestoreExchangesAt(body, func(at interceptors.ExchangeAt) (*interceptors.Exchange, []*interceptors.Exchange) {
			if err := ectx.Err(); err != nil {
				// Past the reads' deadline, or the client left: the rest
				// of a long conversation is not read one lookup at a time.
				failed, lookupErr, unread = failed+1, err, append(unread, at.CallID)
				return nil, nil
			}
			exact, loose, err := s.lookupExchange(ectx, caller, at)
			if err != nil {
				failed, lookupErr, unread = failed+1, err, append(unread, at.CallID)
			}
			return exact, loose
		})
		cancel()
		if err != nil {
			writeError(w, requestError("paygate: ", err))
			return
		}
		if n > 0 {
			s.log.Debug("payment exchanges restored", "request_id", reqID, "count", n)
		}
		if failed > 0 && ctx.Err() == nil {
			// Not when the bot hung up (or the drain deadline came),
			// which ended the reads: the store was only asked, and the
			// turn ends without a round.
			s.log.Warn("kept payment exchanges unreadable; the turn goes on without them", "request_id", reqID,
				"failed", failed, "err", lookupErr)
		}
	}
	// A request that only continues the user's last message (the bot's own
	// tool results after a mixed round, 3.7) goes on with what that message
	// already did: a clarification asked since still stands (the user has
	// not answered, so a money-moving call the model makes now is its
	// guess), and the money-moving calls run since count against the
	// budget, which bounds what one message of the user can set off,
	// however many requests the bot's tools split it into.
	if calls {
		t.clarify, t.moneyCalls = paymentsSinceUser(body, s.tools.IsPayment, t.moneyMoving)
	}
	if len(unread) > 0 && !t.clarify && unreadSinceUser(t.reqBody, unread) {
		// What the user's message already did is in an exchange that could
		// not be read (a store blip; or the reads' one deadline, spent on
		// the earlier rounds of a long conversation, which are read first):
		// the model, without it, would take the request for a fresh turn,
		// and the payment it already made or asked about for a second one.
		// Held back, on the safe side, until the user's next message.
		t.clarify = true
		if ctx.Err() == nil {
			s.log.Warn("money-moving calls held until the user's next message: a kept payment exchange of their last message is unreadable",
				"request_id", reqID)
		}
	}
	// A copy of the payment state in the bot's messages (a user's paste)
	// gets a state beside it even with no current order: the copy would be
	// the only state the model reads.
	st := s.loadState(ctx, reqID, caller)
	var names payments.ToolNames // none: every body with calls is read
	if n, ok := s.tools.(toolNamer); ok {
		names = n.Names()
	}
	imitated := st != nil && (imitatesState(t.reqBody) || hasPaymentCalls(t.reqBody, names, s.tools.IsPayment) ||
		answersPaymentCall(t.reqBody, names, s.tools.IsPayment))
	if st != nil && (len(st.Orders) > 0 || imitated) {
		t.pending = s.pendingAnnouncements(st)
		news := t.pending
		if len(st.Announced) > 0 && toolCallsKey.InKey(t.reqBody) {
			// The bot's follow-up with its tools' results for an answer
			// that told news (keepNews): the model writes here what the
			// user reads of it, and reads it as that answer's model did.
			// Told in the state only: the answer claimed it, and its
			// actions carried it.
			if told := s.toldToCalls(ctx, reqID, caller, st, t.reqBody); len(told) > 0 {
				news = append(slices.Clip(news), told...)
				t.retold = told
			}
		}
		msg := stateMessage(st.Orders, st.Now, s.cfg.Payments.StateInjection.SettledAfter.D(), news)
		if imitated {
			msg = guardedState(msg)
		}
		if msg != "" {
			var at int
			if body, at, err = interceptors.InsertStateMessage(body, msg); err != nil {
				writeError(w, requestError("paygate: ", err))
				return
			}
			// Later rounds only append messages: it stays at index at,
			// where a first_only provider's target finds it to move it
			// first.
			t.system = &failover.SystemMessage{Index: at, Text: msg}
		}
	}
	defs := s.toolDefsFor(caller.Client)
	if t.payChoice.None() && (ruledOut != "" || !hasPaymentCalls(body, names, s.tools.IsPayment)) {
		// The bot's tool_choice leaves the payment tools out: not offered
		// (a call that comes anyway is refused, execute). The bot's own
		// tools are still checked for names that clash with them. A
		// conversation that carries payment calls (a kept exchange restored
		// above) keeps their definitions, under the bot's tool_choice,
		// which still rules them out: Anthropic's models refuse tool calls
		// and results of tools the request does not define ("Requests which
		// include tool_use or tool_result blocks must define tools"), and a
		// bot asks for the final answer after its own tools with "none".
		// Not beside what rules tools out (ruledOut): there the
		// definitions are the 400 the turn avoids by offering none.
		defs = nil
	}
	if chat.HasTools {
		body, err = interceptors.AddTools(body, defs, s.toolNames)
	} else {
		sent := body
		body, err = interceptors.AppendTools(sent, defs)
		if end := bytes.LastIndexByte(sent, '}'); err == nil && len(body) > len(sent) && end >= 0 {
			// The tools member, appended last, and the closing brace:
			// the failover's checks for a message to adapt leave them out
			// (failover.Request.ToolsTail).
			t.toolsTail = body[end:]
		}
	}
	if err == nil && chat.HasFunctions {
		// The legacy "functions" offer the model tools too: a clash there
		// is a clash (SPEC 3).
		err = interceptors.CheckFunctions(body, s.toolNames)
	}
	if err != nil {
		writeError(w, requestError("", err))
		return
	}
	t.body = body
	if chat.Stream {
		t.stream()
	} else {
		t.nonStream()
	}
	if s.ledger != nil {
		s.ledger.Turn(ctx, caller.Client, caller.User, caller.Session, t.cost)
	}
}

// conversationAffinity names the conversation of a chat request for the
// weighted strategy (failover.Request.Affinity): the client, the end user
// and the session (the user's own when the bot names none). A request
// without an end user names none, and its order is drawn anew.
func conversationAffinity(client, user, session string) failover.Affinity {
	if user == "" {
		return failover.Affinity{}
	}
	return failover.Affinity{Client: client, User: user, Session: session}
}

// toolCallsKey finds a request whose messages may carry tool calls: most
// carry none, and every turn asks (jsonscan.Finder says why not
// bytes.Contains), by InKey: a key spelled with escapes is one too.
var toolCallsKey = jsonscan.NewFinder(`"tool_calls"`)

// functionCallKey finds a legacy "function_call" member (hasPaymentCalls).
var functionCallKey = jsonscan.NewFinder(`"function_call"`)

// nameKey finds a "name" member: of a legacy function message, or of a
// tool message (hasPaymentCalls).
var nameKey = jsonscan.NewFinder(`"name"`)

// clarifyStatuses are the statuses of the payment tool results that asked
// the model to have the user clarify (payments.Outcome.Clarify): invalid
// arguments, a call refused (beyond the budget, after a clarification,
// excluded by tool_choice), a rate limit.
var clarifyStatuses = map[string]bool{"needs_clarification": true, "not_executed": true, "rate_limited": true}

// paymentsSinceUser reads the payment tool results of a chat request's
// messages after its last user message (the kept exchanges of mixed rounds
// restored into the bot's follow-ups): whether one asked the user to
// clarify, and how many money-moving calls ran (every result of one that
// is not a clarification; an outage's "failed" too, on the safe side; so
// too of a call without a single name, which may have been one). A bot
// that wrote such results itself only holds its own user's payments back.
func paymentsSinceUser(body []byte, isPayment, isMoneyMoving func(name string) bool) (clarify bool, moneyCalls int) {
	if !toolCallsKey.InKey(body) {
		return false, 0
	}
	msgs := gjson.GetBytes(body, "messages").Array()
	last := -1
	for i, m := range msgs {
		if m.Get("role").Str == "user" {
			last = i
		}
	}
	calls := map[string]string{} // payment call id -> tool name
	for _, m := range msgs[last+1:] {
		switch m.Get("role").Str {
		case "assistant":
			m.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
				// Also the calls paygate refused unread, whose refusal
				// asked the user to clarify as any other: a custom call to
				// a payment tool (its name under "custom"), and one
				// without a single name, which went back unnamed or
				// (ParsableArguments) as UnnamedCall. Reading only
				// function names, a follow-up ran the create_order the
				// user had not yet been asked about. The name is read as
				// the turn reads a call's (callName: from the member that
				// is an object, whatever "type" says or whether it is
				// there): read by "type", a call of "type":"custom" with
				// a "function" create_order, or "type":"function" with a
				// "custom" one, was not counted, and the model's next
				// create_order for the same message ran.
				name, _ := callName(c)
				if isPayment(name) || unnamed(name) {
					calls[c.Get("id").Str] = name
				}
				return true
			})
		case "tool":
			name, ok := calls[m.Get("tool_call_id").Str]
			c := m.Get("content")
			if !ok || c.Type != gjson.String {
				continue
			}
			switch {
			case clarifyStatuses[gjson.Get(c.Str, "status").Str]:
				clarify = true
			case isMoneyMoving(name) || unnamed(name):
				// A call without a single name (named twice: one of its
				// names may be create_order) could have been a payment
				// call: its result counts unless it asked to clarify, as
				// paygate's refusal of such a call does.
				moneyCalls++
			}
		}
	}
	return clarify, moneyCalls
}

// unnamed reports a tool call's name that names no single tool: none, or
// several (callName), or the name paygate gave such a call (UnnamedCall).
func unnamed(name string) bool {
	return name == "" || name == interceptors.UnnamedCall
}

// unreadSinceUser reports whether one of the assistant messages after a chat
// request's last user message has its first call id in unread: the ids of
// those whose kept exchange could not be read. An id repeated across turns
// (a provider that numbers its ids per answer) counts as unread in both,
// on the safe side.
func unreadSinceUser(body []byte, unread []string) bool {
	found := false
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		switch m.Get("role").Str {
		case "user":
			found = false
		case "assistant":
			if id := m.Get("tool_calls.0.id"); id.Exists() && slices.Contains(unread, id.Str) {
				found = true
			}
		}
		return true
	})
	return found
}

// hasPaymentCalls reports whether a chat request's messages hold a call
// of a payment tool (a tool call, of a function or a custom tool, or a
// legacy function call named so), or a result naming one (a legacy
// function message, a tool message with a name: the model reads it as
// that tool's answer without the call before it), however the provider's
// parser reads it. The bot's body as it came holds none paygate wrote (paygate hands
// the bot none of its payment calls; it runs them and restores a kept
// exchange itself), so one there was written by someone else: a bot
// relaying the history its client sends carried a user's query_order call
// whose result said "paid", which the model read as the payment system's
// word; the turn then places its state with the note that other text
// claiming to be it is not (guardedState), as beside a copy of the state
// message. The body with a kept exchange restored holds paygate's own,
// whose tools' definitions it keeps.
func hasPaymentCalls(body []byte, names payments.ToolNames, isPayment func(name string) bool) bool {
	escaped := mayEscapeNames(body, names)
	calls, legacy := escaped || toolCallsKey.In(body), escaped || functionCallKey.In(body)
	results := escaped || nameKey.In(body)
	if !calls && !legacy && !results {
		return false
	}
	// Most bodies with calls (an agent bot's history) name no payment tool.
	if !escaped && !bytes.Contains(body, []byte(names.CreateOrder)) && !bytes.Contains(body, []byte(names.QueryOrder)) &&
		!bytes.Contains(body, []byte(names.RequestRefund)) {
		return false
	}
	found := false
	// Read in place: the body is not changed while it is read.
	gjson.Get(unsafe.String(unsafe.SliceData(body), len(body)), "messages").ForEach(func(_, m gjson.Result) bool {
		if legacy {
			found = isPayment(m.Get("function_call.name").Str)
		}
		if calls && !found {
			m.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
				// A custom tool's call ("type":"custom") is named under
				// "custom". One with a "function" and a "custom" both is
				// read by its "type" by the provider: either naming a
				// payment tool is one. (Not callName, which allocates for
				// each escaped value of a call it walks.)
				found = isPayment(c.Get("function.name").Str) || isPayment(c.Get("custom.name").Str)
				return !found
			})
		}
		if results && !found {
			// A result that names the tool it answers: a legacy function
			// message, or a tool message with a name, which the model
			// reads as that tool's word, its call there or not.
			if role := m.Get("role").Str; role == "function" || role == "tool" {
				found = isPayment(m.Get("name").Str)
			}
		}
		return !found
	})
	return found
}

// answersPaymentCall reports whether a chat request's messages hold a tool
// result under the id of one of paygate's payment calls that no call of
// the messages names: one paygate gave ("call_pg_<round>_<i>",
// uniqueCallIDs; "call_pg_r<n>", a restored exchange's), or Kimi's naming
// a payment tool ("functions.query_order:1"). paygate hands the bot none
// of those ids (the ids it makes for the bot's own calls are
// "call_pg<hex>"), and they are easily guessed: a relayed history's result
// "paid" under call_pg_1_0 sat, in the follow-up of a mixed round, beside
// the restored payment call it claimed to answer, and the model read it as
// that call's. As for hasPaymentCalls, the turn then places its state with
// the note that other text claiming to be it is not (guardedState).
func answersPaymentCall(body []byte, names payments.ToolNames, isPayment func(name string) bool) bool {
	// An id written with an escape in it reads the same to the
	// provider's parser: looked for as hasPaymentCalls looks for names.
	escaped := mayEscapeNames(body, names)
	if !escaped && !bytes.Contains(body, []byte(`call_pg_`)) && !namesKimiPaymentID(body, names) {
		return false
	}
	named := map[string]bool{}
	var answers []string
	gjson.Get(unsafe.String(unsafe.SliceData(body), len(body)), "messages").ForEach(func(_, m gjson.Result) bool {
		m.Get("tool_calls.#.id").ForEach(func(_, id gjson.Result) bool {
			named[id.String()] = true
			return true
		})
		if id := m.Get("tool_call_id"); id.Type == gjson.String && m.Get("role").Str == "tool" {
			answers = append(answers, id.Str)
		}
		return true
	})
	for _, id := range answers {
		if named[id] {
			continue
		}
		if strings.HasPrefix(id, "call_pg_") {
			return true
		}
		if _, ok := kimiCallIndex(id); ok && isPayment(id[len("functions."):strings.LastIndexByte(id, ':')]) {
			return true
		}
	}
	return false
}

// namesKimiPaymentID reports whether body has Kimi's id of a payment
// tool's call, "functions.<name>:", somewhere: most bodies with Kimi's ids
// (an agent bot's history) name only the bot's tools.
func namesKimiPaymentID(body []byte, names payments.ToolNames) bool {
	const prefix = "functions."
	if names == (payments.ToolNames{}) {
		// Names unknown (hasPaymentCalls): every body with such ids.
		return bytes.Contains(body, []byte(prefix))
	}
	for off := 0; ; {
		i := bytes.Index(body[off:], []byte(prefix))
		if i < 0 {
			return false
		}
		rest := body[off+i+len(prefix):]
		for _, n := range [...]string{names.CreateOrder, names.QueryOrder, names.RequestRefund} {
			if n != "" && len(rest) > len(n) && string(rest[:len(n)]) == n && rest[len(n)] == ':' {
				return true
			}
		}
		off += i + len(prefix)
	}
}

// mayEscapeNames reports whether body may write a key, a payment tool's
// name or a payment call's id with a JSON escape in it
// ("tool\u005fcalls", "\u0071uery_order"), which the provider's parser
// reads the same (hasPaymentCalls, answersPaymentCall): an escape of an
// ASCII character (\u00XX), as the keys are and the names (OpenAI takes
// ASCII names alone); of any character for a name that is not. Not any
// \u: a Chinese history from Python's json.dumps (every character an
// escape) was read whole on each turn.
func mayEscapeNames(body []byte, names payments.ToolNames) bool {
	return bytes.Contains(body, []byte(`\u00`)) || !asciiNames(names) && bytes.Contains(body, []byte(`\u`))
}

// asciiNames reports whether the payment tools' names are ASCII alone.
func asciiNames(n payments.ToolNames) bool {
	for _, s := range [...]string{n.CreateOrder, n.QueryOrder, n.RequestRefund} {
		for i := 0; i < len(s); i++ {
			if s[i] >= utf8.RuneSelf {
				return false
			}
		}
	}
	return true
}

// paymentToolsOffered reports whether a signed-in user's chat request may
// get the payment tools (runTurn): not when it uses what rules tools out
// (toolsRuledOut), nor when its tool_choice or function_call leaves every
// payment tool out (PaymentChoice.None), unless it carries tool calls. One
// that carries tool calls may get a kept payment exchange restored, and
// with it the payment tools' definitions (hasPaymentCalls), which only the
// turn does; the turn restores it beside what rules tools out too, so such
// a request is the turn's whatever leaves the payment tools out.
func paymentToolsOffered(chat interceptors.Chat, body []byte, isPayment func(name string) bool) bool {
	if toolCallsKey.InKey(body) {
		return true
	}
	return toolsRuledOut(chat, body) == "" && !paymentChoice(chat, body, isPayment).None()
}

// paymentChoice is what the bot's tool_choice and function_call let the
// model call of the payment tools (interceptors.ReadPaymentChoice). A
// choice that forces a call without naming a tool ("required") in a
// request that offers no tool of the bot's own leaves them all out: it
// asks for a call of a tool the bot does not have, which OpenAI answers
// with a 400 ("tool_choice is only allowed when tools are specified"), and
// with the payment tools appended it forced a payment call on whatever the
// user said (a create_order of the model's choosing). Such a request goes
// as the bot sent it. A payment tool forced by name, or listed in
// allowed_tools, is still the bot's to force.
func paymentChoice(chat interceptors.Chat, body []byte, isPayment func(name string) bool) interceptors.PaymentChoice {
	if interceptors.ForcesUnnamedCall(chat.ToolChoice) && len(interceptors.ToolNames(body)) == 0 {
		return interceptors.NoPaymentTools()
	}
	return interceptors.ReadPaymentChoice(chat.ToolChoice, chat.FunctionCall, isPayment)
}

// toolsRuledOut names what in a chat request rules out tools at the
// providers, "" when nothing does: the legacy "functions" (OpenAI: "'functions'
// and 'tools' cannot both be provided") or Predicted Outputs ("prediction":
// function calling is not supported with it).
func toolsRuledOut(chat interceptors.Chat, body []byte) string {
	switch {
	case chat.HasFunctions && gjson.GetBytes(body, "functions").Type != gjson.Null:
		return "the legacy functions"
	case chat.HasPrediction:
		return "Predicted Outputs (prediction)"
	}
	return ""
}

// open opens the current round.
func (t *turn) open() (*failover.Response, error) {
	return t.openWith(nil, nil)
}

// openWith opens the current round's request (request): without the
// providers excluded, and continuing cont when it is not nil (a recovery,
// openRecovery). A round payments.followup_model answers none of (every
// target down, or refusing what the conversation holds: a cheap model
// that answers "tools" with a 400) is asked again of the turn's own model,
// which answered the rounds before it, and so are the turn's later rounds
// (followupFailed): the follow-up model only saves money, and without it
// a payment call already run reached the bot as an error, its
// order_created with it, where the model the bot asked for stood ready.
// A recovery whose targets refused it otherwise (a model that takes no
// tools) is such a round too. Not when the request ended (the client
// left, the drain deadline), nor for a round or a recovery a content
// filter refused (contentFiltered): no provider is asked to finish a
// flagged answer, or asked a flagged conversation again (SPEC 5).
func (t *turn) openWith(excluded []string, cont *failover.Continuation) (*failover.Response, error) {
	req := t.request()
	req.ExcludeProviders, req.Continuation = excluded, cont
	resp, err := t.opened(t.s.up.Open(t.r.Context(), req))
	if err == nil || req.Model == t.chat.Model || t.r.Context().Err() != nil || contentFiltered(err) {
		return resp, err
	}
	t.followupFailed = true
	t.s.log.Warn("payments.followup_model answered no round; the turn's own model is asked", "request_id", reqInfo(t.r).id,
		"followup_model", req.Model, "model", t.chat.Model, "err", err)
	req = t.request()
	req.ExcludeProviders, req.Continuation = excluded, cont
	return t.opened(t.s.up.Open(t.r.Context(), req))
}

// contentFiltered reports a round a content filter refused
// (failover.UpstreamError.ContentFilter): SPEC 5 retries it nowhere, so the
// turn's own model is not asked what followup_model's provider flagged.
func contentFiltered(err error) bool {
	var ue *failover.UpstreamError
	return errors.As(err, &ue) && ue.ContentFilter
}

// opened notes the targets an answered round found too small for the
// conversation (tooSmall), adds the cost of its attempts refused as
// malformed though billed (accountRefused), and returns Open's result as
// it is.
func (t *turn) opened(resp *failover.Response, err error) (*failover.Response, error) {
	t.tooSmall = addTooSmall(t.tooSmall, resp)
	t.cost += t.s.accountRefused(t.r.Context(), resp, err)
	return resp, err
}

// addTooSmall adds to names, once each, the targets that refused resp's
// round for its length (context_length_exceeded, 413): a later round of the
// conversation, or a recovery that continues the answer, only adds to it,
// so none asks them again (SPEC 5: never the same target again). A nil
// resp adds none.
func addTooSmall(names []failover.TargetName, resp *failover.Response) []failover.TargetName {
	if resp == nil {
		return names
	}
	for _, a := range resp.Tried {
		if a.Cause != failover.CauseContextLength && a.Cause != failover.CauseRequestTooLarge {
			continue
		}
		if n := (failover.TargetName{Provider: a.Provider, Model: a.Model}); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// request is the current round's upstream request.
func (t *turn) request() *failover.Request {
	model := t.chat.Model
	if t.afterPayment && t.s.cfg.Payments.FollowupModel != "" && !t.followupFailed {
		// A round that only turns a payment result into words may go to a
		// cheaper model.
		model = t.s.cfg.Payments.FollowupModel
	}
	var req *failover.Request
	if t.req0Used {
		req = new(failover.Request)
	} else {
		req, t.req0Used = &t.req0, true
	}
	*req = failover.Request{
		Model:       model,
		Method:      http.MethodPost,
		Path:        "/chat/completions",
		Body:        t.body,
		Stream:      t.chat.Stream,
		ContentType: "application/json",
		Accept:      t.s.acceptFor(t.r.Header, t.caller.User),
		System:      t.system,
		Affinity:    conversationAffinity(t.caller.Client, t.caller.User, t.caller.Session),

		ExcludeTargets: t.tooSmall,
	}
	if len(t.toolsTail) > 0 && bytes.HasSuffix(t.body, t.toolsTail) {
		req.ToolsTail = len(t.toolsTail)
	}
	if !t.chat.Stream {
		// The turn itself, not a func bound to it (an allocation a
		// round): the capture it judges by is made only when asked.
		req.Names = t
	}
	return req
}

// NameGoesOn is, for a non-stream round, how a name a provider streams in
// pieces into events answering it is joined (failover.Request.Names): as
// the stream capture joins it, by the payment tools' names and the bot's.
// A stream's capture reads them itself.
func (t *turn) NameGoesOn(name, piece string) bool {
	if t.namesCapture == nil {
		t.namesCapture = t.newCapture()
	}
	return t.namesCapture.NameGoesOn(name, piece)
}

// newCapture is a tool-call capture for the turn's rounds, told the
// payment tools' names and the bot's, for names streamed in pieces.
func (t *turn) newCapture() *interceptors.Capture {
	capture := interceptors.NewCapture(t.isPaymentCall)
	if n, ok := t.s.tools.(toolNamer); ok {
		// Each also under harmony's namespace (paymentCallName), which
		// may come in pieces of its own: "functions." then "create_order".
		names := n.Names()
		capture.PaymentNames(names.CreateOrder, names.QueryOrder, names.RequestRefund,
			harmonyPrefix+names.CreateOrder, harmonyPrefix+names.QueryOrder, harmonyPrefix+names.RequestRefund)
	}
	if t.chat.HasTools {
		capture.BotNames(botToolNames(t.reqBody)...)
	}
	return capture
}

// botToolNames are the names of the tools a bot's request body offers,
// each also under harmony's namespace: the bot's create_order_v2 streamed
// as "functions.", "create_order", "_v2" is held past
// "functions.create_order" as "create_order" is past its bare name.
func botToolNames(body []byte) []string {
	bot := interceptors.ToolNames(body)
	for _, n := range bot[:len(bot):len(bot)] {
		bot = append(bot, harmonyPrefix+n)
	}
	return bot
}

// stream runs the rounds of a streaming turn.
func (t *turn) stream() {
	capture := t.newCapture()
	// The exchange a mixed round keeps is found by the bot's call ids.
	capture.GiveCallIDs()
	t.capture = capture
	rec := &recoveries{limit: t.s.cfg.Failover.Recovery}
	// Between rounds (payment calls executing, the next round's first token)
	// the client hears nothing; server.sse_keepalive fills that gap.
	endGap := func() {}
	// Stopped however the turn ends: a payment call's panic, passed on
	// to this goroutine (executeUnlessCut), left the keep-alives writing
	// to the response after the handler returned.
	defer func() { endGap() }()
	for round := 0; ; round++ {
		resp, err := t.open()
		endGap()
		if err != nil {
			if t.sw == nil {
				t.fail(err)
				return
			}
			if round > 0 && t.capRefused(err) {
				t.endCapped(err)
				t.finishStream(nil, t.rounds[len(t.rounds)-1].Model, "length")
				return
			}
			t.endStreamWithError(err)
			return
		}
		if t.sw == nil {
			t.s.setPaygateHeaders(t.w.Header(), resp)
			h := t.w.Header()
			setStreamHeaders(h)
			t.w.WriteHeader(http.StatusOK)
			t.sw = sse.NewWriter(t.w)
		}
		// Round 0's chunks keep the provider's id, or get the fallback
		// when they have none; the later rounds' get the turn's id and
		// created.
		capture.StartRound(round, cmp.Or(t.turnID, t.fallbackID()), t.created)
		if t.inWord {
			capture.BreakBeforeText(t.brk)
		}
		res, resp, ok := t.relayRound(round, resp, capture, rec)
		if !ok {
			return
		}
		if res.Annotations != nil {
			t.annotations = appendElements(t.annotations, string(res.Annotations))
		}
		t.fingerprint = res.Fingerprint
		// The round's text as the bot read it: its text parts when it
		// came as parts (the plain text among them included), whose last
		// word the next round's text must not run into either.
		said := res.Content
		if res.ContentParts != nil {
			said = textOfParts(string(res.ContentParts))
		}
		if said != "" {
			t.inWord = !endsWithSpace(said)
		}
		t.readPaymentCalls(res.PaymentCalls)
		if len(res.StrayCalls) > 0 {
			t.strayCalls(res.StrayCalls)
		}
		t.endRound(round, resp, res.ID, res.Model, res.Created, res.Usage, res.UsageJSON)
		if res.Lost && (len(res.ClientCalls) > 0 || res.BotLegacyCall || len(res.PaymentCalls) == 0 && (saysCalls(res.FinishReason) || res.FinishReason == "")) {
			// An event skipped unread may have held a piece of the bot's
			// own call's arguments, and what is left can still read as a
			// call the model did not make ({"city":"Paris"} without its
			// lost `,"unit":"F"`): no finish tells the bot to run it, as
			// no payment call of such a round runs (Damaged). Nor does
			// a finish of calls none of which is left, the call whole in
			// the event skipped (one naming a member two ways): handed
			// on, the bot read calls to run and found none. A legacy
			// function_call of the bot's went out as it came, and is
			// none of ClientCalls: an SDK runs it whatever the finish
			// ("stop", as Gemini ends a tool round). Nor does a finish
			// paygate would make up when none was read: the provider's
			// came (the relay had it), in the event skipped, with
			// whatever it held (a whole call, as Gemini sends one).
			t.s.log.Warn("client tool calls from a round with an unreadable event not handed on", "request_id", reqInfo(t.r).id, "calls", len(res.ClientCalls))
			for _, c := range res.PaymentCalls {
				// Not run, as execute counts a Damaged call.
				t.s.metrics.toolCalls.WithLabelValues(t.metricTool(c.Name), "not_executed").Inc()
			}
			t.endStreamWithError(&failover.StreamError{Provider: resp.Provider, Cause: failover.CauseMalformed,
				Err: errors.New("an event of a round with the bot's tool calls was unreadable and skipped")})
			return
		}
		if len(res.LateCalls) > 0 {
			// The bot's own calls whose names were held while they might
			// grow, whole at the round's end (Capture.EndNames): they go
			// out before the finish, as the calls of the round they are.
			c := chunkHead(t.turnID, t.rounds[len(t.rounds)-1].Model, t.created)
			c = append(c, `,"choices":[{"index":0,"delta":{"tool_calls":`...)
			c = append(c, res.LateCalls...)
			c = append(c, `},"logprobs":null,"finish_reason":null}]}`...)
			_ = t.sw.Queue(c) // a client gone is found by the writes after
		}
		if len(res.LateLegacy) > 0 {
			// The same of the bot's legacy function_call (LateLegacy).
			c := chunkHead(t.turnID, t.rounds[len(t.rounds)-1].Model, t.created)
			c = append(c, `,"choices":[{"index":0,"delta":{"function_call":`...)
			c = append(c, res.LateLegacy...)
			c = append(c, `},"logprobs":null,"finish_reason":null}]}`...)
			_ = t.sw.Queue(c)
		}
		if len(res.PaymentCalls) == 0 {
			fc := res.FinishChunk
			if len(res.ClientCalls) > 0 && stopForCalls(res.FinishReason) && fc != nil {
				// Gemini ends a tool round with "stop"; the client must hear
				// "tool_calls" to run its tools.
				fc, _ = sjson.SetBytes(fc, "choices.0.finish_reason", "tool_calls")
			}
			reason := "stop"
			if len(res.ClientCalls) > 0 {
				if err := t.keepExchange(res.Content, roundReasoning(&res), nil, res.ClientCalls, nil); err != nil {
					t.withdraw(err)
					return
				}
				reason = "tool_calls" // also when the round had no finish chunk
				t.handed = res.ClientCalls
			}
			t.finishStream(fc, res.Model, reason)
			return
		}
		if len(res.ClientCalls) == 0 && round+1 >= t.budget.MaxRounds {
			// No round is left to tell the user what a payment call did, so
			// none runs: the turn ends with the clarification (SPEC 3).
			t.overRounds(res.PaymentCalls)
			t.streamClarification(res.Model)
			return
		}
		endGap = keepAlive(t.sw, t.s.cfg.Server.SSEKeepalive.D())
		results := t.execute(res.PaymentCalls, res.ClientCalls, res.FinishReason)
		if t.clientGone {
			endGap()
			t.endStreamWithError(context.Canceled) // says so only to a client still there, at shutdown
			return
		}
		if len(res.ClientCalls) > 0 {
			endGap()
			// A mixed round: the client gets its own calls and the turn ends
			// here; the payment exchange waits for the bot's next request.
			if err := t.keepExchange(res.Content, roundReasoning(&res), res.PaymentCalls, res.ClientCalls, results); err != nil {
				t.withdraw(err)
				return
			}
			t.handed = res.ClientCalls
			t.finishStream(nil, res.Model, callsFinish(res.FinishReason))
			return
		}
		if t.capSpent() {
			endGap()
			t.endCapped(nil)
			t.finishStream(nil, res.Model, "length")
			return
		}
		msgs := append([][]byte{interceptors.AssistantToolMessageWith(res.Content, roundReasoning(&res), interceptors.ParsableArguments(res.PaymentCalls))}, results...)
		if err := t.nextBody(msgs); err != nil {
			endGap()
			t.endStreamWithError(err)
			return
		}
	}
}

// relayRound relays one round to the client and recovers a stream cut after
// its first byte (SPEC 5): the round is asked again of another provider with
// the text the client already received, and only the rest reaches the client,
// under the same id. When the client already received (part of) its own tool
// calls, which no provider can prefill, the round is asked again as it was and
// the fresh answer must repeat the text and those calls (same names, arguments
// beginning with the sent ones); the client gets the rest of each call under
// the index it knows, and the round's result reports the calls under the ids
// the client kept. It returns the round's result (its Content and Sent
// cover every attempt) and the response that finished it, closed; false when
// the turn is over and already reported.
func (t *turn) relayRound(round int, resp *failover.Response, capture *interceptors.Capture, rec *recoveries) (interceptors.RoundResult, *failover.Response, bool) {
	var (
		resume        *interceptors.Resume
		sentText      string // text the client got this round from broken attempts
		sentReasoning string
		sentRefusal   string
		reasoningKey  string                // the name a broken attempt's reasoning came under
		first         *failover.StreamError // the cut being recovered
		excluded      []string
		// The cut attempts' annotations (RoundResult.Annotations), held
		// for the turn's end and not sent; fresh: the attempt answers the
		// round afresh (no prefill).
		sentAnnotations []byte
		fresh           bool
	)
	for {
		err := t.relay(resp, capture, resume)
		resp.Close()
		if err == nil {
			capture.EndNames()
			res := capture.EndRound()
			if first != nil {
				t.s.countRecovery(first, recoveryRecovered)
				res.Content, res.Reasoning = sentText+res.Content, sentReasoning+res.Reasoning
				if res.ReasoningKey == "" {
					// All of the round's reasoning came before the cut.
					res.ReasoningKey = reasoningKey
				}
				res.Sent.Text, res.Sent.Reasoning = res.Content, res.Reasoning
				res.Sent.Refusal = sentRefusal + res.Sent.Refusal
				res.Annotations = withCutAnnotations(sentAnnotations, res.Annotations, fresh)
			}
			return res, resp, true
		}
		partial := capture.EndRound()
		// Every attempt that reported usage is accounted, the one whose
		// client left included: the provider answered (often the whole
		// round, usage and all, before the last flush failed) and bills it,
		// as the plain path accounts it. Accounting only: the turn ends
		// here, so no payment call of this round runs.
		t.accountAttempt(resp, partial.Usage)
		if errors.Is(err, errClientGone) {
			if first != nil {
				t.s.countRecovery(first, recoveryClientGone)
			}
			return partial, resp, false
		}
		if errors.Is(err, interceptors.ErrDiverged) {
			t.endUnrecovered(first, recoveryDiverged, "the new answer diverges from what was already sent")
			return partial, resp, false
		}
		var se *failover.StreamError
		if !errors.As(err, &se) || se.Cause == failover.CauseCanceled {
			if !t.s.recoveryAbandoned(t.r, first, err) {
				t.endStreamWithError(err)
			}
			return partial, resp, false
		}
		if se.Refused() {
			// A content filter stopped the answer: no provider is asked to
			// finish it (SPEC 5), the client gets the provider's reason.
			t.endRefused(first, se)
			return partial, resp, false
		}
		if first == nil {
			first = se
		}
		if round == 0 && t.turnID == "" {
			t.turnID, t.created = cmp.Or(partial.ID, t.fallbackID()), cmp.Or(partial.Created, time.Now().Unix())
		}
		sentText += partial.Sent.Text
		sentReasoning += partial.Sent.Reasoning
		sentRefusal += partial.Sent.Refusal
		sentAnnotations = withCutAnnotations(sentAnnotations, partial.Annotations, fresh)
		if partial.ReasoningKey != "" {
			reasoningKey = partial.ReasoningKey
		}
		// The client's calls sent so far: this attempt's, which include
		// those a recovery attempt repeated (ContinueCalls).
		sentCalls := partial.Sent.Calls
		if partial.Sent.Opaque {
			t.endUnrecovered(first, recoveryOpaque, opaqueWhy)
			return partial, resp, false
		}
		if why, outcome := rec.take(time.Now()); why != "" {
			t.endUnrecovered(first, outcome, why)
			return partial, resp, false
		}
		excluded = append(excluded, se.Provider)
		cont := sentText
		if len(sentCalls) > 0 || sentRefusal != "" {
			// A tool call or a refusal cannot be prefilled: the fresh
			// answer is matched against the text, the refusal and the
			// calls the client has.
			cont = ""
		}
		// The bot hears nothing until the next provider's first byte:
		// keep-alives fill that wait, as they fill the gap between rounds.
		next, err := keptAlive(t.sw, t.s.cfg.Server.SSEKeepalive.D(), func() (*failover.Response, error) {
			return t.openRecovery(excluded, cont)
		})
		if err != nil && t.s.recoveryAbandoned(t.r, first, err) {
			return partial, resp, false
		}
		if refused := refusedRecovery(err); refused != nil {
			// The provider asked to finish the answer refused it (a
			// content filter): its reason, not "not recovered".
			t.endRefused(first, refused)
			return partial, resp, false
		}
		if err != nil {
			t.s.log.Warn("stream recovery found no provider", "request_id", reqInfo(t.r).id, "cause", first.Cause, "err", err)
			t.endUnrecovered(first, recoveryNoProvider, "no other provider could continue the answer")
			return partial, resp, false
		}
		t.s.log.Info("stream recovery", "request_id", reqInfo(t.r).id, "round", round, "cause", se.Cause,
			"from", se.Provider, "to", next.Provider, "continued", next.Continued, "sent_bytes", len(sentText))
		resp = next
		capture.StartRound(max(round, 1), t.turnID, t.created)
		resume = interceptors.NewResume("", sentText, sentReasoning, !next.Continued).WithRefusal(sentRefusal)
		if fresh = !next.Continued; fresh {
			capture.Repeats(sentText)
		}
		if len(sentCalls) > 0 {
			capture.ContinueCalls(sentCalls)
			resume.WithCalls(sentCalls, t.isPaymentCall).WithHeldNames(capture.HeldNameGoesOn)
		}
	}
}

// withCutAnnotations is a round's annotations after a cut: the cut
// attempts' (cut), which the client never got (Capture holds them for the
// turn's end), then the attempt's own (own). An attempt that answers the
// round afresh with citations of its own places them in the whole round's
// text, as the cut ones did: its own stand alone, or the client would get
// each citation twice.
func withCutAnnotations(cut, own []byte, fresh bool) []byte {
	switch {
	case len(cut) == 0 || fresh && own != nil:
		return own
	case own == nil:
		return cut
	}
	return append(append(cut[:len(cut)-1:len(cut)-1], ','), own[1:]...)
}

// stopForCalls reports a finish reason that a round with the client's own
// tool calls should tell the client as "tool_calls": Gemini ends such a
// round with "stop" (or none; "STOP", its own word, as a relay passes it
// on: "stop" in any case, as the cut words are read), a server answering in
// the legacy shape with "function_call" (its payment call held back, or
// its tool round so labelled), which has an SDK that branches on it look
// for a function_call and run none of the bot's tool_calls. "length" and
// "content_filter" stay: the calls may be cut, and the bot must not run
// them as if whole.
func stopForCalls(reason string) bool {
	return strings.EqualFold(reason, "stop") || reason == "" || reason == "function_call"
}

// callsFinish is the finish reason the client hears for a round that hands
// it its own calls after paygate ran the round's payment calls (a mixed
// round): "tool_calls", unless the provider said the round was cut
// (stopForCalls).
func callsFinish(reason string) string {
	if stopForCalls(reason) {
		return "tool_calls"
	}
	return reason
}

// roundReasoning is a streamed round's reasoning, for its assistant tool
// message: the capture accumulates the reasoning deltas as it does the
// text, and notes the name they came under, which the reasoning goes back
// under, and merges the reasoning_details deltas and the content parts of
// Mistral's thinking (they also pass to the client as they came).
func roundReasoning(res *interceptors.RoundResult) interceptors.Reasoning {
	return interceptors.Reasoning{Content: res.Reasoning, Key: res.ReasoningKey, Details: res.Details, Parts: res.ContentParts}
}

// errClientGone ends a relay whose client stopped reading.
var errClientGone = errors.New("client gone")

// flushBeforeWait flushes the events queued on sw unless resp's next one is
// already at hand: what arrived in one read leaves in one write, and nothing
// waits behind the provider's next bytes. The first token (with what was
// held before it) is flushed at once, so the time to the first chunk never
// includes the rest of a burst. Both relays call it before every Next.
func flushBeforeWait(sw *sse.Writer, resp *failover.Response) error {
	if sw.Queued() && (!resp.Buffered() || !sw.Flushed() && !resp.Holding()) {
		return sw.Flush()
	}
	return nil
}

// flushAfterRelay flushes what a relay left queued (recovery, payment
// calls and the connection's drain all wait after it) and returns the
// relay's result, or errClientGone when a complete relay cannot be flushed.
func flushAfterRelay(sw *sse.Writer, err error) error {
	if sw.Queued() && sw.Flush() != nil && err == nil {
		return errClientGone
	}
	return err
}

// relay passes one attempt's events through the capture to the client
// (through resume first, when the attempt takes over a cut one). It returns
// nil when the round is complete, else why it stopped: a *failover.StreamError,
// interceptors.ErrDiverged, errClientGone, or roundTooLarge's
// *failover.UpstreamError (not recovered). Everything relayed has been
// flushed to the client when it returns.
func (t *turn) relay(resp *failover.Response, capture *interceptors.Capture, resume *interceptors.Resume) error {
	return flushAfterRelay(t.sw, t.relayEvents(resp, capture, resume))
}

// skippedChunks counts an attempt's chunks of one level that the capture
// could not read (relayEvents), and keeps the last one's error.
type skippedChunks struct {
	level slog.Level
	n     int
	err   error
}

// logSkippedChunks says, as an attempt's relay ends, how many unreadable
// chunks of a level it skipped in all, when more than the first, which
// was logged as it came.
func (t *turn) logSkippedChunks(skipped *[2]skippedChunks) {
	for i := range skipped {
		if k := &skipped[i]; k.n > 1 {
			t.s.log.Log(t.r.Context(), k.level, "upstream chunks skipped", "request_id", reqInfo(t.r).id,
				"chunks", k.n, "err", k.err)
		}
	}
}

// relayEvents is relay's loop; events go out queued (see flushBeforeWait).
func (t *turn) relayEvents(resp *failover.Response, capture *interceptors.Capture, resume *interceptors.Resume) error {
	quiet := repeatQuiet(resume, t.s.cfg.Server.SSEKeepalive.D())
	late := 0 // events skipped after the finish, told to the capture
	// The chunks the capture cannot read are said once per attempt and
	// level: the first at once, the rest counted in one line as the
	// attempt ends. A line per chunk wrote 1,000 lines (181 KB) for one
	// answer of 1,000 such chunks.
	skipped := [2]skippedChunks{{level: slog.LevelWarn}, {level: slog.LevelDebug}}
	defer t.logSkippedChunks(&skipped)
	for {
		if flushBeforeWait(t.sw, resp) != nil {
			return errClientGone
		}
		ev, err := resp.Next()
		if n := resp.SkippedAfterFinish(); n > late {
			// The event Next returned may go on with a call whose piece
			// the skipped one held (Capture.SkippedAfterFinish).
			late = n
			capture.SkippedAfterFinish()
		}
		if errors.Is(err, io.EOF) {
			if resp.Skipped() > 0 {
				// What the skipped events carried may be a piece of a
				// payment call: the round's are not run (execute).
				capture.Lose()
			}
			return nil
		}
		if err != nil {
			return err
		}
		// An empty "error" beside the choices would pass for an error
		// (Capture holds a chunk with an error back). An event failover's
		// scan found no "error" in has none.
		data := ev.Data
		if resp.EventMayHoldError() {
			data = interceptors.DropEmptyError(data)
		}
		if resume != nil {
			if data, err = resume.Filter(data); err != nil {
				return err
			}
			if data == nil && quiet.due(resume) && t.sw.KeepAlive() != nil {
				return errClientGone
			}
			if !resume.Active() {
				resume = nil
			}
			if data == nil {
				continue
			}
		}
		var out []byte
		if sameBytes(data, ev.Data) {
			// As Next returned it: valid JSON (its validating pass).
			out, err = capture.ProcessValid(data)
		} else {
			out, err = capture.Process(data)
		}
		if err != nil {
			// A value that holds no piece of a chunk (a null, a word: some
			// relays' keep-alives) costs the round nothing: said at debug,
			// or a relay that sends one between its chunks wrote a warning
			// per keep-alive into every healthy stream.
			k := &skipped[0]
			if rest := bytes.TrimLeft(data, " \t\r\n"); len(rest) == 0 || rest[0] != '{' && rest[0] != '[' {
				k = &skipped[1]
			}
			if k.n++; k.n == 1 {
				t.s.log.Log(t.r.Context(), k.level, "upstream chunk skipped", "request_id", reqInfo(t.r).id, "err", err)
			}
			k.err = err
			continue
		}
		if capture.Held() > maxRoundText {
			return roundTooLarge(resp.Provider, "text is over "+strconv.Itoa(maxRoundText)+" bytes")
		}
		if capture.Calls() > maxRoundCalls {
			return roundTooLarge(resp.Provider, "tool calls are over "+strconv.Itoa(maxRoundCalls))
		}
		if out != nil {
			if brk := capture.Break(); brk != nil {
				if err := t.sw.Queue(brk); err != nil {
					return errClientGone
				}
			}
			if err := queueEvent(t.sw, out, ev.Data, resp); err != nil {
				return errClientGone
			}
		}
	}
}

// sameBytes reports whether a and b are the same bytes in memory: the
// same start and length.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// queueEvent queues out, what a relay sends for the event ev.Data that
// resp's Next returned, with no search for line breaks when out is that
// event's bytes unchanged (the same start and length: an interceptor
// that changes an event returns other bytes) and failover's validating
// pass saw none in it (Response.EventOneLine). sse.Writer.Queue searched
// every chunk twice, for a CR and for a LF, that none of OpenAI's
// chunks has.
func queueEvent(sw *sse.Writer, out, data []byte, resp *failover.Response) error {
	if len(out) > 0 && sameBytes(out, data) && resp.EventOneLine() {
		return sw.QueueLine(out)
	}
	return sw.Queue(out)
}

// maxRoundText bounds the text a payment turn holds of one round
// (interceptors.Capture.Held): 32 MiB, failover's bound on a non-stream
// chat completion (its default Options.MaxResponseBytes), far above the
// longest answer a model writes. Unbounded, an upstream that streams on
// and on (within its total timeout) had all it sent held. A variable so a
// test need not stream that much.
var maxRoundText = 32 << 20

// maxRoundCalls bounds the tool calls of one round of a payment turn
// (interceptors.Capture.Calls): far above the calls a model makes at once.
// Each tool-call delta's call is looked for among the round's calls, so
// without a bound an upstream that streams new calls without end cost
// time in the square of their number.
const maxRoundCalls = interceptors.MaxCalls

// roundTooLarge ends a round whose text passed maxRoundText, or whose
// calls maxRoundCalls (what says which): the stream
// ends with upstream_response_too_large, as a non-stream answer over
// failover's bound is refused, and is not recovered (the next provider
// would have to be sent all of it).
func roundTooLarge(provider, what string) error {
	return &failover.UpstreamError{Status: http.StatusBadGateway, Type: "upstream_error", Code: failover.CauseResponseTooLarge,
		Message: "provider " + provider + ": the streamed answer's " + what, Provider: provider}
}

// openRecovery asks the model again, without the providers that broke this
// round, for the rest of an answer whose beginning the client has.
func (t *turn) openRecovery(excluded []string, sent string) (*failover.Response, error) {
	return t.openWith(excluded, &failover.Continuation{Text: sent})
}

// accountAttempt prices a broken attempt's usage to its provider: failed
// attempts (and one whose client left) are accounted, the client's usage is
// not charged for them. One that reported no usage (cut before it came) is
// recorded with no token, as the plain path records it (streamRound): the
// provider billed it, its count unknown.
func (t *turn) accountAttempt(resp *failover.Response, u *interceptors.Usage) {
	var lu accounting.Usage
	if u != nil {
		lu = ledgerUsage(*u)
	}
	t.cost += t.s.roundCost(t.r.Context(), resp, lu)
}

// fallbackID is the turn's id when its first round has none: an empty id
// reads as none to the Node SDK's stream helper, which then drops every
// later chunk's top-level members, the paygate object included.
func (t *turn) fallbackID() string { return reqInfo(t.r).fallback() }

// usageObjects are the usage objects of the turn's rounds that reported
// one, in order.
func (t *turn) usageObjects() [][]byte {
	objs := make([][]byte, 0, len(t.rounds))
	for _, r := range t.rounds {
		if r.usage != nil {
			objs = append(objs, r.usage)
		}
	}
	return objs
}

// allMetered reports whether every round of the turn reported its usage.
func (t *turn) allMetered() bool {
	for _, r := range t.rounds {
		if r.usage == nil {
			return false
		}
	}
	return true
}

// endRound accounts a finished round; obj is its usage object as the
// provider sent it (nil: u's counts are all there is). Round 0 names the
// turn: its id and created (paygate's clock when it had none) go on every
// later round's chunks and on the chunks paygate writes, as OpenAI gives
// every chunk of a stream the same id and timestamp.
func (t *turn) endRound(round int, resp *failover.Response, id, model string, created int64, u *interceptors.Usage, obj []byte) {
	if round == 0 && t.turnID == "" {
		if id == "" {
			id = t.fallbackID() // built only when needed: a string per turn
		}
		t.turnID = id
		t.created = cmp.Or(created, time.Now().Unix())
	}
	if model == "" {
		model = resp.Model
	}
	if t.rounds == nil {
		t.rounds = t.round0[:0]
	}
	t.rounds = append(t.rounds, roundInfo{Provider: resp.Provider, Model: model, dropped: resp.DroppedFields()})
	if u != nil && t.s.ledger != nil {
		// Priced by the target's configured upstream model (the price table's key).
		t.cost += t.s.ledger.Round(t.r.Context(), resp.Provider, resp.Model, ledgerUsage(*u))
	}
	if u == nil || countsNothing(ledgerUsage(*u)) {
		t.s.unmetered(t.r.Context(), resp) // no usage, or none the ledger prices
	}
	if u != nil {
		t.hasUse = true
		t.usage.PromptTokens += u.PromptTokens
		t.usage.CompletionTokens += u.CompletionTokens
		t.usage.TotalTokens += u.TotalTokens
		if len(obj) == 0 {
			obj = u.AppendJSON(nil)
		}
		t.rounds[len(t.rounds)-1].usage = obj
	}
}

// execute runs a round's payment calls, lowest index first, under the turn's
// budget, and returns one tool result message per call, after
// uniqueCallIDs gave each call an id no other call names. When the request
// ended (the client left, the drain's deadline came) before a call started,
// or the deadline came while it ran, that call and the rest go without a
// result and clientGone is set: the caller ends the turn. So it is set too
// when the client left while the last call ran, whose result is then the
// last message.
func (t *turn) execute(calls, client []interceptors.ToolCall, finish string) [][]byte {
	t.uniqueCallIDs(calls, client)
	t.afterPayment = true
	if t.s.ledger != nil && t.cost != 0 {
		// The rounds so far led to these calls: their cost is in the
		// conversation before a call runs, so that the order's payment,
		// which may come before this turn ends, takes it
		// (accounting.Ledger.Spent). The turn's end adds the rest.
		t.s.ledger.Spent(t.r.Context(), t.caller.Client, t.caller.User, t.caller.Session, t.cost)
		t.cost = 0
	}
	// The audit record of each money action carries what the model saw this
	// round (messages and sampling parameters) and who answered: not the
	// parameters its provider's drop_fields removed before the call.
	last := t.rounds[len(t.rounds)-1]
	turn := audit.TurnFromRequest(t.caller.Client, t.caller.User, t.body, last.Provider, last.Model)
	for _, f := range last.dropped {
		delete(turn.Params, f)
	}
	// A call, once started, runs to its end even if the bot goes away
	// meanwhile (payments bounds its own steps: the store drivers'
	// timeouts, PrepayTimeout): under the request's context, a bot that
	// left mid-call had the store refuse the call's later steps, a money
	// action cut between them. Whether to start one is the request's to
	// say (clientGone below).
	ctx := payments.WithTurn(context.WithoutCancel(t.r.Context()), turn)
	var msgs [][]byte
	for _, c := range calls {
		var out payments.Outcome
		if t.clientGone || t.r.Context().Err() != nil {
			// The bot left before this call started: nobody will see what
			// it does, an order made now would wait, unannounced, for a
			// payment nobody was asked for, and the turn ends here (the
			// callers check clientGone) without another round. The bot's
			// retry asks the model again, and a create_order repeated
			// within the dedupe window returns the same order.
			// So too when the drain's deadline ended the turn (a call cut
			// before, or the request), but the bot did not leave: not run,
			// counted as not_executed, not as client_gone.
			outcome := "client_gone"
			if shutDown(t.r) {
				outcome = "not_executed"
			}
			if !t.clientGone {
				t.clientGone = true
				if outcome == "client_gone" {
					t.s.log.Info("payment calls not executed: the client left", "request_id", reqInfo(t.r).id)
				} else {
					t.s.log.Info("payment calls not executed: the drain deadline ended the turn", "request_id", reqInfo(t.r).id)
				}
			}
			t.s.metrics.toolCalls.WithLabelValues(t.metricTool(c.Name), outcome).Inc()
			continue
		}
		switch {
		case c.Name == "":
			out = t.s.tools.Refused(c.Name, "the tool call has no single name")
		case c.Damaged:
			// An event of the round was unreadable and skipped (SPEC 5):
			// it may have carried a piece of these arguments, and what is
			// left may still parse as a call the model did not make.
			out = t.s.tools.Refused(c.Name, "part of the answer that carried this call could not be read, so its arguments may be incomplete; nothing was done")
			t.s.log.Warn("payment call from a round with an unreadable event not executed", "request_id", reqInfo(t.r).id, "tool", c.Name)
		case cutFinish(finish):
			// The provider cut the round (max_tokens, a content filter):
			// the call is as far as it got, and a server that closes a
			// cut call's partial JSON (vLLM) hands on arguments that
			// parse, a quantity or SKU cut short. The bot's own calls of
			// such a round keep the finish that says so (stopForCalls).
			out = t.s.tools.Refused(c.Name, "the answer that carried this call was cut off ("+finish+"), so its arguments may be incomplete; nothing was done")
			t.s.log.Warn("payment call from a cut round not executed", "request_id", reqInfo(t.r).id, "tool", c.Name, "finish_reason", finish)
		case c.Custom:
			// Payment tools are offered only as function tools, whose
			// arguments the tool validates against its schema; a custom
			// call's input is free text no schema was given for. The stream
			// capture and the non-stream parser both read one the same way,
			// so both paths refuse it here, never executed, as a call
			// without a name is; the model learns how to call the tool.
			out = t.s.tools.Refused(c.Name, c.Name+" is a function tool: call it as a function, not as a custom tool")
			t.s.log.Info("custom call to a payment tool not executed", "request_id", reqInfo(t.r).id, "tool", c.Name)
		case !t.payChoice.Allows(c.Name):
			// The bot's tool_choice left this tool out ("none", a forced
			// tool of its own, allowed_tools without it), and a provider
			// that ignores tool_choice called it anyway: never run.
			out = t.s.tools.Refused(c.Name, c.Name+" is not available in this conversation turn")
			t.s.log.Info("payment call the bot's tool_choice excludes not executed", "request_id", reqInfo(t.r).id, "tool", c.Name)
		case t.moneyMoving(c.Name) && t.moneyCalls >= t.budget.MaxPaymentCalls:
			if t.budget.MaxPaymentCalls == 0 {
				// None ever runs here: asking the user to confirm, as a
				// refusal of a spent budget does, only asks them again.
				out = payments.Unavailable(spentWhy(0))
			} else {
				out = t.s.tools.Refused(c.Name, spentWhy(t.budget.MaxPaymentCalls))
			}
			t.s.log.Info("payment call beyond the turn's budget not executed", "request_id", reqInfo(t.r).id, "tool", c.Name)
			if !t.callsSpent {
				// A budget exhaustion (SPEC 9), once per turn however many
				// calls it refuses.
				t.callsSpent = true
				t.s.metrics.callsExhausted.Inc()
			}
		case t.clarify && t.moneyMoving(c.Name):
			// The turn already told the model to ask the user (SPEC 3), and
			// the next round's tool_choice "none" is a request many
			// OpenAI-compatible providers ignore: a money-moving call after
			// the clarification, in that round or later in this one, is the
			// model's guess at what the user did not say. Refused whatever
			// max_payment_calls has left: the refusal asks the user again.
			out = t.s.tools.Refused(c.Name, "the user was asked to clarify this message's payment; no payment action runs before they answer")
			t.s.log.Info("payment call after a clarification not executed", "request_id", reqInfo(t.r).id, "tool", c.Name)
		default:
			var cut bool
			if out, cut = t.executeUnlessCut(ctx, c); cut {
				// The drain's deadline came while the call ran: the turn
				// ends as every other it ends (the callers check
				// clientGone), its bot told why, and the call runs on
				// while the process lasts; its order, if WeChat Pay
				// opened one, is the next turn's or the reconciler's.
				// Counted apart: its outcome is nobody's to count now.
				t.clientGone = true
				t.s.metrics.toolCalls.WithLabelValues(t.metricTool(c.Name), "cut_by_shutdown").Inc()
				t.s.log.Warn("payment call still running at the drain deadline; the turn ends without its outcome",
					"request_id", reqInfo(t.r).id, "tool", c.Name)
				continue
			}
		}
		if out.MoneyMoving && out.Executed {
			t.moneyCalls++
		}
		outcome := "executed"
		switch {
		case out.Clarify && !out.Executed && out.MoneyMoving:
			outcome = "refused"
		case out.Clarify:
			outcome = "clarify"
		case out.Failed:
			outcome = "failed"
		case !out.Executed:
			outcome = "not_executed"
		}
		t.s.metrics.toolCalls.WithLabelValues(t.metricTool(c.Name), outcome).Inc()
		if out.Clarify {
			t.clarify = true
		}
		if out.Clarify || t.moneyMoving(c.Name) && out.Executed {
			// Every money-moving call that reached the payment service
			// binds the message, a failed one too (paymentsSinceUser):
			// WeChat Pay may have taken it. One refused before it, its
			// rules unread (the store down), moved nothing, and the
			// exchange the store then cannot keep either must not
			// withdraw the answer: chat goes on with the store down.
			t.bound = true
		}
		if out.Purchase != nil {
			var dropped []string
			t.actions, dropped = dropReplaced(t.actions, *out.Purchase)
			if out.Purchase.OrderNo == "" {
				// The switch closed them at WeChat Pay and no order of the
				// purchase stands; one may still be open in the store (its
				// close unrecorded), and undelivered, the user's next turn
				// announced it with payment parameters WeChat Pay refuses.
				t.s.withdrawPayable(ctx, t.caller, dropped)
			}
		}
		if out.Action != nil {
			// Marked announced only once the answer carrying it left
			// (markDelivered): a turn that fails after this hands it with
			// its error (fail, queueExtension), marking nothing.
			t.actions = addAction(t.actions, out.Action)
		}
		msgs = append(msgs, interceptors.ToolResultMessage(c.ID, out.Result))
	}
	if !t.clientGone && clientLeft(t.r) {
		// The bot left while the last call ran, which ran to its end:
		// nobody reads the answer, and no follow-up can come for the
		// bot's calls of a mixed round, whose exchange, written under
		// the request's ended context, failed as a store outage and
		// withdrew the answer with a warning. The turn ends here.
		t.clientGone = true
	}
	return msgs
}

// cutFinish reports whether a round's finish_reason says the provider cut
// its output, in any case: OpenAI's "length" (max_tokens) and
// "content_filter"; Mistral's "model_length" (the context window);
// Anthropic's "max_tokens", "model_context_window_exceeded" and "refusal"
// and Gemini's "MAX_TOKENS", "SAFETY", "RECITATION", "PROHIBITED_CONTENT",
// "BLOCKLIST", "SPII" and "MALFORMED_FUNCTION_CALL", as relays pass them
// on (one sends Gemini's "STOP" and "MAX_TOKENS" as they are); Zhipu's and
// Hunyuan's "sensitive" (their content filter); Bedrock's
// "guardrail_intervened" and "content_filtered". "error",
// "network_error" and DeepSeek's "insufficient_system_resource" never
// reach a turn: failover takes them for a failed answer (choiceError).
func cutFinish(reason string) bool {
	switch strings.ToLower(reason) {
	case "length", "content_filter", "model_length", "max_tokens", "model_context_window_exceeded", "refusal",
		"safety", "recitation", "prohibited_content", "blocklist", "spii", "malformed_function_call",
		"sensitive", "guardrail_intervened", "content_filtered":
		return true
	}
	return false
}

// saysCalls reports whether a round's finish_reason says it made tool
// calls: "tool_calls", or the legacy "function_call".
func saysCalls(reason string) bool {
	return reason == "tool_calls" || reason == "function_call"
}

// executeUnlessCut runs c as execute does, and waits for its outcome unless
// the drain's deadline ends the request first (proxy.ErrShuttingDown):
// cut, the call runs on, detached as it is from the request, and its
// outcome is dropped (unlessCut). A call waited for past that point held
// the turn's answer until the whole shutdown_timeout had passed and its
// connection was closed under it: a stream without its end, an answer not
// begun without its 503, where every other turn the deadline ends tells
// its bot why.
func (t *turn) executeUnlessCut(ctx context.Context, c interceptors.ToolCall) (out payments.Outcome, cut bool) {
	// The call's own copies: a call cut outlives the request, whose buffers
	// the arguments may share.
	caller := t.caller
	caller.Client, caller.AppID = strings.Clone(caller.Client), strings.Clone(caller.AppID)
	caller.User, caller.Session = strings.Clone(caller.User), strings.Clone(caller.Session)
	name, args := strings.Clone(c.Name), strings.Clone(c.Arguments)
	return unlessCut(t.r, t.s.log, "payment call", []any{"request_id", reqInfo(t.r).id, "tool", name}, func() payments.Outcome {
		return t.s.tools.Execute(ctx, caller, name, args)
	})
}

// overRounds counts the payment calls of a round that spent max_rounds,
// none of which runs, as refused over the turn's budget, as execute counts
// calls over max_payment_calls: uncounted, the calls the model made read
// short by them.
func (t *turn) overRounds(calls []interceptors.ToolCall) {
	for _, c := range calls {
		t.s.metrics.toolCalls.WithLabelValues(t.metricTool(c.Name), "refused").Inc()
	}
}

// strayCalls logs and counts (not_executed, as a call of a round that
// could not be read) the payment calls a round's answer carried in a
// choice other than the first, by name, dropped unrun
// (interceptors.RoundResult.StrayCalls, dropStrayCalls): the turn asked
// for one choice.
func (t *turn) strayCalls(names []string) {
	t.s.log.Warn("payment calls in a choice other than the first not executed: the turn asked for one choice",
		"request_id", reqInfo(t.r).id, "calls", len(names))
	for _, name := range names {
		t.s.metrics.toolCalls.WithLabelValues(t.metricTool(name), "not_executed").Inc()
	}
}

// harmonyPrefix is the namespace gpt-oss (OpenAI's harmony format) puts
// before a function's name in its recipient, "to=functions.create_order",
// and which some servers leave on the name they hand out (a model trained
// on such calls writes it there too).
const harmonyPrefix = "functions."

// paymentCallName is the payment tool a round's call of name calls: name,
// when it is a payment tool's, or the payment tool's name it carries
// wrapped in what gpt-oss's harmony format leaves on it when a server's
// parser misreads the model's call: the namespace before it
// ("functions.create_order") or a control token after it
// ("create_order<|channel|>commentary", as vLLM streams it in
// vllm-project/vllm#32587). No tool name has either (OpenAI's names are
// letters, digits, "_" and "-"), so the call is the model's call of that
// payment tool, checked and run as one; handed to the bot it was a call of
// a tool the bot never defined, and the sale was lost (the garble repeats
// call after call). A name the bot's own tools include stays the bot's.
// "" for any other name.
func (t *turn) paymentCallName(name string) string {
	if t.s.tools.IsPayment(name) {
		return name
	}
	bare := strings.TrimPrefix(name, harmonyPrefix)
	if i := strings.Index(bare, "<|"); i >= 0 {
		bare = bare[:i]
	}
	if bare == name || !t.s.tools.IsPayment(bare) || slices.Contains(interceptors.ToolNames(t.reqBody), name) {
		return ""
	}
	return bare
}

// isPaymentCall reports whether a round's call of name is a payment call
// (paymentCallName).
func (t *turn) isPaymentCall(name string) bool {
	return t.paymentCallName(name) != ""
}

// readPaymentCalls gives a round's payment calls the payment tool's own
// name (paymentCallName), and arguments that are one object repeated
// (interceptors.RepeatedObject), fenced (interceptors.FencedObject) or
// encoded twice (interceptors.EncodedObject) that object, bare and once: their checks, execution, metrics and the
// assistant message the provider gets back read them so. A harmony-wrapped
// name sent back would teach the model its own garble.
func (t *turn) readPaymentCalls(calls []interceptors.ToolCall) {
	for i := range calls {
		c := &calls[i]
		if n := t.paymentCallName(c.Name); n != "" {
			c.Name = n
		}
		if c.Custom {
			continue
		}
		if one, ok := interceptors.RepeatedObject(c.Arguments); ok {
			t.s.log.Info("payment call's arguments were one object repeated; read once", "request_id", reqInfo(t.r).id, "tool", c.Name)
			c.Arguments = one
		} else if one, ok := interceptors.FencedObject(c.Arguments); ok {
			t.s.log.Info("payment call's arguments were one object in a code fence; read without it", "request_id", reqInfo(t.r).id, "tool", c.Name)
			c.Arguments = one
		} else if one, ok := interceptors.EncodedObject(c.Arguments); ok {
			t.s.log.Info("payment call's arguments were one object encoded twice, in a JSON string; read once", "request_id", reqInfo(t.r).id, "tool", c.Name)
			c.Arguments = one
		}
	}
}

// metricTool is a call's tool as the tool-call metric names it: a payment
// tool's name, else "unnamed".
func (t *turn) metricTool(name string) string {
	return cmp.Or(t.paymentCallName(name), "unnamed")
}

// addAction adds action a to a turn's actions, in place of an earlier one
// of the same type about the same purchase or refund, which it supersedes:
// a create_order asked again of an open order returns that order with its
// payment parameters signed afresh (a request_refund asked again, the same
// proposal), and a bot acts on every action it gets (the README's opens
// wx.requestPayment for each order_created), so one order of a turn that
// called create_order twice was put before the user to pay twice. An
// order is the same by its number or by its purchase (sku and quantity:
// the turn's client and user are one): asked again with the other pay method,
// the service closes the open order and makes the purchase's new one, and
// the closed order's payment parameters, handed too, opened a payment
// sheet that WeChat Pay refused. A purchase has one open order at a time,
// so the latest is the one to pay.
func addAction(actions []json.RawMessage, a json.RawMessage) []json.RawMessage {
	type about struct{ typ, orderNo, sku, quantity, refundID string }
	read := func(b []byte) about {
		r := gjson.GetManyBytes(b, "type", "order.order_no", "order.sku", "order.quantity", "refund.refund_id")
		return about{r[0].Str, r[1].Str, r[2].Str, r[3].Raw, r[4].Str}
	}
	k := read(a)
	for i, old := range actions {
		o := read(old)
		if o.typ != k.typ {
			continue
		}
		if (k.orderNo != "" && o.orderNo == k.orderNo) || (k.sku != "" && o.sku == k.sku && o.quantity == k.quantity) ||
			(k.refundID != "" && o.refundID == k.refundID) {
			actions[i] = a
			return actions
		}
	}
	return append(actions, a)
}

// dropReplaced removes from a turn's actions the order_created of purchase
// p for another order than p's current one. A create_order asked again
// with the other pay method closes the open order at WeChat Pay before it
// makes the new one; when the new one's payment did not come through (its
// prepay unanswered or refused, or the store failed before it was made: p
// then names no order), the call has no order_created to put in
// place of the closed order's (addAction), which was handed to the bot
// alone: its payment sheet opened for an order WeChat Pay no longer takes.
// The new order, once payable, is announced in the user's next turn.
// It returns the kept actions and the numbers of the orders it dropped.
func dropReplaced(actions []json.RawMessage, p payments.Purchase) ([]json.RawMessage, []string) {
	kept := actions[:0]
	var dropped []string
	for _, a := range actions {
		r := gjson.GetManyBytes(a, "type", "order.sku", "order.quantity", "order.order_no")
		if r[0].Str == "order_created" && r[1].Str == p.SKU && r[2].Int() == int64(p.Quantity) && r[3].Str != p.OrderNo {
			dropped = append(dropped, r[3].Str)
			continue
		}
		kept = append(kept, a)
	}
	return kept, dropped
}

// uniqueCallIDs gives each of a round's payment calls an id of paygate's
// own (but a call of Kimi's that has one no other call names: numbered
// over the conversation, it keeps it). Taken are the ids the conversation
// names (the bot's messages and the turn's earlier rounds: a model reuses
// ids across rounds and turns), those of client (the round's calls of the
// bot's own, in a mixed round) and those of the round's earlier payment
// calls; a made id, "call_pg_<round>_<i>" suffixed until free, is none of
// these nor any of the round's. The assistant message built after, or kept
// with the bot's calls for its next request, then names each call once in
// the request: one id twice is a 400 at strict providers, which ended the
// turn after its payment steps ran, or failed every retry of the bot's next
// request. The bot's calls keep their ids: the bot holds them.
//
// Every payment call gets a made id, taken or not, in every round: a round
// may end up in an exchange kept for the bot's next request (a mixed round,
// or any round before one that hands the bot its calls) and go back into
// each later one, and under the model's own id ("call_0" of a provider that
// numbers its ids per answer) a later answer's call of the bot's took it,
// from which request on the restore renamed the kept call: each request
// departed from the one before at that exchange, early in the
// conversation, and the provider's prompt cache missed everything after
// it. Which round ends up kept is not known while it runs, and no request
// carried the model's id before: the made one costs no cache.
func (t *turn) uniqueCallIDs(calls, client []interceptors.ToolCall) {
	taken := make(map[string]bool)
	gjson.GetBytes(t.body, "messages").ForEach(func(_, m gjson.Result) bool {
		m.Get("tool_calls.#.id").ForEach(func(_, id gjson.Result) bool {
			taken[id.Str] = true
			return true
		})
		if id := m.Get("tool_call_id"); id.Exists() {
			taken[id.Str] = true
		}
		return true
	})
	for _, c := range client {
		taken[c.ID] = true
	}
	var rename []int
	for i, c := range calls {
		_, kimi := kimiCallIndex(c.ID)
		if c.ID == "" || taken[c.ID] || !kimi {
			rename = append(rename, i)
		}
		taken[c.ID] = true
	}
	next := -1 // the next free index of Kimi's ids, once one needs it
	for _, i := range rename {
		if _, ok := kimiCallIndex(calls[i].ID); ok && calls[i].Name != "" {
			// Kimi K2 reads its history's ids in its own form only
			// (kimiCallIndex): the next index of the conversation.
			if next < 0 {
				for id := range taken {
					if n, ok := kimiCallIndex(id); ok {
						next = max(next, n+1)
					}
				}
			}
			id := "functions." + calls[i].Name + ":" + strconv.Itoa(next)
			for ; taken[id]; id = "functions." + calls[i].Name + ":" + strconv.Itoa(next) {
				next++
			}
			next++
			taken[id] = true
			calls[i].ID = id
			continue
		}
		base := "call_pg_" + strconv.Itoa(len(t.rounds)) + "_" + strconv.Itoa(i)
		id := base
		for n := 2; taken[id]; n++ {
			id = base + "_" + strconv.Itoa(n)
		}
		taken[id] = true
		calls[i].ID = id
	}
}

// kimiCallIndex reads a call id in Kimi K2's form, "functions.<name>:<idx>",
// and returns its index (numbered over the conversation). Kimi's chat
// template prints each call's id in the history, and a history holding ids
// of another form puts the model off its format: it writes its next calls
// as text, or ends its turn empty (ml-explore/mlx-lm#821,
// getkimchi/kimchi#1063), so a call of Kimi's that paygate renames keeps
// the form.
func kimiCallIndex(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, "functions.")
	if !ok {
		return 0, false
	}
	c := strings.LastIndexByte(rest, ':')
	if c < 1 || c == len(rest)-1 || len(rest)-c > 10 {
		return 0, false
	}
	n := 0
	for _, d := range rest[c+1:] {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, true
}

// keepExchange stores, under each of the client's call ids in the turn's
// session, what the turn added before handing the client its calls: the
// earlier payment rounds' messages and the last round's exchange (its
// payment calls, none in a round of client calls only, and their results),
// with the client's calls themselves, for RestoreExchanges on the bot's
// next request. A turn that executed no payment call keeps nothing.
//
// It returns an error (errRoundNotKept) when the exchange, of a turn whose
// payment calls moved money or asked the user to clarify (bound), could not
// be kept under every key: the bot's follow-up would then run as a fresh
// message of the user's, with its budget whole and no clarification
// pending, and the model's next create_order a second payment for one
// message. The caller withdraws the answer (withdraw). An exchange of
// query_order calls alone is only logged: losing it costs the model a
// look it may take again, never money.
func (t *turn) keepExchange(content string, reasoning interceptors.Reasoning, payment, client []interceptors.ToolCall, results [][]byte) error {
	if t.s.state == nil || len(payment) == 0 && len(t.appended) == 0 {
		return nil
	}
	all := append(append([]interceptors.ToolCall(nil), interceptors.ParsableArguments(payment)...), client...)
	slices.SortStableFunc(all, func(a, b interceptors.ToolCall) int { return a.Seq - b.Seq }) // as the model made them
	// The reasoning goes back with the calls: the provider that wants it
	// (DeepSeek's thinking mode) refuses the bot's next request without it.
	ex := interceptors.Exchange{Assistant: interceptors.AssistantToolMessageWith(content, reasoning, all), Tools: t.s.exchangeTools()}
	for _, c := range client {
		// The calls as the client got them: the exchange comes back only
		// into the assistant message that carries exactly these.
		ex.Calls = append(ex.Calls, interceptors.ExchangeCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments, Custom: c.Custom})
	}
	for _, m := range t.appended {
		ex.Before = append(ex.Before, m)
	}
	for _, r := range results {
		ex.Results = append(ex.Results, r)
	}
	b, err := json.Marshal(ex)
	if err != nil {
		if t.bound {
			return fmt.Errorf("%w: %w", errRoundNotKept, err)
		}
		return nil
	}
	// Before the answer leaves, as every store call of the turn: bounded,
	// or a store that stopped answering holds the answer for its driver's
	// timeouts. One deadline for all the bot's calls.
	ctx, cancel := t.s.stateCtx(t.r.Context())
	defer cancel()
	// Under the place of the bot's calls in its next request (exact), and
	// under the calls alone for a bot that rewrites the message before
	// them (exchangePlaceKey). The calls' key first: lookupExchange reads
	// the exact key only where it finds that one. Last, under the id alone
	// (exchangeKey), the only key a paygate of the version before places
	// reads: in a rolling deploy on one Redis, or after a rollback of the
	// embedded file, the bot's next request may reach one, which sent it
	// upstream without the turn's payment calls. Not where the bot's
	// request already names the id (a provider that numbers its ids per
	// answer): there it would replace an earlier turn's exchange, which an
	// earlier paygate kept under that key alone, and the version before
	// places could not tell such turns apart anyway. This version reads it
	// only as a loose match, where no place matches exactly.
	at := interceptors.ExchangeAt{Calls: interceptors.CallsFingerprint(ex.Calls), Prev: interceptors.LastMessageFingerprint(t.reqBody)}
	named := map[string]bool{}
	gjson.GetBytes(t.reqBody, "messages.#.tool_calls.#.id").ForEach(func(_, ids gjson.Result) bool {
		ids.ForEach(func(_, id gjson.Result) bool { named[id.String()] = true; return true })
		return true
	})
	var failed error
	for _, c := range client {
		at.CallID = c.ID
		keys := []string{exchangePlaceKey(t.caller, at, false), exchangePlaceKey(t.caller, at, true)}
		if !named[c.ID] {
			keys = append(keys, exchangeKey(t.caller, c.ID))
		}
		var err error
		for _, key := range keys {
			if e := t.s.state.PutExchange(ctx, key, b, exchangeTTL); e != nil {
				if rerr := t.r.Context().Err(); rerr != nil && errors.Is(e, rerr) {
					// The request ended as it wrote (the client left, the
					// drain's deadline came): no sign of the store's
					// health, and no follow-up comes here (withdraw).
					if t.bound {
						return fmt.Errorf("%w: %w", errRoundNotKept, e)
					}
					return nil
				}
				t.s.log.Warn("keeping a payment exchange failed", "request_id", reqInfo(t.r).id, "err", e)
				err = e
			}
		}
		if err != nil {
			// Held here too, under every key of the call: a follow-up
			// that reaches this replica gets it back (lookupExchange).
			t.s.unkept.put(keys, b, time.Now())
			if failed == nil {
				failed = err
			}
		}
	}
	if failed != nil && t.bound {
		return fmt.Errorf("%w: %w", errRoundNotKept, failed)
	}
	return nil
}

// errRoundNotKept is keepExchange's error: the exchange that holds the
// user's message to what its payment calls did could not be kept.
var errRoundNotKept = errors.New("the payment exchange could not be kept for the bot's next request")

// notRecorded is what the bot gets in place of an answer whose exchange
// could not be kept (withdraw). Not retried by an SDK on its own
// (NoRetry): the replay would be a fresh message of the user's too, with a
// whole budget. The user sending it again is theirs to decide, and the
// model then reads what was done in the payment state.
var notRecorded = &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: "payment_round_not_recorded", NoRetry: true,
	Message: "paygate: the payment step of this answer could not be recorded for the conversation's next request (the store did not answer), " +
		"so the answer is withdrawn: do not run its tool calls. What the payment step did is in the user's orders (GET /v1/paygate/orders) " +
		"and reaches the model with the user's next message"}

// withdraw ends a turn whose exchange could not be kept (keepExchange's
// err) with notRecorded in place of the bot's calls: a stream, whose
// calls already went out, with an error event and no [DONE], which every
// OpenAI SDK raises, so the bot runs no follow-up a fresh message of the
// user's would serve. What the payment calls did stands, and goes with the
// error (queueExtension, apiError.Paygate): the bot, which no SDK retry
// hides this answer from, can show the order a call made. Nothing is
// claimed or marked delivered: the user's next turn announces that order
// too. A request that ended meanwhile ends as the turn's others do.
func (t *turn) withdraw(err error) {
	if t.r.Context().Err() != nil {
		// The request ended while the exchange was written: the drain's
		// deadline, whose bot is told the server is shutting down (it
		// may send the message again, the order its call made in
		// paygate.actions), or a client that left, told nothing. The
		// store did not fail: told "the store did not answer", not to
		// send it again, the bot and the log read a store outage.
		if t.sw != nil {
			t.endStreamWithError(context.Canceled)
		} else {
			t.fail(context.Canceled)
		}
		return
	}
	t.s.log.Warn("answer withdrawn: its payment exchange could not be kept, and the bot's follow-up would run as a new message of the user's",
		"request_id", reqInfo(t.r).id, "err", err)
	if t.sw != nil {
		t.queueExtension()
		_ = t.sw.Data(errorJSON(notRecorded))
		return
	}
	e := *notRecorded
	e.Paygate = t.extension()
	writeError(t.w, &e)
}

// spentWhy is the refusal's reason for a money-moving call beyond
// budget.max_payment_calls.
func spentWhy(max int) string {
	switch max {
	case 0:
		// max_payment_calls 0: not a count the user could wait out.
		return "no order or refund can be made in this conversation"
	case 1:
		return "only one payment action is allowed per message"
	}
	return "only " + strconv.Itoa(max) + " payment actions are allowed per message"
}

func (t *turn) moneyMoving(name string) bool {
	n := t.s.cfg.Payments.Tools
	return name == n.CreateOrder || name == n.RequestRefund
}

// nextBody appends the exchange to the conversation for the next round.
func (t *turn) nextBody(msgs [][]byte) error {
	b, err := interceptors.AppendMessages(t.body, msgs...)
	if err != nil {
		return err
	}
	if t.clarify {
		if b, err = interceptors.SetToolChoiceNone(b); err != nil {
			return err
		}
	} else if b, err = interceptors.RelaxToolChoice(b, t.s.tools.IsPayment); err != nil {
		return err
	}
	if b, err = t.capLeft(b); err != nil {
		return err
	}
	t.body = b
	t.appended = append(t.appended, msgs...)
	return nil
}

// tokenCaps are the request members that cap the tokens a completion
// generates.
var tokenCaps = [...]string{"max_tokens", "max_completion_tokens"}

// capLeft returns the next round's body b with each token cap the bot set
// (tokenCaps) lowered to what the turn's rounds so far left of it, at least
// 1: the bot's answer is every round's, and OpenAI's completion_tokens never
// exceed the cap, which bots set to bound an answer's length and cost; each
// round asked for the whole cap, and a bot that capped its answers at 100
// tokens got, and paid for, up to 100 per round. Left as sent when a round
// reported no usage, which leaves the count unknown. A cap used up is not
// lowered here: the turn ends before (capSpent). sjson sets the first copy
// of a member and the provider reads the last: ReadChat refused a cap
// given twice or in another case.
func (t *turn) capLeft(b []byte) ([]byte, error) {
	if !t.allMetered() {
		return b, nil
	}
	for _, k := range tokenCaps {
		v := gjson.GetBytes(t.reqBody, k)
		if v.Type != gjson.Number || v.Int() <= 0 {
			continue
		}
		left := max(1, v.Int()-t.usage.CompletionTokens)
		if left < v.Int() {
			t.capLowered = true
		}
		var err error
		if b, err = sjson.SetBytes(b, k, left); err != nil {
			return nil, fmt.Errorf("setting %s: %w", k, err)
		}
	}
	return b, nil
}

// hasCap reports whether the bot set a token cap (tokenCaps) that bounds
// its answer: only then can a turn end at it (capSpent, capRefused).
func (t *turn) hasCap() bool {
	for _, v := range gjson.GetManyBytes(t.reqBody, tokenCaps[:]...) {
		if v.Type == gjson.Number && v.Int() > 0 {
			return true
		}
	}
	return false
}

// thinkingBudgets are the request members that name a reasoning model's
// thinking budget, in tokens, which counts against max_tokens: Anthropic's
// thinking.budget_tokens (passed on by OpenAI-compatible gateways) and
// OpenRouter's reasoning.max_tokens. Not DashScope's (Qwen) or
// SiliconFlow's thinking_budget: it bounds the reasoning apart from
// max_tokens, which bounds the reply only, and is often the larger (4096
// by default): read as counting against the cap, every payment turn of
// such a bot ended at "length" without the round that tells the user.
var thinkingBudgets = [...]string{"thinking.budget_tokens", "reasoning.max_tokens"}

// capSpent reports whether the turn's rounds so far used up a token cap the
// bot set (tokenCaps), or left no more of it than the thinking budget the
// bot asked for (thinkingBudgets): a next round would be asked for nothing,
// and capLeft's floor of 1 token (or a cap at or below the budget) is a 400
// at reasoning models' providers (Anthropic: "`max_tokens` must be greater
// than `thinking.budget_tokens`"), after the turn's payment already ran;
// and were it served, its answer would be all thinking. The turn then ends
// as OpenAI ends an answer its cap cut, with finish_reason "length"
// (endCapped). False when a round reported no usage (the count unknown).
func (t *turn) capSpent() bool {
	if !t.allMetered() {
		return false
	}
	var budget int64
	for _, v := range gjson.GetManyBytes(t.reqBody, thinkingBudgets[:]...) {
		if v.Type == gjson.Number {
			budget = max(budget, v.Int())
		}
	}
	for _, k := range tokenCaps {
		v := gjson.GetBytes(t.reqBody, k)
		if v.Type == gjson.Number && v.Int() > 0 && v.Int()-t.usage.CompletionTokens <= budget {
			return true
		}
	}
	return false
}

// capRefused reports whether err, a later round's failure, is a provider's
// 400 about the token cap capLeft lowered: a reasoning model whose provider
// sets the thinking budget itself (OpenRouter's reasoning effort, a model
// that always thinks) refuses a max_tokens at or below it ("`max_tokens`
// must be greater than `thinking.budget_tokens`"), a budget capSpent cannot
// read from the request. The bot's cap bounds its answer and the lowered
// cap is paygate's, so the turn, its payment made, ends as a capped answer
// (endCapped) rather than with the provider's complaint about a value the
// bot never sent.
func (t *turn) capRefused(err error) bool {
	var ue *failover.UpstreamError
	if !t.capLowered || !errors.As(err, &ue) || ue.Status != http.StatusBadRequest || ue.Class != failover.CauseClientError {
		return false
	}
	for _, k := range tokenCaps {
		if strings.Contains(ue.Message, k) || ue.Param == k {
			return true
		}
	}
	return false
}

// endCapped logs a turn that ends with finish_reason "length" after its
// payment round because the bot's token cap is spent (capSpent) or a later
// round refused what was left of it (refused, capRefused).
func (t *turn) endCapped(refused error) {
	if refused != nil {
		t.s.log.Info("turn ended at the bot's token cap: the next round's provider refused the cap left",
			"request_id", reqInfo(t.r).id, "err", refused)
		return
	}
	t.s.log.Info("turn ended at the bot's token cap after a payment round", "request_id", reqInfo(t.r).id)
}

// claimAnnouncements claims the turn's pending announcements right before
// the answer that carries them is written, never earlier: a turn that
// fails (an upstream error, a failed next round, a client gone) claims
// nothing and the next turn announces them. Its error carries the turn's
// own actions alone (fail, queueExtension): the OpenAI SDKs retry a 5xx
// without showing its body, and a claimed announcement is never made
// again.
func (t *turn) claimAnnouncements() {
	if (len(t.pending) > 0 || len(t.retold) > 0 && len(t.handed) > 0) && t.r.Context().Err() == nil {
		// Bounded as the state load is: a store that stopped answering
		// since holds no answer; what it did not claim, a later turn does.
		ctx, cancel := t.s.stateCtx(t.r.Context())
		var told []announcement
		if len(t.pending) > 0 {
			t.announced, told = t.s.claim(ctx, t.caller, t.pending, t.actions)
		}
		// A follow-up answered with more of the bot's calls passes on
		// the news it was told again (retold): the user reads the text
		// of the follow-up of those calls, still with no message of
		// theirs since the news.
		if told = append(slices.Clip(t.retold), told...); len(told) > 0 && len(t.handed) > 0 {
			t.keepNews(ctx, told)
		}
		cancel()
	}
	t.pending = nil
}

// keepNews keeps what an answer that hands the bot its own tool calls
// (handed) told (told: a payment confirmed, a refund's outcome, a
// manager's no), under the place of those calls in the bot's follow-up
// (newsKey), before the answer's end (its finish, streaming) leaves, as
// the bot runs its calls only then. The follow-up with their results is
// the request whose answer the user reads, and the news, claimed by this
// answer, is no longer pending there: its payment state had no line of an
// order settled before settled_after, and the model wrote its text as if
// nothing had happened (toldToCalls). A store that fails loses the line
// in the follow-up, never money: only logged.
func (t *turn) keepNews(ctx context.Context, told []announcement) {
	calls := make([]interceptors.ExchangeCall, len(t.handed))
	for i, c := range t.handed {
		calls[i] = interceptors.ExchangeCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments, Custom: c.Custom}
	}
	at := interceptors.ExchangeAt{Calls: interceptors.CallsFingerprint(calls), Prev: interceptors.LastMessageFingerprint(t.reqBody)}
	var kept keptNews
	for _, a := range told {
		kept.Told = append(kept.Told, keptAnnouncement{Kind: a.kind, OrderNo: a.order.OrderNo})
	}
	b, err := json.Marshal(kept)
	if err == nil {
		err = t.s.state.PutExchange(ctx, newsKey(t.caller, at), b, exchangeTTL)
	}
	if err != nil {
		t.s.log.Warn("keeping the news told with the bot's calls failed; its follow-up's payment state goes without it",
			"request_id", reqInfo(t.r).id, "err", err)
	}
}

// extension renders the paygate object (SPEC 2.3), or nil when the turn did
// nothing paygate must report. Its "actions" is always there, empty in a
// turn that only took several rounds (a query_order, a refused call): a bot
// that walks paygate.actions whenever paygate is present (a JavaScript
// for…of) would throw on a missing one.
func (t *turn) extension() []byte {
	if len(t.announced) == 0 && len(t.actions) == 0 && len(t.rounds) < 2 {
		return nil
	}
	actions := append(t.announced[:len(t.announced):len(t.announced)], t.actions...)
	if actions == nil {
		actions = []json.RawMessage{}
	}
	ext := map[string]any{"actions": actions}
	if len(t.rounds) > 1 {
		ext["rounds"] = t.rounds
	}
	b, _ := json.Marshal(ext)
	return b
}

// fail answers a non-stream turn that ended in err before its answer was
// written, with what its payment calls did so far in the error object
// (failTurn, apiError.Paygate): a bot that shows the payment button from paygate.actions
// gets the order a call made with the error that ends the turn. Nothing
// is claimed or marked delivered (claimAnnouncements, markDelivered): an
// SDK that retries the 5xx drops this body, so the order is handed again
// by the next answer that succeeds, the retry's or the user's next turn's.
func (t *turn) fail(err error) {
	t.s.failTurn(t.w, t.r, err, t.extension())
}

// queueExtension queues, ahead of the error event that ends a streamed
// turn, a chunk carrying what the turn's payment calls did so far (the
// paygate object its finish chunk would have carried; nothing when they did
// nothing), once: the OpenAI SDKs hand the bot every chunk before they
// raise the error event, which they read for its "error" alone. The chunk
// has a choice with an empty delta and no finish_reason, so a client that
// reads choices[0] of every chunk keeps working, and the role delta when
// none went out yet (ownRole). As fail, it claims and marks nothing.
func (t *turn) queueExtension() {
	if t.sw == nil || t.extQueued {
		return
	}
	ext := t.extension()
	if ext == nil {
		return
	}
	t.extQueued = true
	var model string
	if n := len(t.rounds); n > 0 {
		model = t.rounds[n-1].Model
	}
	c := chunkHead(t.turnID, model, t.created)
	c = append(c, `,"choices":[{"index":0,"delta":{`...)
	if role := t.ownRole(); role != "" {
		c = jsonstr.Append(append(c, `"role":`...), role)
	}
	c = append(c, `},"logprobs":null,"finish_reason":null}],"paygate":`...)
	c = append(c, ext...)
	_ = t.sw.Queue(append(c, '}')) // the error event after it flushes it
}

// endStreamWithError ends the turn's stream with err's error event
// (Server.endStreamWithError), after what its payment calls did
// (queueExtension).
func (t *turn) endStreamWithError(err error) {
	t.queueExtension()
	t.s.endStreamWithError(t.sw, t.r, err)
}

// endUnrecovered is Server.endUnrecovered after queueExtension.
func (t *turn) endUnrecovered(first *failover.StreamError, outcome, why string) {
	t.queueExtension()
	t.s.endUnrecovered(t.sw, t.r, first, outcome, why)
}

// endRefused is Server.endRefused after queueExtension.
func (t *turn) endRefused(first, se *failover.StreamError) {
	t.queueExtension()
	t.s.endRefused(t.sw, t.r, first, se)
}

// finishStream ends the client's stream: the round's own finish chunk (or a
// synthesized one) carrying the paygate extension, the summed usage when the
// client asked for it, and [DONE].
func (t *turn) finishStream(finish []byte, model, reason string) {
	if len(t.annotations) > 0 {
		// Every round's annotations in one delta (RoundResult.Annotations).
		c := chunkHead(t.turnID, model, t.created)
		c = append(c, `,"choices":[{"index":0,"delta":{`...)
		if role := t.ownRole(); role != "" {
			c = jsonstr.Append(append(c, `"role":`...), role)
			c = append(c, ',')
		}
		c = append(c, `"annotations":[`...)
		c = append(c, t.annotations...)
		c = append(c, `]},"logprobs":null,"finish_reason":null}]}`...)
		_ = t.sw.Queue(c) // a client gone is found by the writes after
	}
	t.claimAnnouncements()
	ext := t.extension()
	var chunk []byte
	if finish != nil {
		chunk = finish
		var err error
		if ext != nil {
			if chunk, err = sjson.SetRawBytes(chunk, "paygate", ext); err != nil {
				chunk = nil
			}
		}
		if chunk != nil && gjson.GetBytes(chunk, "usage").Exists() {
			// The client gets usage once, summed over rounds, and only if it
			// asked for it.
			chunk, _ = sjson.DeleteBytes(chunk, "usage")
		}
		if chunk != nil {
			// A provider that sends no role with tool calls ends a turn of
			// the bot's own calls with its finish chunk and no role gone
			// out: the Node SDK's stream helper throws on a choice without
			// one, and the bot lost the answer, paygate object and all.
			if role := t.ownRole(); role != "" {
				if c, err := sjson.SetBytes(chunk, "choices.0.delta.role", role); err == nil {
					chunk = c
				}
			}
		}
	}
	if chunk == nil {
		chunk = interceptors.FinalChunk(t.turnID, model, t.created, t.ownRole(), reason, ext, nil)
		if len(t.fingerprint) > 0 {
			if c, err := sjson.SetRawBytes(chunk, "system_fingerprint", t.fingerprint); err == nil {
				chunk = c
			}
		}
	}
	// The last events leave in one write, with [DONE].
	if err := t.sw.Queue(chunk); err != nil {
		return
	}
	if t.chat.WantsUsage && t.hasUse {
		u := t.usage
		_ = t.sw.Queue(usageChunk(t.turnID, model, t.created, t.fingerprint, &u, t.usageObjects()...))
	}
	if t.sw.End() != nil { // sent with the end of the response, as the handler returns
		return
	}
	// A turn that handed payment parameters flushes them now, to mark them
	// delivered once they left.
	if marksDelivery(t.actions) && t.sw.Flush() == nil {
		t.s.markDelivered(t.r.Context(), t.caller, t.actions)
	}
}

// streamClarification ends a turn whose rounds are spent with the configured
// clarification text: a turn never loops.
func (t *turn) streamClarification(model string) {
	c := chunkHead(t.turnID, model, t.created)
	c = append(c, `,"choices":[{"index":0,"delta":{`...)
	if role := t.ownRole(); role != "" {
		c = jsonstr.Append(append(c, `"role":`...), role)
		c = append(c, ',')
	}
	var text string
	if t.clarifiesAsRefusal() {
		// A message's refusal of its own, after the rounds' content.
		c = append(c, `"refusal":`...)
		text = t.budget.Clarification
	} else {
		c = append(c, `"content":`...)
		text = t.clarification()
		if t.inWord && !startsWithSpace(text) {
			// The rounds' text ends in a word (see joinText).
			text = t.brk + text
		}
	}
	c = jsonstr.Append(c, text)
	c = append(c, `},"finish_reason":null}]}`...)
	// The budget ran out whether or not the bot is still there to read
	// so, as the non-stream path counts it: counted after the write, a bot
	// that left at this moment hid the exhaustion.
	t.s.metrics.roundsExhausted.Inc()
	if err := t.sw.Data(c); err != nil {
		return
	}
	t.finishStream(nil, model, "stop")
}

// ownRole is the role for a chunk of paygate's own about to go out on the
// stream: "assistant" when no chunk before carried one (the rounds' chunks
// may have had none: a provider that sends no role with its tool calls),
// so that the client gets exactly one role delta (SPEC 3.6); "" otherwise.
func (t *turn) ownRole() string {
	if t.capture != nil && t.capture.ClaimRole() {
		return "assistant"
	}
	return ""
}

// usageChunk renders the turn's usage chunk: u summed over the rounds whose
// usage objects are objs (see interceptors.AppendUsage), with the
// system_fingerprint fp (a JSON string) when it is not empty.
func usageChunk(id, model string, created int64, fp []byte, u *interceptors.Usage, objs ...[]byte) []byte {
	b := chunkHead(id, model, created)
	if len(fp) > 0 {
		b = append(append(b, `,"system_fingerprint":`...), fp...)
	}
	b = append(b, `,"choices":[],"usage":`...)
	b = interceptors.AppendUsage(b, u, objs)
	return append(b, '}')
}

// chunkHead opens a chat.completion.chunk of paygate's own, up to its
// model. The id is the provider's and the model its config or answer's:
// text from outside, so both are encoded as JSON strings, never Go-quoted.
func chunkHead(id, model string, created int64) []byte {
	b := make([]byte, 0, 160+len(id)+len(model))
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, id)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	return jsonstr.Append(b, model)
}
