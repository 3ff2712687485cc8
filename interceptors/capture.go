package interceptors

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/internal/reasoning"
)

// ErrMalformedChunk is returned by Capture.Process for event data that is not
// a JSON object. SPEC 5 says a single malformed event is skipped and logged.
var ErrMalformedChunk = errors.New("interceptors: chunk is not a JSON object")

// ToolCall is one complete tool call of a round.
type ToolCall struct {
	// Index is the upstream index for payment calls and the client-side
	// index (0..n-1 over the turn) for the client's own calls.
	Index int
	// Seq is the call's place among all of its round's calls, payment and
	// client, in the order the model made them: a kept exchange lists them
	// so, to give the provider back the assistant message it wrote (a
	// prompt cache's prefix, SPEC 3).
	Seq                 int
	ID, Name, Arguments string
	// Extra holds the call's members other than index, id, type and
	// function (Gemini's extra_content with its thought_signature) as a raw
	// JSON object, nil when there are none. They must go back with the
	// assistant message; AssistantToolMessage puts them there.
	Extra []byte
	// Custom: the call is to a custom tool (OpenAI's freeform tools): it
	// names itself in "custom", with its text in "input" (held in
	// Arguments), not in "function". It goes back to the bot and to the
	// provider so (AssistantToolMessage), and a kept exchange matches only
	// the bot's echo of a custom call: an SDK reads only the member of the
	// call's type. Payment tools are offered only as functions: a payment
	// call marked Custom is refused, never executed.
	Custom bool
	// Damaged: an event of the call's round was skipped unread (Lose), so
	// a piece of its arguments may be missing, and the pieces left can
	// still be valid arguments that are not the model's ({"sku":"a"}
	// without its lost `,"quantity":2`). Set on the round's payment calls
	// only, for the turn loop to refuse: never executed.
	Damaged bool
}

// Usage is a round's token usage as the provider reported it.
// CachedTokens are the prompt tokens it served from its prompt cache, a
// part of PromptTokens, wherever the provider names them (readUsage).
type Usage struct {
	PromptTokens, CompletionTokens, TotalTokens, CachedTokens int64
}

// fillTotal sets a total the provider left out (or sent as 0) to prompt
// plus completion: the stream's and the non-stream answer's readers both
// call it, so both paths sum the same total over rounds.
func (u *Usage) fillTotal() {
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
}

// SentRecord is what the client has received in a round (SPEC 3 step 5):
// the text and the client's own tool calls, as they went out.
type SentRecord struct {
	// Role: a chunk with a role delta was returned this round: the turn's
	// one role delta (Capture.RoleSent), in round 0 or, when round 0 sent
	// none, in the first later round that had one.
	Role bool
	// Text and Reasoning: the content and reasoning text returned.
	Text, Reasoning string
	// Refusal: the refusal text returned (delta.refusal), which a fresh
	// answer must repeat like the text (Resume.WithRefusal).
	Refusal string
	// Opaque: a delta no fresh answer can be matched against went out:
	// content given as parts (Mistral's thinking,
	// "content":[{"type":"thinking",…}]), audio or an image model's
	// picture (delta.images). A cut after it cannot be recovered without
	// sending them twice.
	Opaque bool
	// Calls: the client's tool calls returned, with their client indexes
	// (the same slice as RoundResult.ClientCalls).
	Calls []ToolCall
}

// RoundResult is what one upstream round produced, for the turn loop to
// decide whether the turn continues.
type RoundResult struct {
	// ID and Model are the upstream chunk id and model of this round; in
	// round 0, ID is StartRound's turnID when the round's chunks went out
	// under it (the provider sent none).
	ID, Model string
	// Created is the first non-zero "created" of the round's chunks (Azure's
	// first chunk says 0), as the provider sent it; 0 when none had one.
	Created int64
	// Content is the round's assistant text; Reasoning its reasoning text
	// (reasoning_content or reasoning deltas).
	Content, Reasoning string
	// ReasoningKey is the member the reasoning deltas came in,
	// KeyReasoningContent or KeyReasoning, for the reasoning to go back under
	// the same name; "" when no reasoning text came.
	ReasoningKey string
	// Details is the round's reasoning_details deltas merged into the array
	// a non-stream answer carries (see reasoning.Details); nil when none came.
	Details []byte
	// ContentParts is the round's content as the array of parts a
	// non-stream answer carries, when any delta gave its content as parts
	// (Mistral's thinking; see partsMerger), its text included; nil
	// otherwise.
	ContentParts []byte
	// PaymentCalls are complete, ordered by upstream index: choice 0's
	// (see StrayCalls). A call whose name never arrived was never shown to
	// the client and is reported here with an empty Name, for the loop to
	// refuse.
	PaymentCalls []ToolCall
	// ClientCalls are the client's own calls, with their client-side index:
	// choice 0's. Those of another choice (a provider that sent one though
	// the turn asked for one choice) went out with that choice under the
	// index they came with, and are not the round's: they do not make it a
	// tool round, and no exchange is kept for them.
	ClientCalls []ToolCall
	// StrayCalls names the payment calls (and, "", the calls that never
	// named themselves) of choices other than choice 0, which a provider
	// sent though the turn asked for one choice: held back like every
	// payment call, and then dropped, never in PaymentCalls. The turn
	// continues choice 0's conversation; a call of another one is not
	// the conversation's to run, nor the bot's to get.
	StrayCalls []string
	// FinishReason is what the provider said ("stop", "tool_calls", …), ""
	// if no finish_reason came. A round with calls is a tool round whatever
	// it says: see ToolRound.
	FinishReason string
	// FinishChunk is the held finish chunk made ready to forward if the turn
	// ends with this round: its delta emptied (what it carried was returned
	// by Process or was a payment call), its id rewritten after round 0, its
	// finish_reason and top-level usage as the provider sent them (a usage
	// in its choice is taken out). Nil if none came.
	FinishChunk []byte
	// Lost: an event of the round was skipped unread before its finish
	// (Lose, or a chunk Process refused), so a piece of any of its tool
	// calls' arguments may be missing. Its payment calls are Damaged; the
	// bot's own calls must not be handed to it to run either.
	Lost bool
	// BotLegacyCall: a legacy function_call of the bot's own (choice 0's) went out
	// this round, piece by piece as it came. It is none of ClientCalls
	// (no exchange is kept for it), but a round that is Lost must not
	// hand it to the bot to run either, whatever its finish says.
	BotLegacyCall bool
	// Usage comes from the usage chunk or the finish chunk, else from the
	// finish chunk's choice (Moonshot puts it there); nil if none.
	Usage *Usage
	// UsageJSON is that usage object as the provider sent it, with its
	// token details (cached prompt tokens, reasoning tokens) and whatever
	// else it reports; nil when Usage is, and when the object names a
	// count twice or in another case (ambiguousChunk): the bot then gets
	// Usage's counts, which paygate counted, not an object whose last copy
	// its parser would read. AppendUsage renders it.
	UsageJSON []byte
	// Error is the raw "error" object a provider sent inside the stream
	// (OpenRouter's mid-stream error), nil if none. Its chunk is not
	// returned to the client.
	Error []byte
	// Fingerprint is the round's system_fingerprint as the provider sent
	// it (a JSON string), from the last chunk read in full that had one
	// (the finish chunk always is); nil when none had one. paygate's own
	// chunks at the turn's end carry it: openai-python's stream helper
	// takes the completion's from the last chunk.
	Fingerprint []byte
	// Annotations is the round's annotations of choice 0 (web search's
	// url_citations) as one array, each moved to place its citation in
	// the turn's text (ShiftAnnotations); nil when none came. They did not
	// go out: OpenAI sends a message's annotations in one delta, and the
	// SDKs' stream helpers take one (openai-python's raises on a second,
	// openai-node's keeps the last alone), so the turn sends every
	// round's in one before its finish.
	Annotations []byte
	// LateCalls is a tool_calls array of the bot's own calls of choice 0
	// that EndNames found whole at the round's end, which nothing of went
	// out yet: the turn sends them before the finish. They are among
	// ClientCalls. Nil when there are none.
	LateCalls []byte
	// LateLegacy is the legacy function_call of the bot's own (choice 0's)
	// that EndNames found whole at the round's end, its name held while it
	// might grow and nothing of it out yet: the turn sends it before the
	// finish. BotLegacyCall is set. Nil when there is none.
	LateLegacy []byte
	// Sent is what the client has received this round.
	Sent SentRecord
}

// ToolRound reports whether the round carried tool calls; providers that end
// a tool round with "stop" (Gemini) make finish_reason unreliable.
func (r *RoundResult) ToolRound() bool {
	return len(r.PaymentCalls) > 0 || len(r.ClientCalls) > 0
}

// Capture watches the chunks of one turn's upstream rounds: it passes text
// and the client's own tool-call deltas through as they arrive, holds back
// and reassembles payment tool calls, and holds the finish chunk until the
// turn loop decides whether the turn goes on. It is not safe for concurrent
// use; one Capture serves one turn.
type Capture struct {
	isPayment func(string) bool
	// legacy is the round's legacy function_call (legacyCall).
	legacy struct {
		named, pay bool
		// pending: the name so far may grow (legacyCall); nothing of
		// the call went out.
		pending bool
		name    string
		args    []byte // raw JSON string contents, escapes kept
	}
	// strayLegacy are the legacy function_calls of choices other than
	// choice 0 (strayLegacyCall), one per choice that named one.
	strayLegacy []strayLegacy
	// legacyOut: a piece of a legacy function_call went out to the bot
	// this round (RoundResult.BotLegacyCall).
	legacyOut bool
	// lateLegacy is RoundResult.LateLegacy (EndNames).
	lateLegacy []byte
	// payNames are the payment tools' names (PaymentNames), for a name a
	// provider streams in pieces.
	payNames []string
	// botNames are the names of the bot's own tools (BotNames), for a
	// payment tool's whole name that one of them extends.
	botNames   []string
	nextClient int // client tool-call indexes handed out this turn
	// giveIDs: a call of the bot's that comes without an id gets one
	// (GiveCallIDs).
	giveIDs bool
	// ended is the slot whose name slotFor found ended by another call
	// (nameEnded), -1 for none.
	ended int
	// roleSent: a chunk returned this turn carried a role delta of choice 0 (or
	// ClaimRole gave paygate's own chunk one). A chunk, of round 0 or a
	// later round, drops its role member only then: a provider may send no
	// role in round 0 (its tool-call chunks all held back, or none at all),
	// and the client must get exactly one (SPEC 3.6); the Node SDK's stream
	// helper fails the whole answer, its paygate object included, without
	// one, and openai-python's joins a second to the first.
	roleSent bool
	// otherRoles are the choices other than choice 0 whose role went out
	// this turn (a provider that sent one though the turn asked for one):
	// each choice's role is its own, and a chunk drops a choice's role
	// only once that choice's went out, as roleSent does choice 0's.
	otherRoles []int

	round   int
	turnID  string
	turnIDq []byte // turnID as a JSON string
	// stampID: the round's chunks go out under the turn's id (turnIDq),
	// replaced or, where a chunk has none, added. Every round after the
	// first; the first when the first chunk the client gets from it has
	// no id (idSettled says whether that is decided yet).
	stampID   bool
	idSettled bool
	// createdq is the turn's "created" as JSON, which a later round's
	// chunks get; empty in round 0, whose chunks keep theirs.
	createdq []byte
	// breakPending: the next text the client gets this turn starts a new
	// paragraph (BreakBeforeText), with breakText; brk: the chunk just
	// returned is that text, and Break has a chunk to send before it,
	// built in sep.
	breakPending, brk bool
	breakText         string
	sep               []byte
	// before is how many characters (code points) of content the client
	// got this turn before the current round (or recovery attempt): the
	// earlier rounds' text and the breaks between them. A later round's
	// annotations place their citations in that round's text; the client
	// reads them in the turn's (ShiftAnnotations).
	before int
	// repeat is how many of those characters the current attempt repeats
	// (Repeats): a fresh answer's citations count from its round's start.
	repeat int
	// detailBase is what the current round's reasoning_details indexes
	// are moved by for the client: detailNext as the round started, the
	// index after the highest one the client got this turn
	// (ShiftIndexes).
	detailBase, detailNext int
	// imageBase and imageNext are the same for an image model's pictures
	// (delta.images), which each round numbers from 0 too (renumber).
	imageBase, imageNext int

	// Per round.
	id, model   string
	created     int64  // the first non-zero "created" of the round's chunks
	content     []byte // raw JSON string fragments, escapes kept
	reasoning   []byte
	refusal     []byte            // raw JSON string fragments of delta.refusal
	opaque      bool              // content parts, audio or an image went out (SentRecord.Opaque)
	reasonKey   string            // the member the reasoning text came in
	details     reasoning.Details // the reasoning_details deltas, merged
	parts       partsMerger       // the content parts of choice 0, merged
	role        bool
	slots       []slot
	argBytes    int // the bytes of all slots' args (Held)
	finish      string
	finishChunk []byte
	hasFinish   bool
	usage       Usage
	usageRaw    []byte // the usage object as sent
	hasUsage    bool
	// choiceUsage is the usage Moonshot (Kimi) streams in choices[0].usage
	// of its finish chunk: the round's when it sent no top-level usage.
	choiceUsage    Usage
	choiceUsageRaw []byte
	hasChoiceUsage bool
	errRaw         []byte
	// lost: an event of the round was skipped unread (Lose).
	lost bool
	// gap: an event was skipped unread after the round's finish chunk
	// (SkippedAfterFinish, unread), which takes nothing from calls whole
	// by then; a tool-call delta after it (some relays send the finish
	// before a call's last deltas) makes the round lost.
	gap bool
	// late is the entries of RoundResult.LateCalls so far (EndNames).
	late []byte
	// ann is the entries of RoundResult.Annotations so far, as the
	// provider placed them in the round's text.
	ann []byte
	// fingerprint is RoundResult.Fingerprint so far.
	fingerprint []byte

	// The bytes before the delta of this round's text chunks (see
	// scanTextAfter) and where the id and created are in them.
	prefix        []byte
	tail          template
	prefixID      [2]int
	prefixCreated [2]int
	slowSeen      int // chunks of this round that took the slow path
	// calls is the envelope of the round's tool-call argument deltas, for
	// the call path (callPath).
	calls callEnvelope
	// slowCalls: every tool-call delta takes the slow path, for tests that
	// hold the call path to it.
	slowCalls bool

	// Per chunk scratch, reused.
	out     []byte
	scratch []byte
	edits   []edit
	extra   []jsonscan.Member
	drops   [][2]int // the ranges of the chunk's "paygate" members
	st      chunkState
}

// slot accumulates one tool call across its deltas.
type slot struct {
	choice    int
	upIdx     int
	hasIdx    bool
	order     int
	id, name  string
	args      []byte // raw JSON string fragments, escapes kept
	extraKeys []string
	extraVals [][]byte
	kind      callKind
	clientIdx int
	held      bool // deltas were held back before the name was known
	// pending: the name so far is the start of a payment tool's name, or
	// a payment tool's whole name that a tool of the bot's extends, and no
	// argument came yet: its next piece may still come (PaymentNames,
	// BotNames).
	// Held like a call without a name.
	pending bool
	replay  bool // emit a synthetic entry with everything so far
	twice   bool // named twice (parseEntry): a payment call without a name
	custom  bool // named in "custom" (ToolCall.Custom)
	madeID  bool // id is MadeCallID's (GiveCallIDs), none having come
}

// GiveCallIDs makes the capture give each call of the bot's own that comes
// without an id (some providers send none, or "") one of its own
// (MadeCallID), on the call's first delta to the client and in
// RoundResult.ClientCalls: the turn keeps a mixed round's payment exchange
// under the bot's call ids, and the bot names its calls by id in the
// request that brings it back. An id the provider gives later is dropped
// from its delta and the call keeps the made one: the SDKs join a second id
// differently (Node's replaces, Python's appends), and the bot must name the
// id the exchange is kept under.
func (c *Capture) GiveCallIDs() { c.giveIDs = true }

// MadeCallID is an id for a call of the bot's own that came without one
// (some providers send none, or ""): the bot names its call by id in its
// next request, and a mixed round's payment exchange is kept under that id
// for it. Random, so it is no id the conversation already holds.
func MadeCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "call_pg" + hex.EncodeToString(b[:])
}

type callKind uint8

const (
	kindUnknown callKind = iota
	kindPayment
	kindClient
)

// edit replaces data[start:end] by scratch[rs:re].
type edit struct{ start, end, rs, re int }

type chunkState struct {
	choices    int
	meaningful bool
	role       bool  // choice 0's role
	otherRoles []int // the roles of other choices (Capture.otherRoles)
	finish     string
	hasError   bool
	paygate    bool // a top-level "paygate" member: an upstream's forgery
	idStart    int
	idEnd      int
	created    [2]int // the top-level "created" number, in data
	text       [2]int // raw content of choice 0, in data
	parts      [2]int // content parts of choice 0, in data
	reason     [2]int
	reasonKey  string // the member reason came from
	refusal    [2]int // raw refusal of choice 0, in data
	opaque     bool   // content parts, audio or an image (SentRecord.Opaque)
	deltas     [][2]int
	logprobs   [][2]int // the choices' "logprobs" values
	// choiceUsage is choice 0's "usage" member (Moonshot's place for it),
	// from its key to the end of its value, in data; end 0 for none.
	choiceUsage [2]int
}

// NewCapture starts a turn, ready for round 0. isPayment tells the payment
// tools' names from the client's own.
func NewCapture(isPayment func(name string) bool) *Capture {
	c := &Capture{isPayment: isPayment}
	c.StartRound(0, "", 0)
	return c
}

// PaymentNames gives the capture the payment tools' names, for the names a
// provider streams in pieces ("create_" in a call's first delta, "order"
// in a later one of the same index or id; OpenAI sends a name whole in the
// first): a call whose name so far is the start of one of them, and whose
// arguments have not started, is held back until its next delta says
// more. A piece of its name is added to it; a delta with arguments, or
// with the same name again (Qwen repeats a name in every delta), makes the
// name whole; then the call is a payment call, or the bot's own, which
// goes out with everything held so far. Only calls whose names start a
// payment tool's wait so, each at most until its arguments start; without
// names (none given) every name is taken whole from its first delta. A
// round's end makes a name still held whole (EndNames); a call still held
// when its round is cut short was never shown to the bot: it is reported
// as a payment call without a name, for the turn to refuse.
func (c *Capture) PaymentNames(names ...string) {
	c.payNames = append(c.payNames[:0], names...)
}

// BotNames gives the capture the names of the bot's own tools, for a
// payment tool's whole name that one of them extends (the bot's
// query_order_history beside query_order) from a provider that streams
// names in pieces: "query_order" in a call's first delta, "_history" in a
// later one. Taken for the payment tool at once, the first piece ran as a
// call of query_order without arguments, and the bot got a call of a tool
// "_history" it does not have. Such a name is held as the start of a
// payment tool's is (PaymentNames), until its arguments start or it is
// said whole; a payment name no tool of the bot's extends is taken at
// once, as before.
func (c *Capture) BotNames(names ...string) {
	c.botNames = append(c.botNames[:0], names...)
}

// mayGrow reports whether name, no argument of its call come yet, may be
// the start of a longer name: of a payment tool's, or a payment tool's
// whole name that a tool of the bot's extends (BotNames).
func (c *Capture) mayGrow(name string) bool {
	if c.startsPayment(name) {
		return true
	}
	if !c.isPayment(name) {
		return false
	}
	for _, b := range c.botNames {
		if len(b) > len(name) && strings.HasPrefix(b, name) {
			return true
		}
	}
	return false
}

// HeldNameGoesOn reports whether piece, a name that a later entry gives
// under the index or id of a call named held so far whose arguments have
// not started, is the next piece of that name, as slotFor joins it: held
// is one the capture holds while it may grow (the start of a payment
// tool's name, or a payment tool's name a tool of the bot's extends), and
// piece is no payment tool's name, nor the start of one the joined name
// does not start. Resume asks it for a fresh answer's calls, which it
// numbers for the client before the capture reads them.
func (c *Capture) HeldNameGoesOn(held, piece string) bool {
	if c.wrapsOn(held, piece) && (c.isPayment(held) || c.mayGrow(held)) {
		return true
	}
	if piece == "" || c.isPayment(piece) || !c.mayGrow(held) {
		return false
	}
	if joined := held + piece; c.isPayment(joined) || c.startsPayment(joined) {
		return true
	}
	return !c.startsPayment(piece)
}

// NameGoesOn reports whether piece, a name that a later entry gives under
// the index or id of a call named name whose arguments have not started,
// is the next piece of that name, as slotFor joins it (continuesName): of
// a name held while it may grow, as HeldNameGoesOn says; of a payment
// tool's, only the rest of its harmony wrapping; of a tool of the bot's,
// a piece that is no payment tool's name, nor starts one, and that leaves
// the joined name no payment tool's or start of one. Failover asks it of
// the events answering a non-stream request, which it assembles into the
// whole completion, so that a call is the same there as in a stream. The
// name again, whole, is the same call (slotFor), never a piece: providers
// that repeat it in every delta (MiniMax through NVIDIA NIM, Fireworks)
// had the plain stream's recovery read "get_weatherget_weather" where a
// tool of the bot's extends it, a call no fresh answer repeats.
func (c *Capture) NameGoesOn(name, piece string) bool {
	switch {
	case piece == name:
		return false
	case c.mayGrow(name):
		return c.HeldNameGoesOn(name, piece)
	case c.isPayment(name):
		return c.wrapsOn(name, piece)
	case piece == "" || c.isPayment(piece) || c.wholeBotName(name):
		return false
	}
	if joined := name + piece; c.isPayment(joined) || c.startsPayment(joined) {
		return false
	}
	return !c.startsPayment(piece)
}

// wholeBotName reports whether name is the whole name of a tool of the
// bot's (BotNames) that none of its tools extends: nothing goes on after
// it. A provider that gives every call index 0 and no id, calling the
// bot's get_weather without arguments and then its get_time, made one call
// "get_weatherget_time" of the two, a tool the bot does not have, with
// get_time's arguments.
func (c *Capture) wholeBotName(name string) bool {
	if !slices.Contains(c.botNames, name) {
		return false
	}
	for _, b := range c.botNames {
		if len(b) > len(name) && strings.HasPrefix(b, name) {
			return false
		}
	}
	return true
}

// wrapsOn reports whether piece, a name that a later entry gives under the
// index or id of a call named held whose arguments have not started (a
// payment call, or one held while its name may grow), is the next piece of
// a harmony-wrapped payment tool's name (as the turn reads one: isPayment),
// which gpt-oss's servers may stream in pieces: held is a payment call's
// and piece the rest of a control token after it ("<|channel|>commentary",
// vllm-project/vllm#32587), or held is the namespace before the name
// ("functions.") and piece the payment tool's name. Such a piece or held
// name has a character no tool's name has (OpenAI's are letters, digits,
// "_" and "-"). Taken for a call of its own, the piece went to the bot as a
// call of a tool it never defined, and the payment call never ran. After
// a payment call's name, only a control token goes on: one that starts
// the piece, the rest of one the held name leaves open ("create_order<|"
// then "channel|>"), or the word after one ("commentary" after
// "<|channel|>") that names no tool of the bot's. Any other name there is
// another call's, of a provider that gives every call index 0 and no id:
// joined, a wrapped name read as the payment call whatever followed it,
// and the bot's call ran as the payment call, with its arguments.
func (c *Capture) wrapsOn(held, piece string) bool {
	if piece == "" || plainName(held) && plainName(piece) || !c.isPayment(held+piece) {
		return false
	}
	if c.isPayment(held) {
		if c.isPayment(piece) {
			return false
		}
		if strings.HasPrefix(piece, "<|") || strings.LastIndex(held, "<|") > strings.LastIndex(held, "|>") {
			return true
		}
		word, _, _ := strings.Cut(piece, "<|")
		return strings.HasSuffix(held, "|>") && !slices.Contains(c.botNames, word)
	}
	return !plainName(held)
}

// plainName reports whether name has only the characters OpenAI allows in
// a tool's name: letters, digits, "_" and "-".
func plainName(name string) bool {
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_', b == '-':
		default:
			return false
		}
	}
	return true
}

// startsPayment reports whether name is the start of a payment tool's name,
// not the whole of it.
func (c *Capture) startsPayment(name string) bool {
	for _, p := range c.payNames {
		if len(name) < len(p) && strings.HasPrefix(p, name) {
			return true
		}
	}
	return false
}

// StartRound resets the per-round state. Round 0 is the first upstream
// round; for round > 0 every chunk's "id" is rewritten to turnID. In every
// round a chunk's role member is removed once one went out this turn
// (RoleSent), so the client sees one id and one role delta per turn. In round 0, turnID ("" for none) is the id its chunks go out under
// when the first chunk the client gets from it has none: a provider that
// sends no id would otherwise leave the whole turn without one, and the
// Node SDK's stream helper takes a chunk's top-level members (the paygate
// object of the last) only from a chunk with an id. Client tool-call
// indexes keep counting across rounds. For round > 0, a non-zero created
// (the turn's: round 0's, RoundResult.Created) replaces every chunk's
// "created" the same way, as OpenAI gives every chunk of a stream the same
// timestamp; round 0 ignores it.
func (c *Capture) StartRound(round int, turnID string, created int64) {
	c.before += rawChars(c.content)
	c.detailBase = c.detailNext
	c.imageBase = c.imageNext
	c.repeat = 0
	c.round = round
	c.turnID = turnID
	c.turnIDq = jsonstr.Append(c.turnIDq[:0], turnID)
	c.stampID, c.idSettled = round > 0, round > 0
	c.createdq = c.createdq[:0]
	if round > 0 && created != 0 {
		c.createdq = strconv.AppendInt(c.createdq, created, 10)
	}
	c.id, c.model = "", ""
	c.created = 0
	c.content = c.content[:0]
	c.reasoning = c.reasoning[:0]
	c.refusal = c.refusal[:0]
	c.opaque = false
	c.reasonKey = ""
	c.details.Reset()
	c.parts.reset()
	c.role = false
	for i := range c.slots {
		c.slots[i] = slot{args: c.slots[i].args[:0]}
	}
	c.slots = c.slots[:0]
	c.legacy.named, c.legacy.pay, c.legacy.pending, c.legacy.name, c.legacy.args = false, false, false, "", c.legacy.args[:0]
	c.strayLegacy = c.strayLegacy[:0]
	c.legacyOut = false
	c.lateLegacy = c.lateLegacy[:0]
	c.argBytes = 0
	c.finish = ""
	c.finishChunk = c.finishChunk[:0]
	c.hasFinish = false
	c.usage = Usage{}
	c.usageRaw = c.usageRaw[:0]
	c.hasUsage = false
	c.choiceUsage = Usage{}
	c.choiceUsageRaw = c.choiceUsageRaw[:0]
	c.hasChoiceUsage = false
	c.errRaw = nil
	c.lost = false
	c.gap = false
	c.late = c.late[:0]
	c.ann = c.ann[:0]
	c.fingerprint = c.fingerprint[:0]
	c.prefix = c.prefix[:0]
	c.tail.learn("")
	c.slowSeen = 0
	c.calls.prefix, c.calls.learnt = c.calls.prefix[:0], 0
}

// ContinueCalls registers, right after StartRound, the client's calls that
// a cut attempt of the round already sent (SentRecord.Calls: client
// indexes, ids, names and the arguments received): a recovery attempt's
// Resume (WithCalls) passes the rest of their arguments under those
// indexes, without id or name, and the round's result reports each whole,
// under the id the client kept.
func (c *Capture) ContinueCalls(calls []ToolCall) {
	for _, tc := range calls {
		sl := c.newSlot(0, tc.Index, true)
		sl.id, sl.name, sl.kind, sl.clientIdx, sl.custom = tc.ID, tc.Name, kindClient, tc.Index, tc.Custom
		q := jsonstr.Append(nil, tc.Arguments)
		sl.args = append(sl.args[:0], q[1:len(q)-1]...)
		c.argBytes += len(sl.args)
		if len(tc.Extra) > 0 {
			gjson.ParseBytes(tc.Extra).ForEach(func(k, v gjson.Result) bool {
				sl.extraKeys = append(sl.extraKeys, k.String())
				sl.extraVals = append(sl.extraVals, []byte(v.Raw))
				return true
			})
		}
	}
}

// Repeats tells the capture, right after StartRound, that the attempt
// answers its round afresh and begins with text, what the client already
// has of the round (a recovery's Resume skips it): the attempt's
// annotations place their citations in the whole round's text, so they
// are moved by the characters before the round, not before the attempt.
func (c *Capture) Repeats(text string) { c.repeat = utf8.RuneCountInString(text) }

// keyReason ends both finish_reason and OpenRouter's native_finish_reason.
const keyReason = "_reason\""

// Process takes one upstream chunk (the data of one SSE event) and returns
// the bytes to send to the client now, or nil to send nothing. The returned
// slice is valid until the next call.
//
//   - Text, reasoning and the client's own tool-call deltas pass through as
//     they arrive, unchanged where nothing needs changing.
//   - Payment tool-call deltas are held back and accumulated by index (by id
//     where the provider sends no index); a chunk mixing both is rewritten
//     without the payment entries. The client's own calls are renumbered
//     0..n-1 over the turn, without gaps.
//   - The chunk carrying a non-null finish_reason is not returned: it is
//     kept for EndRound. Text or client calls in that same chunk are
//     returned with finish_reason (and usage) set to null.
//   - A usage-only chunk (empty choices and a usage) is not returned; its
//     usage is kept for EndRound.
//   - A role member after the turn's first (OpenRouter, Gemini and GLM
//     repeat "role":"assistant" in every delta) is removed from its delta,
//     the rest of the chunk as sent.
//   - Choice 0's annotations are taken out of the chunk and kept for
//     EndRound (RoundResult.Annotations), moved into the turn's text.
//   - Azure's first chunk (empty choices, prompt_filter_results, empty id
//     and model) is not returned: it has nothing for the client, and the
//     client gets a plain OpenAI stream. Any chunk with empty choices is
//     dropped the same way.
//   - A chunk with a top-level "error" (OpenRouter's mid-stream error) is
//     not returned; the error is kept for EndRound.
//   - A chunk Process cannot read (an error), an object or an array, is
//     lost to the round before its finish chunk: its payment calls are
//     reported Damaged (see Lose). A string, number or null is no chunk
//     and loses nothing.
//
// A text chunk (one delta with text, no tool call, no finish_reason, no
// usage) is recognised with a few byte searches (scanText) and returned as
// is in round 0 (but for a repeated role, removed in place), and a piece of a tool call's arguments in the envelope of
// one the slow path read before is taken with byte scans too (callPath);
// everything else gets one full walk with gjson.
func (c *Capture) Process(data []byte) ([]byte, error) { return c.process(data, false) }

// ProcessValid is Process for data known to be valid JSON as gjson.Valid
// reads it: an event failover.Response.Next returned, as it returned it
// (its validating pass, scanEvent, is gjson.Valid's). The slow path does
// not validate it again: gjson.Valid was a tenth of Process's time in the
// streams of the load benchmark (25 events, three of them on the slow
// path).
func (c *Capture) ProcessValid(data []byte) ([]byte, error) { return c.process(data, true) }

// process is Process; valid: data is known to be valid JSON (ProcessValid).
func (c *Capture) process(data []byte, valid bool) ([]byte, error) {
	if len(data) == 0 || data[0] != '{' {
		data = trimSpace(data)
		if len(data) == 0 || data[0] != '{' {
			// An array may be chunks; a string, number or null (some
			// relays slip one in) holds no piece of a call.
			if len(data) > 0 && data[0] == '[' {
				c.unread()
			}
			return nil, ErrMalformedChunk
		}
	}
	s := unsafe.String(unsafe.SliceData(data), len(data))
	// The first chunks name the round's id and model; a round whose chunks
	// have none takes this path once it is settled what id they go out under.
	if c.id != "" || c.slowSeen > 2 && c.idSettled {
		if c.knownEnvelope(data) {
			if out, ok := c.callPath(data, s); ok {
				return out, nil
			}
		}
		var tc textChunk
		ok, known := false, len(c.prefix) > 0 && bytes.HasPrefix(data, c.prefix)
		if known {
			tc, ok = scanTextAfter(s, len(c.prefix), &c.tail)
		} else if tc, ok = scanText(s); ok {
			c.learnPrefix(data, s, tc.delta, tc.deltaEnd)
		}
		if ok {
			if c.breakPending && tc.content != "" {
				c.textStarts(tc.content)
			}
			c.content = append(c.content, tc.content...)
			// A chunk carries its text, its reasoning or a refusal, seldom
			// two: an empty one is not appended (each append is a call).
			if tc.reasoning != "" {
				c.reasoning = append(c.reasoning, tc.reasoning...)
				c.reasonKey = tc.reasonKey
			}
			if tc.refusal != "" {
				c.refusal = append(c.refusal, tc.refusal...)
			}
			switch {
			case !tc.role:
			case !c.roleSent:
				// The turn's first role (or, when round 0 sent none, a
				// later round's) goes out.
				c.role, c.roleSent = true, true
			case c.round > 0 && tc.content == "" && tc.reasoning == "" && !tc.other:
				return nil, nil // a role and nothing else
			default:
				// OpenRouter, Gemini and GLM repeat the role in every
				// delta, round 0's too: openai-python's stream helper
				// joins every string member it gets, and the bot's
				// message said "assistantassistant…".
				return c.dropRole(data, s, &tc), nil
			}
			if c.stampID {
				return c.rewriteID(data, s, tc.deltaEnd), nil
			}
			return data, nil
		}
	}
	// What is rewritten must first be understood: the slow path checks the
	// whole chunk (failover already skips malformed events; this keeps the
	// Capture safe on its own), unless the caller vouches for it.
	if !valid && !gjson.Valid(s) {
		c.unread()
		return nil, ErrMalformedChunk
	}
	switch ambiguousChunk(s) {
	case chunkAmbiguous:
		c.unread()
		return nil, ErrAmbiguousChunk
	case chunkCountTwice:
		// Only its usage reads two ways: the rest of the chunk is the
		// round's; the usage goes to the bot as the counts read
		// (EndRound's UsageJSON nil), not as the provider's object.
		out := c.slow(data, s)
		c.usageRaw, c.choiceUsageRaw = c.usageRaw[:0], c.choiceUsageRaw[:0]
		return out, nil
	}
	out := c.slow(data, s)
	c.learnCallEnvelope(data, s)
	return out, nil
}

// Lose notes that an event of the round was skipped before it reached
// Process (the relay's reader skips a malformed one, SPEC 5): the round's
// payment calls are reported Damaged, as they are after an event Process
// itself refused (ErrMalformedChunk, ErrAmbiguousChunk). Nothing says
// which call the event carried a piece of, if any, so none of the round's
// is run.
func (c *Capture) Lose() { c.lost = true }

// SkippedAfterFinish notes that an event was skipped before the next one
// reached Process, after the stream's finish (the relay's reader counts
// those apart: failover.Response.SkippedAfterFinish). The round's calls
// were whole at its finish, unless a tool-call delta (or a legacy
// function_call's) comes after it: a
// relay that sends finish_reason on a call's every chunk (LiteLLM's
// Gemini) streams the call's later pieces after a finish, and the event
// skipped may have held one of them ({"sku":"a"} without its lost
// `,"quantity":2`). The round is then lost (Lose).
func (c *Capture) SkippedAfterFinish() { c.gap = true }

// unread notes a chunk Process could not read: lost to the round unless
// the round's finish chunk came before it, by when its calls were whole
// unless a tool-call delta follows (SkippedAfterFinish).
func (c *Capture) unread() {
	if !c.hasFinish {
		c.lost = true
	} else {
		c.gap = true
	}
}

// callGoesOn notes a tool-call delta, or a legacy function_call's of
// choice 0: after an event skipped after the
// finish, the round is lost (SkippedAfterFinish).
func (c *Capture) callGoesOn() {
	if c.gap {
		c.lost = true
	}
}

// Held is how many bytes of the round's text the capture holds: its
// content, reasoning and refusal, and its tool calls' arguments. A relay
// bounds it: they grow with every delta an upstream sends.
func (c *Capture) Held() int {
	return len(c.content) + len(c.reasoning) + len(c.refusal) + c.argBytes
}

// Calls is how many tool calls the round has shown so far. A relay bounds
// it: each delta's call is looked for among them.
func (c *Capture) Calls() int { return len(c.slots) }

// MaxCalls bounds the tool calls of a round a relay lets through: far
// above the calls a model makes at once. Past it the capture takes no
// new call (the rest of the event is not read), so Calls stops at
// MaxCalls+1 and one event of endless calls cannot cost time in the
// square of their number before the relay sees the bound passed.
const MaxCalls = 1024

// RoleSent reports whether a role delta went out this turn.
func (c *Capture) RoleSent() bool { return c.roleSent }

// ClaimRole is for a chunk of paygate's own about to go out (a
// clarification, a synthesized finish chunk): it reports whether that chunk
// must carry the turn's role delta, none having gone out yet, and from then
// on counts it as sent, so no later chunk carries another.
func (c *Capture) ClaimRole() bool {
	if c.roleSent {
		return false
	}
	c.roleSent = true
	return true
}

// BreakBeforeText asks for a break, text (a paragraph break "\n\n", or a
// space where the bot's stop sequences rule line breaks out), before the
// next text the client gets this turn, unless that text starts with white
// space: the turn loop calls it for a new round when the text the client
// has so far ends in a word, so that "…for you." and "Your order…" of two
// rounds do not run together. It holds until a round returns text (a
// recovery attempt's StartRound keeps it); Break then hands the break's
// chunk. An empty text asks for none.
func (c *Capture) BreakBeforeText(text string) {
	c.breakPending, c.breakText = text != "", text
}

// Break returns the chunk to send before the one Process just returned,
// or nil: a content delta of the text BreakBeforeText was given under the
// turn's id, created and the round's model, with no logprobs (the break is
// paygate's, no token of the model's). The slice is valid until the next
// Break.
func (c *Capture) Break() []byte {
	if !c.brk {
		return nil
	}
	c.brk = false
	b := append(c.sep[:0], `{"id":`...)
	b = append(b, c.turnIDq...)
	b = append(b, `,"object":"chat.completion.chunk"`...)
	if len(c.createdq) > 0 {
		b = append(append(b, `,"created":`...), c.createdq...)
	}
	if c.model != "" {
		b = jsonstr.Append(append(b, `,"model":`...), c.model)
	}
	b = jsonstr.Append(append(b, `,"choices":[{"index":0,"delta":{"content":`...), c.breakText)
	b = append(b, `},"logprobs":null,"finish_reason":null}]}`...)
	c.sep = b
	return b
}

// textStarts notes the first text (raw, escapes kept) returned after
// BreakBeforeText: the break goes before it unless it starts with white
// space.
func (c *Capture) textStarts(raw string) {
	c.breakPending = false
	c.brk = !startsWithSpace(raw)
	if c.brk {
		c.before += utf8.RuneCountInString(c.breakText)
	}
}

// startsWithSpace reports whether the raw JSON string content raw starts
// with white space, an escaped one included.
func startsWithSpace(raw string) bool {
	if len(raw) > 1 && raw[0] == '\\' {
		switch raw[1] {
		case 'n', 't', 'r', 'f':
			return true
		case 'u':
			if len(raw) >= 6 {
				n, err := strconv.ParseUint(raw[2:6], 16, 32)
				return err == nil && unicode.IsSpace(rune(n))
			}
		}
		return false
	}
	r, _ := utf8.DecodeRuneInString(raw)
	return unicode.IsSpace(r)
}

// EndNames ends the names still held while they might grow (PaymentNames)
// when the round's stream has ended well: the provider is done with its
// calls, so each such name is whole. A payment tool's whole name held
// because a tool of the bot's extends it (BotNames) is then a payment
// call; any other such call is the bot's own, which nothing of went out:
// EndRound reports it among ClientCalls and in LateCalls. Held for good, a call of
// the bot's tool "query" (beside query_order) sent without arguments was
// refused as a call without a name, and the bot never got it. Not for a
// round cut short or ended by an error: its calls are not the bot's to
// run.
func (c *Capture) EndNames() {
	if c.errRaw != nil {
		return
	}
	if c.legacy.pending && !c.isPayment(c.legacy.name) {
		// The same of a legacy function_call (legacyCall): the bot's
		// own, its arguments never started. Held for good, the bot's
		// {"name":"create","arguments":""} (beside create_order) was
		// refused as a call without a name.
		c.legacy.named, c.legacy.pending, c.legacyOut = true, false, true
		c.lateLegacy = append(c.lateLegacy[:0], `{"name":`...)
		c.lateLegacy = jsonstr.Append(c.lateLegacy, c.legacy.name)
		c.lateLegacy = append(c.lateLegacy, `,"arguments":""}`...)
	}
	for i := range c.slots {
		sl := &c.slots[i]
		if sl.choice != 0 || !sl.pending || sl.kind != kindUnknown {
			continue
		}
		c.classify(sl, true)
		if sl.kind != kindClient || !sl.replay {
			continue
		}
		sl.replay = false
		if len(c.late) == 0 {
			c.late = append(c.late, '[')
		} else {
			c.late = append(c.late, ',')
		}
		c.late = appendSynthetic(c.late, sl)
	}
}

// EndRound returns what the round produced. The Capture is ready for the
// next StartRound; the result shares no memory with it.
func (c *Capture) EndRound() RoundResult {
	id := c.id
	if c.round == 0 && c.stampID {
		id = c.turnID
	}
	r := RoundResult{
		ID:            id,
		Model:         c.model,
		Created:       c.created,
		Content:       decodeRaw(c.content),
		Reasoning:     decodeRaw(c.reasoning),
		ReasoningKey:  c.reasonKey,
		Details:       c.details.JSON(),
		ContentParts:  c.parts.json(c.content),
		FinishReason:  c.finish,
		Lost:          c.lost,
		BotLegacyCall: c.legacyOut,
	}
	order := make([]*slot, len(c.slots))
	for i := range c.slots {
		order[i] = &c.slots[i]
	}
	slices.SortStableFunc(order, func(a, b *slot) int {
		if a.choice != b.choice {
			return a.choice - b.choice
		}
		if a.upIdx != b.upIdx {
			return a.upIdx - b.upIdx
		}
		return a.order - b.order
	})
	seq := 0
	for _, sl := range order {
		if sl.choice != 0 {
			// Not the round's: a client call went out with its choice
			// (ClientCalls), a payment call is dropped (StrayCalls).
			if sl.kind != kindClient {
				name := sl.name
				if sl.pending {
					name = "" // as a call of choice 0's (below)
				}
				r.StrayCalls = append(r.StrayCalls, name)
			}
			continue
		}
		tc := ToolCall{Index: sl.upIdx, Seq: seq, ID: sl.id, Name: sl.name, Arguments: decodeRaw(sl.args), Extra: extraObject(sl), Custom: sl.custom}
		if sl.pending {
			tc.Name = "" // its name never came whole (PaymentNames)
		}
		if sl.kind == kindClient {
			tc.Index = sl.clientIdx
			r.ClientCalls = append(r.ClientCalls, tc)
		} else {
			tc.Damaged = c.lost
			r.PaymentCalls = append(r.PaymentCalls, tc)
		}
		seq++
	}
	for _, l := range c.strayLegacy {
		switch {
		case l.pending:
			r.StrayCalls = append(r.StrayCalls, "") // as a held call of choice 0's (below)
		case l.pay:
			r.StrayCalls = append(r.StrayCalls, l.name)
		}
	}
	if c.legacy.pending {
		// A name still held while it might grow (legacyCall), nothing
		// of it shown to the bot: a payment tool's whole name (a tool of
		// the bot's extends it) is that payment call; any other is
		// reported without a name, for the turn to refuse.
		c.legacy.pay = true
		if !c.isPayment(c.legacy.name) {
			c.legacy.name = ""
		}
	}
	if c.legacy.pay {
		if args := decodeRaw(c.legacy.args); !EchoesCall(r.PaymentCalls, c.legacy.name, args) {
			// After the round's tool calls, under the next index.
			idx := 0
			if n := len(r.PaymentCalls); n > 0 {
				idx = r.PaymentCalls[n-1].Index + 1
			}
			r.PaymentCalls = append(r.PaymentCalls, ToolCall{Index: idx, Seq: seq, Name: c.legacy.name, Arguments: args, Damaged: c.lost})
		}
	}
	slices.SortStableFunc(r.ClientCalls, func(a, b ToolCall) int { return a.Index - b.Index })
	if c.hasFinish && len(c.finishChunk) > 0 {
		r.FinishChunk = append([]byte(nil), c.finishChunk...)
	}
	if c.hasUsage {
		u := c.usage
		r.Usage = &u
		r.UsageJSON = append([]byte(nil), c.usageRaw...)
	} else if c.hasChoiceUsage {
		u := c.choiceUsage
		r.Usage = &u
		r.UsageJSON = append([]byte(nil), c.choiceUsageRaw...)
	}
	if c.errRaw != nil {
		r.Error = append([]byte(nil), c.errRaw...)
	}
	if len(c.late) > 0 {
		r.LateCalls = append(append([]byte(nil), c.late...), ']')
	}
	if len(c.lateLegacy) > 0 {
		r.LateLegacy = append([]byte(nil), c.lateLegacy...)
	}
	if len(c.ann) > 0 {
		// Moved by the characters the client read before the round's
		// text: the earlier rounds' and, once its text came, the break
		// before it (textStarts), less what a recovery repeats. Known
		// only here: moved as each delta came, a round's citations that
		// came before its text, or in the delta that starts it, were
		// placed the break's length early.
		r.Annotations = append(append([]byte{'['}, c.ann...), ']')
		if moved := ShiftAnnotations(unsafe.String(unsafe.SliceData(r.Annotations), len(r.Annotations)), c.before-c.repeat); moved != nil {
			r.Annotations = moved
		}
	}
	if len(c.fingerprint) > 0 {
		r.Fingerprint = append([]byte(nil), c.fingerprint...)
	}
	r.Sent = SentRecord{Role: c.role, Text: r.Content, Reasoning: r.Reasoning, Refusal: decodeRaw(c.refusal), Opaque: c.opaque, Calls: r.ClientCalls}
	return r
}

func extraObject(sl *slot) []byte {
	if len(sl.extraKeys) == 0 {
		return nil
	}
	out := []byte{'{'}
	for i, k := range sl.extraKeys {
		if i > 0 {
			out = append(out, ',')
		}
		out = jsonstr.Append(out, k)
		out = append(out, ':')
		out = append(out, sl.extraVals[i]...)
	}
	return append(out, '}')
}

// rawChars is how many characters (code points) the raw JSON string
// contents raw decode to, counted without decoding them: an escape is one,
// a surrogate pair's two \u escapes one.
func rawChars(raw []byte) int {
	n := 0
	for i := 0; i < len(raw); n++ {
		switch {
		case raw[i] != '\\':
			_, size := utf8.DecodeRune(raw[i:])
			i += size
		case i+1 < len(raw) && raw[i+1] != 'u':
			i += 2
		case i+12 <= len(raw) && surrogate(raw[i+2:i+6], "89abAB") && raw[i+6] == '\\' && raw[i+7] == 'u' && surrogate(raw[i+8:i+12], "cdefCDEF"):
			i += 12
		default:
			i += 6
		}
	}
	return n
}

// surrogate reports whether the hex digits h of a \u escape name a UTF-16
// surrogate whose second digit is one of second (89abAB: a high one,
// cdefCDEF: a low one).
func surrogate(h []byte, second string) bool {
	return len(h) == 4 && (h[0] == 'd' || h[0] == 'D') && strings.IndexByte(second, h[1]) >= 0
}

// decodeRaw decodes concatenated raw JSON string fragments. Decoding the
// concatenation rather than each fragment keeps a UTF-16 surrogate pair
// split across two deltas whole.
func decodeRaw(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	return gjson.ParseBytes(q).String()
}
