package interceptors

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// ToolSpec describes the payment tools as the model sees them (SPEC 4): their
// configured names and the catalog the create_order schema is built from.
type ToolSpec struct {
	// CreateOrder, QueryOrder and RequestRefund are the tool names; an empty
	// name leaves that tool out.
	CreateOrder, QueryOrder, RequestRefund string
	// SKUs is the catalog, in the order the model should see it. With no SKU
	// create_order is left out: an empty enum is not a valid schema.
	SKUs []SKU
	// PayMethods are the pay methods offered ("jsapi", "native"), the first
	// the default; empty: both, jsapi first. With one, create_order has no
	// pay_method parameter and its description says how the user pays.
	PayMethods []string
	// Strict emits OpenAI strict-mode schemas ("strict": true, every property
	// required, optional ones nullable). No config key sets it (the proxy
	// never does), because several OpenAI-compatible providers reject
	// "strict" or type arrays; the schemas sent already follow strict mode's
	// other rules (typed properties, additionalProperties false, no
	// "default" keyword).
	Strict bool
}

// SKU is one catalog item as the model may name it.
type SKU struct {
	ID, Name    string
	PriceFen    int64
	MaxQuantity int
}

// Names lists the tool names of the spec that are in use, for AddTools.
func (s ToolSpec) Names() []string {
	var names []string
	for _, n := range [...]string{s.CreateOrder, s.QueryOrder, s.RequestRefund} {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// FormatFen renders an amount in fen as the model and the user read it:
// 4999 → "49.99 CNY".
func FormatFen(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d CNY", sign, fen/100, fen%100)
}

// systemSets is said in every tool description: the model must know that
// it cannot choose the money-relevant parties, so it does not try. It is
// short because it goes to the provider three times with every signed-in
// turn, billed as prompt tokens.
const systemSets = "Price, payee and paying user are set by the system; you cannot set them."

// PaymentTools renders the payment tool definitions of SPEC 4 as a JSON
// array of OpenAI "tools" entries (type function), ready for AddTools. The
// caller computes it once at startup and reuses the bytes for every request.
func PaymentTools(spec ToolSpec) []byte {
	out := []byte{'['}
	add := func(name, desc string, props []prop) {
		if name == "" {
			return
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = appendTool(out, name, desc, props, spec.Strict)
	}
	if len(spec.SKUs) > 0 {
		methods := spec.PayMethods
		if len(methods) == 0 {
			methods = payMethods
		}
		add(spec.CreateOrder, createOrderDesc(methods), createOrderProps(spec.SKUs, methods))
	}
	add(spec.QueryOrder,
		"Look up one of the signed-in user's orders: its state (awaiting payment, paid, closed, refunded, …) and when it was paid. Only the user's own orders can be found. "+systemSets,
		[]prop{{name: "order_no", typ: "string", required: true, desc: orderNoDesc(spec)}})
	add(spec.RequestRefund,
		"Propose a refund of one of the signed-in user's paid orders. No money moves when you call this: the user must confirm the refund themselves, and a refund can never exceed what was paid. Call it only when the user asked for a refund. "+systemSets,
		[]prop{
			{name: "order_no", typ: "string", required: true,
				desc: "The number of the paid order to refund."},
			{name: "reason", typ: "string", required: true,
				desc: "Why the user wants the refund, in their own words."},
			{name: "amount", typ: "string",
				desc: `Amount to refund in CNY as a decimal string such as "20.00". Leave it out to refund everything not yet refunded.`},
		})
	return append(out, ']')
}

// orderNoDesc describes query_order's order_no. It names the order tool
// as the model is offered it (payments.tools.create_order), or none when
// create_order is not offered (no catalog, max_payment_calls 0): the names
// are configurable so that a bot's own tool keeps its name, and a fixed
// "create_order" here pointed the model at that tool, or at one nobody
// offered.
func orderNoDesc(spec ToolSpec) string {
	if spec.CreateOrder == "" || len(spec.SKUs) == 0 {
		return "The order number, as the payment state message names it."
	}
	return "The order number, as " + spec.CreateOrder + " returned it or as the payment state message names it."
}

// createOrderDesc is create_order's description: the same few sentences
// whatever the catalog. OpenAI refused a function description longer than
// 1024 characters (400 string_above_max_length) on every request that
// carries it until 2025 (run-llama/llama_index#18784, OpenHands#10184
// saw it lifted; Azure OpenAI then named 1,048,576), and endpoints that
// keep the old bound remain; the catalog listed here passed it at ten
// items, so every signed-in turn of such a shop was refused: the catalog
// is listed in the sku parameter's description instead, once.
//
// With one pay method offered it also says how the user pays, and that the
// other way cannot be had: the pay_method parameter is left out then
// (createOrderProps), and the model must still know that a QR code (or
// paying inside WeChat) is not on offer, to tell a user who asks for it.
func createOrderDesc(methods []string) string {
	d := "Create a WeChat Pay order for the signed-in user to buy an item of the catalog, which the sku parameter lists. Call it only when the user clearly asked to buy; if the item or the quantity is unclear, ask the user first instead of guessing. "
	if len(methods) == 1 {
		d += onlyMethod[methods[0]]
	}
	return d + systemSets
}

// onlyMethod says how the user pays when methods offers one alone.
var onlyMethod = map[string]string{
	"jsapi":  "The user pays inside WeChat (mini-program or official account); no QR code can be offered. ",
	"native": "The user pays by scanning a QR code with WeChat; paying inside WeChat without a QR code cannot be offered. ",
}

// methodDesc is pay_method's description for methods (two or more), the
// first the default.
func methodDesc(methods []string) string {
	var b strings.Builder
	for i, m := range methods {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(m))
		b.WriteString(methodUse[m])
	}
	b.WriteString(". Defaults to ")
	b.WriteString(strconv.Quote(methods[0]))
	b.WriteString("; left out or null, an order already open for the same purchase keeps its own method.")
	return b.String()
}

// methodUse describes each pay method after its name.
var methodUse = map[string]string{
	"jsapi":  " to pay inside WeChat (mini-program or official account)",
	"native": " for a QR code to scan",
}

func catalogList(skus []SKU) string {
	var b strings.Builder
	for i, s := range skus {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.ID)
		b.WriteString(" = ")
		b.WriteString(s.Name)
		b.WriteString(", ")
		b.WriteString(FormatFen(s.PriceFen))
		if s.MaxQuantity > 0 {
			b.WriteString(", at most ")
			b.WriteString(strconv.Itoa(s.MaxQuantity))
			b.WriteString(" per order")
		}
	}
	return b.String()
}

// maxSKUEnum is the most SKUs the sku parameter's enum lists; past it the
// parameter has no enum (see skuEnum).
const maxSKUEnum = 100

// payMethods are pay_method's values.
var payMethods = []string{"jsapi", "native"}

// skuEnum is the sku parameter's enum: the catalog's ids, or none for a
// catalog of more than maxSKUEnum. Gemini refuses a schema whose enums are
// too large for its constrained decoding with a 400 ("too many states for
// serving", an undocumented budget that 100 to 260 values have passed:
// googleapis/python-genai#950 and #2133, the latter in mode ANY, a forced
// tool call), OpenAI's strict mode past 1000 values (or 15,000 characters
// of values past 250), and either would refuse every signed-in turn. The
// enum binds nothing at OpenAI without strict mode, which paygate does not
// send, and the catalog in the sku description names every id, so past
// the bound it only said each id twice; the service takes only an id of
// the catalog, exactly.
func skuEnum(ids []string) []string {
	if len(ids) > maxSKUEnum {
		return nil
	}
	return ids
}

// createOrderProps are create_order's parameters. pay_method is one only
// with more than one method offered: with one, a parameter whose enum
// holds a single value gives the model a choice that is none, which models
// fill from the user's words regardless of the enum ("a QR code, please":
// "native"), each such call then asked about; without it, the description
// says how the user pays (createOrderDesc), and the model tells a user
// asking for the other way that it cannot be had.
func createOrderProps(skus []SKU, methods []string) []prop {
	ids := make([]string, len(skus))
	maxQ := 1
	for i, s := range skus {
		ids[i] = s.ID
		if s.MaxQuantity > maxQ {
			maxQ = s.MaxQuantity
		}
	}
	props := []prop{
		// The catalog (names, prices, limits) is listed once, here: in
		// the tool's description it passed OpenAI's 1024 characters at
		// ten items (createOrderDesc).
		{name: "sku", typ: "string", enum: skuEnum(ids), required: true,
			desc: "The id of the catalog item to buy, exactly as listed. Catalog: " + catalogList(skus) + "."},
		{name: "quantity", typ: "integer", min: 1, max: maxQ,
			desc: "How many to buy, within the item's limit. Defaults to 1."},
	}
	if len(methods) > 1 {
		props = append(props, prop{name: "pay_method", typ: "string", enum: methods, desc: methodDesc(methods)})
	}
	return props
}

// prop is one parameter of a tool schema.
type prop struct {
	name, typ, desc string
	enum            []string
	min, max        int // for integers when max > 0
	required        bool
}

func appendTool(out []byte, name, desc string, props []prop, strict bool) []byte {
	out = append(out, `{"type":"function","function":{"name":`...)
	out = jsonstr.Append(out, name)
	out = append(out, `,"description":`...)
	out = jsonstr.Append(out, desc)
	out = append(out, `,"parameters":{"type":"object","properties":{`...)
	for i, p := range props {
		if i > 0 {
			out = append(out, ',')
		}
		out = jsonstr.Append(out, p.name)
		out = append(out, `:{"type":`...)
		nullable := strict && !p.required
		if nullable {
			out = append(out, '[')
			out = jsonstr.Append(out, p.typ)
			out = append(out, `,"null"]`...)
		} else {
			out = jsonstr.Append(out, p.typ)
		}
		if len(p.enum) > 0 {
			out = append(out, `,"enum":[`...)
			for j, e := range p.enum {
				if j > 0 {
					out = append(out, ',')
				}
				out = jsonstr.Append(out, e)
			}
			if nullable {
				out = append(out, `,null`...)
			}
			out = append(out, ']')
		}
		if p.max > 0 {
			out = append(out, `,"minimum":`...)
			out = strconv.AppendInt(out, int64(p.min), 10)
			out = append(out, `,"maximum":`...)
			out = strconv.AppendInt(out, int64(p.max), 10)
		}
		d := p.desc
		if nullable {
			d += " Null means the default."
		}
		out = append(out, `,"description":`...)
		out = jsonstr.Append(out, d)
		out = append(out, '}')
	}
	out = append(out, `},"required":[`...)
	n := 0
	for _, p := range props {
		if p.required || strict {
			if n > 0 {
				out = append(out, ',')
			}
			out = jsonstr.Append(out, p.name)
			n++
		}
	}
	out = append(out, `],"additionalProperties":false}`...)
	if strict {
		out = append(out, `,"strict":true`...)
	}
	return append(out, `}}`...)
}

// AddTools appends the entries of tools (a JSON array, as PaymentTools makes
// it) to the body's "tools" array, creating the array when the body has none.
// The client's own tools stay byte for byte. A client tool named like one of
// names is a request paygate cannot serve (the model could not tell the two
// apart): the error wraps ErrBadRequest and names the clash. The result
// shares no memory with body.
func AddTools(body, tools []byte, names []string) ([]byte, error) {
	inner := arrayInner(tools)
	cur := gjson.GetBytes(body, "tools")
	switch {
	case !cur.Exists() || cur.Type == gjson.Null:
		if len(inner) == 0 {
			return append([]byte(nil), body...), nil
		}
		if !cur.Exists() {
			if out, ok := appendMember(body, `"tools":`, tools); ok {
				return out, nil
			}
		}
		out, err := sjson.SetRawBytes(append([]byte(nil), body...), "tools", tools)
		if err != nil {
			return nil, fmt.Errorf("adding tools: %w", err)
		}
		return out, nil
	case !cur.IsArray():
		return nil, paramError("tools", "'tools' must be an array")
	}
	if err := checkToolNames(cur.Raw, names); err != nil {
		return nil, err
	}
	if len(inner) == 0 {
		return append([]byte(nil), body...), nil
	}
	// Insert before the array's closing bracket; everything else is copied.
	end := cur.Index + len(cur.Raw) - 1
	if cur.Index <= 0 || end >= len(body) || body[end] != ']' {
		return nil, fmt.Errorf("adding tools: cannot locate the tools array")
	}
	empty := len(arrayInner([]byte(cur.Raw))) == 0
	out := make([]byte, 0, len(body)+len(inner)+1)
	out = append(out, body[:end]...)
	if !empty {
		out = append(out, ',')
	}
	out = append(out, inner...)
	out = append(out, body[end:]...)
	return out, nil
}

// ToolNames lists the names of the tools a request body offers (its
// "tools" entries' function and custom names), for Capture.BotNames. It
// reads every copy of an entry's "function" or "custom" member and of
// their "name", also those spelled in another case, as checkToolNames
// does: the provider's parser may take any one (most keep the last, Go's
// match names in any case), and a name of the bot's left out lets the
// capture take the start of its call for a payment tool's.
func ToolNames(body []byte) []string {
	var names []string
	arr := gjson.GetBytes(body, "tools")
	if !arr.IsArray() {
		return nil
	}
	s := arr.Raw
	_ = toolDefinitions(s, func(at int) error {
		for l := at + 1; ; {
			f, ok := jsonscan.NextMember(s, l, true)
			if !ok {
				return nil
			}
			l = f.End
			if !strings.EqualFold(jsonscan.KeyName(f.Key), "name") {
				continue
			}
			if n := stringValue(s[f.At:f.End]); n != "" {
				names = append(names, n)
			}
		}
	})
	return names
}

// checkToolNames refuses a client tool named like one of names, in the
// JSON array arr. It reads every copy of an entry's "function" or "custom"
// member and of their "name", also those spelled in another case: paygate
// forwards them all, and a provider's parser may take any one (most keep
// the last of a repeated member, Go's encoding/json matches member names
// case-insensitively), so checking only the first would let a client tool
// pass for a payment tool that paygate then executes.
func checkToolNames(arr string, names []string) error {
	return toolDefinitions(arr, func(at int) error { return reservedName(arr, at, names, "tool") })
}

// toolDefinitions calls f with the offset in the tools array arr of each
// entry's "function" or "custom" object, every copy and in any case (the
// provider's parser may take any one), until f returns an error.
func toolDefinitions(arr string, f func(at int) error) error {
	for i := 1; ; {
		e, ok := jsonscan.NextMember(arr, i, false)
		if !ok {
			return nil
		}
		i = e.End
		if arr[e.At] != '{' {
			continue
		}
		for j := e.At + 1; ; {
			m, ok := jsonscan.NextMember(arr, j, true)
			if !ok {
				break
			}
			j = m.End
			if arr[m.At] != '{' {
				continue
			}
			if k := jsonscan.KeyName(m.Key); !strings.EqualFold(k, "function") && !strings.EqualFold(k, "custom") {
				continue
			}
			if err := f(m.At); err != nil {
				return err
			}
		}
	}
}

// CheckFunctions refuses a body whose legacy "functions" array (function
// calling before "tools") names a function like one of names: the model
// would see two definitions of one name, and a call of it would be run as
// a payment or handed to the bot. Every copy of an entry's "name" counts,
// in any case, as in checkToolNames; ReadChat has refused a second
// "functions" member. The error wraps ErrBadRequest.
func CheckFunctions(body []byte, names []string) error {
	fs := gjson.GetBytes(body, "functions")
	switch {
	case !fs.Exists() || fs.Type == gjson.Null:
		return nil
	case !fs.IsArray():
		return paramError("functions", "'functions' must be an array")
	}
	for i := 1; ; {
		e, ok := jsonscan.NextMember(fs.Raw, i, false)
		if !ok {
			return nil
		}
		i = e.End
		if fs.Raw[e.At] != '{' {
			continue
		}
		if err := reservedName(fs.Raw, e.At, names, "function"); err != nil {
			return err
		}
	}
}

// reservedName refuses the object whose '{' is s[at] when one of its
// "name" members, its key in any case, is one of names; what names the
// thing the client must rename ("tool", "function").
func reservedName(s string, at int, names []string, what string) error {
	for l := at + 1; ; {
		f, ok := jsonscan.NextMember(s, l, true)
		if !ok {
			return nil
		}
		l = f.End
		if !strings.EqualFold(jsonscan.KeyName(f.Key), "name") {
			continue
		}
		if n := stringValue(s[f.At:f.End]); n != "" && slices.Contains(names, n) {
			return paramError(what+"s", "the %s name %q is reserved by paygate for payments; rename your %s", what, n, what)
		}
	}
}

// AppendTools is AddTools for a body the caller knows has no "tools" member
// (Chat.HasTools false): it appends the member without looking for one.
func AppendTools(body, tools []byte) ([]byte, error) {
	if len(arrayInner(tools)) == 0 {
		return append([]byte(nil), body...), nil
	}
	if out, ok := appendMember(body, `"tools":`, tools); ok {
		return out, nil
	}
	return AddTools(body, tools, nil)
}

// appendMember returns a copy of the JSON object obj with key (quoted, with
// its colon) and value added as its last member, made in one allocation;
// every other byte stays where it was. It reports false when obj does not
// look like an object. The caller knows the key is absent.
func appendMember(obj []byte, key string, value []byte) ([]byte, bool) {
	o := trimSpace(obj)
	if len(o) < 2 || o[0] != '{' || o[len(o)-1] != '}' {
		return nil, false
	}
	end := bytes.LastIndexByte(obj, '}')
	empty := len(trimSpace(o[1:len(o)-1])) == 0
	out := make([]byte, 0, len(obj)+1+len(key)+len(value))
	out = append(out, obj[:end]...)
	if !empty {
		out = append(out, ',')
	}
	out = append(out, key...)
	out = append(out, value...)
	return append(out, obj[end:]...), true
}

// arrayInner returns what is between the brackets of a JSON array, trimmed of
// white space; nil when a is not an array or is empty.
func arrayInner(a []byte) []byte {
	a = trimSpace(a)
	if len(a) < 2 || a[0] != '[' || a[len(a)-1] != ']' {
		return nil
	}
	return trimSpace(a[1 : len(a)-1])
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && jsonscan.IsSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && jsonscan.IsSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// SetToolChoiceNone asks the clarification round (SPEC 3, budget) for
// words, not another tool call, by every member of the request that asks
// for one: "tool_choice" becomes "none" where the request offers "tools",
// and a legacy "function_call" becomes "none" where it carries one or
// offers the legacy "functions" (without one, a provider that reads them
// takes "auto", and the model repeats the call as with "auto"). Both:
// function_call asks for a call as tool_choice does (ReadPaymentChoice
// reads both), and left as the bot sent it ({"name": "create_order"},
// "auto") a provider that reads it had the model make the call the user was
// just asked to clarify, refused again in every round until the rounds ran
// out. Not tool_choice without tools (the legacy functions, a prediction):
// OpenAI refuses it ("'tool_choice' is only allowed when 'tools' are
// specified"), and the user got that error in place of the question.
func SetToolChoiceNone(body []byte) ([]byte, error) {
	out := append([]byte(nil), body...)
	r := gjson.GetManyBytes(body, "tools", "function_call", "functions")
	var err error
	if r[0].Exists() && r[0].Type != gjson.Null {
		if out, err = sjson.SetBytes(out, "tool_choice", "none"); err != nil {
			return nil, fmt.Errorf("setting tool_choice: %w", err)
		}
	}
	if r[1].Exists() && r[1].Type != gjson.Null || r[2].Exists() && r[2].Type != gjson.Null {
		if out, err = sjson.SetBytes(out, "function_call", "none"); err != nil {
			return nil, fmt.Errorf("setting function_call: %w", err)
		}
	}
	return out, nil
}

// PaymentChoice is what the bot's tool_choice lets the model call of the
// payment tools: every one (the zero value: no tool_choice, "auto",
// "required" and its spellings), none ("none", a forced function or custom
// tool of the bot's own, allowed_tools listing only the bot's), or those it
// names (a payment tool forced by name, allowed_tools listing some).
type PaymentChoice struct {
	restricted bool
	names      []string
}

// NoPaymentTools is the PaymentChoice of a turn whose payment tools cannot
// be offered at all: None, and every payment call refused.
func NoPaymentTools() PaymentChoice { return PaymentChoice{restricted: true} }

// None reports whether the bot's tool_choice leaves every payment tool out:
// they are not offered, and a call to one is refused.
func (p PaymentChoice) None() bool { return p.restricted && len(p.names) == 0 }

// Allows reports whether the bot's tool_choice lets the model call the
// payment tool name.
func (p PaymentChoice) Allows(name string) bool {
	return !p.restricted || slices.Contains(p.names, name)
}

// ForcesUnnamedCall reports whether a tool_choice value (raw JSON, "" for
// none) forces a tool call without naming a tool: "required", Mistral's
// "any", Anthropic's {"type":"any"}.
func ForcesUnnamedCall(toolChoice string) bool {
	if toolChoice == "" {
		return false
	}
	tc := gjson.Parse(toolChoice)
	switch {
	case tc.Type == gjson.String:
		return tc.Str == "required" || tc.Str == "any"
	case tc.IsObject():
		return tc.Get("type").Str == "any"
	}
	return false
}

// ReadPaymentChoice reads a tool_choice value and a legacy function_call
// value (Chat.ToolChoice and Chat.FunctionCall, raw JSON; "" for none) as
// a PaymentChoice: a payment tool is allowed when both allow it. OpenAI
// deprecated function_call in favour of tool_choice but says nothing of a
// request with both, and providers differ: a payment call runs only if no
// reading of the bot's instruction left it out.
func ReadPaymentChoice(toolChoice, functionCall string, isPayment func(name string) bool) PaymentChoice {
	return readToolChoice(toolChoice, isPayment).and(readFunctionCall(functionCall, isPayment))
}

// readFunctionCall reads a legacy function_call: "none" allows no payment
// tool, {"name": …} only the function it forces (none when that is the
// bot's own), "auto" (and a value it does not know) every one.
func readFunctionCall(functionCall string, isPayment func(name string) bool) PaymentChoice {
	if functionCall == "" {
		return PaymentChoice{}
	}
	fc := gjson.Parse(functionCall)
	switch {
	case fc.Type == gjson.String && fc.Str == "none":
		return PaymentChoice{restricted: true}
	case fc.IsObject():
		if n := fc.Get("name").Str; isPayment(n) {
			return PaymentChoice{restricted: true, names: []string{n}}
		}
		return PaymentChoice{restricted: true}
	}
	return PaymentChoice{}
}

// and is what both p and q allow.
func (p PaymentChoice) and(q PaymentChoice) PaymentChoice {
	switch {
	case !q.restricted:
		return p
	case !p.restricted:
		return q
	}
	r := PaymentChoice{restricted: true}
	for _, n := range p.names {
		if slices.Contains(q.names, n) {
			r.names = append(r.names, n)
		}
	}
	return r
}

// readToolChoice reads a tool_choice value as a PaymentChoice. Besides
// OpenAI's shapes it reads the flat ones other APIs use
// ({"type":"tool","name":…}, allowed_tools with "tools" beside "type",
// {"type":"none"}); a choice it does not know restricts nothing, as "auto".
func readToolChoice(toolChoice string, isPayment func(name string) bool) PaymentChoice {
	if toolChoice == "" {
		return PaymentChoice{}
	}
	tc := gjson.Parse(toolChoice)
	if tc.Type == gjson.String {
		if tc.Str == "none" {
			return PaymentChoice{restricted: true}
		}
		return PaymentChoice{}
	}
	if !tc.IsObject() {
		return PaymentChoice{}
	}
	// toolName is the name a forced choice or an allowed_tools entry gives
	// its tool: {"function":{"name":…}}, {"custom":{"name":…}} or a flat
	// "name".
	toolName := func(t gjson.Result) string {
		if n := t.Get("function.name"); n.Type == gjson.String {
			return n.Str
		}
		if n := t.Get("custom.name"); n.Type == gjson.String {
			return n.Str
		}
		return t.Get("name").Str
	}
	switch tc.Get("type").Str {
	case "none":
		return PaymentChoice{restricted: true}
	case "function", "custom", "tool":
		if n := toolName(tc); isPayment(n) {
			return PaymentChoice{restricted: true, names: []string{n}}
		}
		return PaymentChoice{restricted: true}
	case "allowed_tools":
		tools := tc.Get("allowed_tools.tools")
		if !tools.Exists() {
			tools = tc.Get("tools")
		}
		p := PaymentChoice{restricted: true}
		tools.ForEach(func(_, t gjson.Result) bool {
			if n := toolName(t); isPayment(n) && !slices.Contains(p.names, n) {
				p.names = append(p.names, n)
			}
			return true
		})
		return p
	}
	return PaymentChoice{}
}

// RelaxToolChoice returns body for a round that follows a payment round,
// with a tool_choice that forced a tool call relaxed to "auto": the bot's
// "required" (Mistral's "any", or allowed_tools in mode "required", its
// mode inside "allowed_tools" or beside "type") was met by the payment
// call (so was Anthropic's {"type":"any"}), and a choice naming a payment
// tool by name, in any shape readToolChoice reads as one (OpenAI's, the
// flat {"type":"function","name":…}, Anthropic's {"type":"tool",…}, a
// custom tool's), was obeyed, as was a legacy function_call naming one;
// forced again, the model would call a tool in every round and never give
// the user its answer (the second create_order refused for the budget, the
// user asked to clarify an order that was made). A choice naming one of the
// client's own functions stays (that call has not been made yet). The
// result shares no memory with body; body itself is returned when nothing
// changes.
func RelaxToolChoice(body []byte, isPayment func(name string) bool) ([]byte, error) {
	out := body
	set := func(path, value string) error {
		b, err := sjson.SetBytes(append([]byte(nil), out...), path, value)
		if err != nil {
			return fmt.Errorf("relaxing %s: %w", path, err)
		}
		out = b
		return nil
	}
	tc := gjson.GetBytes(body, "tool_choice")
	var err error
	switch {
	case tc.Type == gjson.String && (tc.Str == "required" || tc.Str == "any"):
		err = set("tool_choice", "auto")
	case tc.IsObject() && tc.Get("type").Str == "allowed_tools":
		if tc.Get("allowed_tools.mode").Str == "required" {
			err = set("tool_choice.allowed_tools.mode", "auto")
		} else if tc.Get("mode").Str == "required" {
			err = set("tool_choice.mode", "auto")
		}
	case tc.IsObject() && (tc.Get("type").Str == "any" ||
		tc.Get("type").Str == "tool" && len(readToolChoice(tc.Raw, isPayment).names) > 0):
		// Anthropic's shapes ({"type":"any"} is its "required"): relaxed in
		// its own shape, {"type":"auto"}, which a provider that takes them
		// reads.
		if err = set("tool_choice.type", "auto"); err == nil {
			if out, err = sjson.DeleteBytes(out, "tool_choice.name"); err != nil {
				err = fmt.Errorf("relaxing tool_choice.name: %w", err)
			}
		}
	case tc.IsObject() && len(readToolChoice(tc.Raw, isPayment).names) > 0:
		err = set("tool_choice", "auto")
	}
	if err != nil {
		return nil, err
	}
	if fc := gjson.GetBytes(body, "function_call"); fc.IsObject() && isPayment(fc.Get("name").Str) {
		if err := set("function_call", "auto"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// InsertStateMessage inserts {"role":"system","content":text} just before the
// last user message, so every byte of the conversation before it stays as the
// client sent it and providers' prompt caches keep hitting (SPEC 3 step 3).
// With no user message the system message goes at the end. index is the
// message's index in the array: a provider that takes system messages only
// first gets it moved there (failover.Request.System). The result shares no
// memory with body.
func InsertStateMessage(body []byte, text string) (out []byte, index int, err error) {
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.IsArray() {
		return nil, 0, paramError("messages", "'messages' must be an array")
	}
	at, n := -1, 0
	msgs.ForEach(func(_, m gjson.Result) bool {
		if m.Get("role").String() == "user" {
			at, index = m.Index, n
		}
		n++
		return true
	})
	msg := jsonstr.Append([]byte(`{"role":"system","content":`), text)
	msg = append(msg, '}')
	if at < 0 {
		out, err = AppendMessages(body, msg)
		return out, n, err
	}
	out = make([]byte, 0, len(body)+len(msg)+1)
	out = append(out, body[:at]...)
	out = append(out, msg...)
	out = append(out, ',')
	out = append(out, body[at:]...)
	return out, index, nil
}

// AppendMessages appends raw JSON messages to the body's "messages" array:
// the assistant tool_calls message and the tool results of a payment round.
// The result shares no memory with body.
func AppendMessages(body []byte, msgs ...[]byte) ([]byte, error) {
	arr := gjson.GetBytes(body, "messages")
	if !arr.IsArray() {
		return nil, paramError("messages", "'messages' must be an array")
	}
	end := arr.Index + len(arr.Raw) - 1
	if arr.Index <= 0 || end >= len(body) || body[end] != ']' {
		return nil, fmt.Errorf("appending messages: cannot locate the messages array")
	}
	n := len(body)
	for _, m := range msgs {
		if !gjson.ValidBytes(m) {
			return nil, fmt.Errorf("appending messages: a message is not valid JSON")
		}
		n += len(m) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, body[:end]...)
	empty := len(arrayInner([]byte(arr.Raw))) == 0
	for _, m := range msgs {
		if !empty {
			out = append(out, ',')
		}
		out = append(out, m...)
		empty = false
	}
	out = append(out, body[end:]...)
	return out, nil
}
