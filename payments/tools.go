package payments

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/store"
)

// ToolNames are the payment tools' names as the model sees them.
type ToolNames struct {
	CreateOrder, QueryOrder, RequestRefund string
}

// Caller is who a payment tool call acts for. It comes from paygate's own
// records (the authenticated client key and the OpenID the bot vouched for),
// never from the model.
type Caller struct {
	Client      string
	AppID       string
	User        string
	Session     string
	AllowedSKUs []string // empty: every SKU
	// PayMethods are the pay methods the caller's model may order with
	// ("jsapi", "native"), the first the default; empty: both, jsapi
	// first. A create_order naming another is asked about and reaches no
	// WeChat Pay (payments.pay_methods).
	PayMethods []string
}

// defaultPayMethods are the pay methods of a Caller that names none.
var defaultPayMethods = []string{"jsapi", "native"}

// payMethods are the pay methods c may order with, the default first.
func (c Caller) payMethods() []string {
	if len(c.PayMethods) == 0 {
		return defaultPayMethods
	}
	return c.PayMethods
}

// methodWords describe each pay method to the model and the user.
var methodWords = map[string]string{"jsapi": "to pay inside WeChat", "native": "a QR code to scan"}

// methodsOffered lists methods as a clarification names them:
// `"jsapi" (to pay inside WeChat) or "native" (a QR code to scan)`.
func methodsOffered(methods []string) string {
	parts := make([]string, len(methods))
	for i, m := range methods {
		parts[i] = fmt.Sprintf("%q (%s)", m, methodWords[m])
	}
	return strings.Join(parts, " or ")
}

// Outcome is what one payment tool call produced.
type Outcome struct {
	// Result is the tool result the model reads: no signing material, no
	// prepay id, only what it needs to talk to the user.
	Result []byte
	// Action is the entry for the response's paygate.actions (nil: none).
	Action []byte
	// MoneyMoving: the call counts against the turn's payment budget.
	MoneyMoving bool
	// Executed: the call reached the payment service.
	Executed bool
	// Clarify: the arguments were incomplete or invalid; the model must ask
	// the user, and the next round runs with tool_choice "none".
	Clarify bool
	// Failed: the payment service could not do the call (WeChat Pay
	// refused it or did not answer, the store failed, also before anything
	// was executed when the rules could not be read); the result says so.
	// Counted apart, so an outage looks neither like success nor like a
	// refusal on the tool-call metric.
	Failed bool
	// Purchase is the purchase a create_order call was about and the order
	// that stands for it after the call (nil: no order was read). An
	// order_created the turn holds for that purchase under another number
	// is stale: the call replaced that order (a switch of pay method closes
	// it at WeChat Pay before the new one is made), also when the new one
	// brought no payment of its own (its prepay unanswered or refused), or
	// was never made (the store failed after the close: OrderNo is then
	// empty, and no order stands for the purchase).
	Purchase *Purchase
}

// Purchase names a purchase (its SKU and quantity: the turn's client and
// user are one) and the number of its current order ("": none).
type Purchase struct {
	SKU      string
	Quantity int
	OrderNo  string
}

// Tools executes the payment tools the model calls. It validates arguments
// against the catalog, ignores (and logs) any argument outside the schema —
// the model can set no price, payee, notify URL or user — and calls Service.
type Tools struct {
	svc   *Service
	names ToolNames
	log   *slog.Logger
	// unread paces the lines of calls refused because their rules could
	// not be read (refusedByRule).
	unread logging.Paced
}

// NewTools builds the executor.
func NewTools(svc *Service, names ToolNames, log *slog.Logger) *Tools {
	return &Tools{svc: svc, names: names, log: log, unread: logging.Paced{Every: unreadLogEvery}}
}

// IsPayment reports whether name is one of paygate's tools.
func (t *Tools) IsPayment(name string) bool {
	return name == t.names.CreateOrder || name == t.names.QueryOrder || name == t.names.RequestRefund
}

// IsMoneyMoving reports whether a call of name counts against the budget.
func (t *Tools) IsMoneyMoving(name string) bool {
	return name == t.names.CreateOrder || name == t.names.RequestRefund
}

// Names returns the tool names.
func (t *Tools) Names() ToolNames { return t.names }

// Refused is the outcome of a payment call the turn does not execute: why
// tells the model the reason (beyond the turn's budget, after it asked the
// user to clarify, a call without one name), and the model is told to ask
// the user either way.
func (t *Tools) Refused(name, why string) Outcome {
	return Outcome{
		Result:      resultJSON(map[string]any{"status": "not_executed", "error": why + "; ask the user to confirm what they want before trying again"}),
		MoneyMoving: true,
		Clarify:     true,
	}
}

// Unavailable is the outcome of a money-moving call that nothing the user
// could say would let run (payments.budget.max_payment_calls 0): not
// executed, as Refused's, but without Refused's "ask the user to confirm
// what they want before trying again": a user so asked confirmed and was
// refused again, turn after turn. The model is told to say so instead; the
// next round is offered no tool (Clarify), as after any refusal.
func Unavailable(why string) Outcome {
	return Outcome{
		Result: resultJSON(map[string]any{"status": "not_executed", "error": why,
			"instruction": "tell the user this cannot be done here; do not ask them to confirm: nothing they say changes it"}),
		MoneyMoving: true,
		Clarify:     true,
	}
}

// maxArgs bounds a payment call's arguments, a few short members: they
// come from the model over any number of stream events, and their check
// (gjson.Valid) recurses once per level of nesting, so 16 M brackets,
// four events of a provider's stream, passed the runtime's 1 GB stack
// limit and ended the process.
const maxArgs = 16 << 10

var createArgs = map[string]bool{"sku": true, "quantity": true, "pay_method": true}
var queryArgs = map[string]bool{"order_no": true}
var refundArgs = map[string]bool{"order_no": true, "reason": true, "amount": true}

// Execute runs one payment tool call. It never returns an error: every
// failure becomes a tool result the model can explain, and payments fail
// closed.
func (t *Tools) Execute(ctx context.Context, c Caller, name, args string) Outcome {
	if args == "" {
		args = "{}"
	}
	if len(args) > maxArgs {
		return clarify("the arguments were longer than any this tool takes")
	}
	if !gjson.Valid(args) || !gjson.Parse(args).IsObject() {
		return clarify("the arguments were not a JSON object")
	}
	if why := ambiguousArg(args, t.schema(name)); why != "" {
		return clarify(why)
	}
	// A create_order counts against max_payment_calls_per_minute in
	// createOrder, once its purchase is known: one that only asks again
	// for its purchase's order reaches no WeChat Pay and is not counted.
	if t.IsPayment(name) && name != t.names.CreateOrder {
		if err := t.svc.CheckCall(ctx, c.Client, c.User); err != nil {
			return t.refusedByRule(ctx, name, args, c, err)
		}
	}
	switch name {
	case t.names.CreateOrder:
		t.ignoreExtra(ctx, name, args, createArgs)
		return t.createOrder(ctx, c, args)
	case t.names.QueryOrder:
		t.ignoreExtra(ctx, name, args, queryArgs)
		return t.queryOrder(ctx, c, args)
	case t.names.RequestRefund:
		t.ignoreExtra(ctx, name, args, refundArgs)
		return t.requestRefund(ctx, c, args)
	}
	return Outcome{Result: resultJSON(map[string]any{"error": "unknown tool " + name})}
}

// schema is the argument names of tool name (nil: not a payment tool).
func (t *Tools) schema(name string) map[string]bool {
	switch name {
	case t.names.CreateOrder:
		return createArgs
	case t.names.QueryOrder:
		return queryArgs
	case t.names.RequestRefund:
		return refundArgs
	}
	return nil
}

// ambiguousArg says why the arguments object args (valid JSON) cannot be
// read one way for schema, or "": a member named more than once (escaped
// or not), or a key that is a member but for case.
//
// Every argument is read with gjson, which takes the first of a repeated
// key, while the provider, the bot's logs and most JSON parsers (Python,
// JavaScript, Go's encoding/json) take the last: {"quantity":1,
// "quantity":12} was bought as one while the model's own history said
// twelve. A key in another case ({"Amount":"10.00"}) was ignored as
// outside the schema, so the call ran with the member's default (a
// refund of everything left), while to the model, and to Go's parsers,
// which match names ignoring case, it is the member. Which the model
// meant is not paygate's to guess where money is concerned: the call is
// not run.
func ambiguousArg(args string, schema map[string]bool) string {
	var seen map[string]bool
	why := ""
	gjson.Parse(args).ForEach(func(k, _ gjson.Result) bool {
		name := k.String()
		if !schema[name] {
			for m := range schema {
				if strings.EqualFold(name, m) {
					why = fmt.Sprintf("the argument %q is not a name this tool takes (it takes %q), so nothing was done", echo(name), m)
					return false
				}
			}
			return true
		}
		if seen[name] {
			why = fmt.Sprintf("the argument %q was given more than once, so nothing was done", echo(name))
			return false
		}
		if seen == nil {
			seen = make(map[string]bool, len(schema))
		}
		seen[name] = true
		return true
	})
	return why
}

// countWords are the words of an argument's name that read as a count of
// items (quantityOutside); priceWords those that read as money, whose
// members stay ignored (SPEC 4: the price is the catalog's).
var (
	countWords = map[string]bool{"qty": true, "qtys": true, "quant": true, "quantity": true, "quantities": true,
		"count": true, "counts": true, "num": true, "number": true, "numbers": true, "units": true, "copies": true, "pieces": true, "pcs": true,
		// "how_many", "howMany" (words how, many) and "howmany": the
		// question a count answers; {"how_many":3} bought one.
		"many": true, "howmany": true}
	// itemWords read as a count only of a value with a digit, an array or
	// an object ("items":[…], "unit":2): "item_name":"Premium" names the
	// thing bought. So do the periods and seats a SKU may be sold by:
	// {"months":3} for premium-monthly ("three months of premium") bought
	// one month, while "months":"monthly" counts nothing.
	itemWords = map[string]bool{"item": true, "items": true, "unit": true,
		"days": true, "weeks": true, "months": true, "years": true, "seats": true, "licenses": true, "licences": true}
	priceWords = map[string]bool{"price": true, "prices": true, "amount": true, "cost": true, "fee": true,
		"fen": true, "yuan": true, "cny": true, "currency": true, "discount": true, "tax": true}
	// numberWords name a count only as the number of items (numberOfItems):
	// "phone_number", "order_number", "serial_number" name a thing.
	numberWords = map[string]bool{"num": true, "number": true, "numbers": true}
	// ofItemsWords may stand beside a number word in a count's name
	// ("number_of_items", "total_num", "num_products"); singular ones
	// only with a JSON number ("itemNum":2, not "item_number":"A-12").
	ofItemsWords    = map[string]bool{"of": true, "to": true, "the": true, "buy": true, "purchase": true, "total": true, "products": true, "skus": true}
	singleItemWords = map[string]bool{"item": true, "unit": true, "product": true}
)

// numberOfItems reports whether words, the words of a name with a number
// word (numberWords), read as the number of items for the value v: every
// other word is one of a count or of the items counted. Another word
// ("phone", "order", "serial", "id", "contact") makes it a thing's number,
// which SPEC 4 ignores like any other member outside the schema. A number
// word before another word counts what that word names, whatever it is
// ("number_of_months", "numSeats", "num_licenses"): only a number word
// after the thing it numbers ("phone_number") names a thing's number; and
// one without a digit ("number_type": "mobile") counts nothing. A number
// word after the thing it numbers stays a thing's number whatever follows
// it ("order_number_id", "phone_number_country_code"): only count words or
// those of a count ("total") may stand before the number word that counts.
func numberOfItems(words []string, v gjson.Result) bool {
	for i, w := range words[:max(len(words)-1, 0)] {
		if numberWords[w] && !numberWords[words[i+1]] {
			return holdsCount(v)
		}
		if !countWords[w] && !ofItemsWords[w] {
			break
		}
	}
	for _, w := range words {
		switch {
		case numberWords[w], countWords[w], itemWords[w] && !singleItemWords[w], ofItemsWords[w]:
		case singleItemWords[w] && v.Type == gjson.Number:
		default:
			return false
		}
	}
	return true
}

// quantityOutside names the first member of create_order's arguments args
// outside its schema, not null, whose name reads as a count of items
// ("qty", "count", "numItems", "item_count"; "items" or "unit" with a
// count in it: holdsCount), or that holds such a member within it, an
// object or array nesting it up to maxNestedDepth levels down
// ({"order":{"quantity":3}}, {"cart":[{"qty":3}]}), or "". Without
// "quantity" an order of one is made: a model that put the user's "five
// of them" under a name of its own had it ignored as outside the schema,
// and one was bought without a word. Which it meant is asked, as
// request_refund asks of an amount under another name (numberOutside). A
// member whose name also reads as money ("unit_price"), names a thing's
// number ("phone_number", "order_number": numberOfItems) or says no count
// (a price, a payee, a note) is still only ignored (SPEC 4).
func quantityOutside(args string) string {
	name := ""
	gjson.Parse(args).ForEach(func(k, v gjson.Result) bool {
		if key := k.String(); !createArgs[key] && nestedIn(key, v, maxNestedDepth, countNamed) {
			name = key
			return false
		}
		return true
	})
	return name
}

// maxNestedDepth bounds how far down an argument quantityOutside and
// methodOutside look for a count or a pay method: a model nests its own
// few members a level or two, and each level is read again whole.
const maxNestedDepth = 4

// nestedIn reports whether the member key of value v (not null) is one
// is looks for (a count's name, countNamed; a pay method's value,
// methodOutside's), or, v an object or array (or a string holding one
// in JSON), holds such a member up to depth levels down (an array's
// elements are read as unnamed members).
func nestedIn(key string, v gjson.Result, depth int, is func(key string, v gjson.Result) bool) bool {
	if v.Type == gjson.Null {
		return false
	}
	if is(key, v) {
		return true
	}
	if depth == 0 {
		return false
	}
	if s := strings.TrimSpace(v.Str); v.Type == gjson.String && (strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")) && gjson.Valid(s) {
		// Arguments written again as a JSON string, as a model that
		// encodes twice writes them: {"payment":"{\"method\":\"native\"}"}.
		v = gjson.Parse(s)
	}
	if !v.IsObject() && !v.IsArray() {
		return false
	}
	found := false
	v.ForEach(func(k, e gjson.Result) bool {
		found = nestedIn(k.String(), e, depth-1, is)
		return !found
	})
	return found
}

// countNamed reports whether the member key of value v (not null) reads
// as a count of items by its name (quantityOutside).
func countNamed(key string, v gjson.Result) bool {
	if chineseCount(key) {
		return true
	}
	words := nameWords(key)
	for _, w := range words {
		if numberWords[w] && !numberOfItems(words, v) {
			return false // a thing's number ("phone_number"): ignored
		}
	}
	holds := holdsCount(v)
	count := false
	for _, w := range words {
		if priceWords[w] {
			return false
		}
		count = count || countWords[w] || itemWords[w] && holds
	}
	return count
}

// manyWords are English words for a count above one: {"months":"three"}
// ("three months of premium") held no digit and bought one month.
var manyWords = map[string]bool{"two": true, "three": true, "four": true, "five": true, "six": true,
	"seven": true, "eight": true, "nine": true, "ten": true, "eleven": true, "twelve": true,
	"thirteen": true, "fourteen": true, "fifteen": true, "sixteen": true, "seventeen": true,
	"eighteen": true, "nineteen": true, "twenty": true, "thirty": true, "forty": true, "fifty": true,
	"sixty": true, "seventy": true, "eighty": true, "ninety": true, "hundred": true, "thousand": true,
	"couple": true, "few": true, "several": true}

// holdsCount reports whether v may hold a count of items: a number, an
// array or an object, or text with a digit ("5", "５"), an English word
// for a count above one ("three", "a couple": manyWords; not a unit's
// name, "dozen" or "pair", which "unit":"pair" may only describe) or a Chinese
// numeral other than one or zero ("三", "两", "十一"). "one" and "一" say
// the one an order without "quantity" buys; "monthly" says none.
func holdsCount(v gjson.Result) bool {
	if v.Type != gjson.String {
		return v.Type == gjson.Number || v.IsArray() || v.IsObject()
	}
	if strings.IndexFunc(v.Str, unicode.IsDigit) >= 0 || strings.ContainsAny(strings.NewReplacer("一", "", "壹", "", "〇", "", "零", "").Replace(v.Str), chineseNumerals) {
		return true
	}
	return slices.ContainsFunc(nameWords(v.Str), func(w string) bool { return manyWords[w] })
}

// methodOutside names the first member of create_order's arguments args
// outside its schema whose value is one of pay_method's ("native",
// "jsapi", in any case), or that holds such a value within it, an object
// or array nesting it up to maxNestedDepth levels down
// ({"payment":{"method":"native"}}, ["native"]), or "". Without
// "pay_method" the purchase's open order keeps its method and a new one
// is jsapi: a model that put the user's "a QR code, please" under a name
// of its own ({"payment_method":"native"}) had it ignored as outside the
// schema, and a JSAPI order the user cannot pay on a desktop was made
// without a word. Which it meant is asked, as of a quantity under another
// name. A value is read whole (methodNamed): "native speaker" names no
// method, "Native QR" does; so is the name of a flag set true
// ({"qr_code":true}, {"isNative":true}, {"qr_code":"true"}: flagSet),
// and a flag unsetting JSAPI names Native Pay ({"jsapi":false}, made a
// JSAPI order); one unsetting Native Pay or a QR code names none.
//
// It also returns the method named, lower-cased.
func methodOutside(args string) (name, method string) {
	isMethod := func(key string, v gjson.Result) bool {
		method = ""
		if v.Type == gjson.String {
			method = methodNamed(v.Str)
		}
		if set, ok := flagSet(v); ok && method == "" {
			method = methodNamed(key) // a flag: {"qr_code":true}
			if !set {
				method = map[string]string{"jsapi": "native"}[method]
			}
		}
		return method != ""
	}
	gjson.Parse(args).ForEach(func(k, v gjson.Result) bool {
		if key := k.String(); !createArgs[key] && nestedIn(key, v, maxNestedDepth, isMethod) {
			name = key
			return false
		}
		return true
	})
	return name, method
}

// payWords are the words that may stand beside "native" or "jsapi" in a
// value naming a pay method ("Native QR", "NATIVE_PAY", "WeChat Native");
// qrWords those that name Native Pay by themselves ("qr_code", "Scan to
// pay"), as do 扫码 (scan) and 二维码 (QR code).
var (
	payWords = map[string]bool{"pay": true, "payment": true, "to": true, "by": true, "use": true, "is": true, "wechat": true, "we": true, "chat": true, "weixin": true, "wx": true, // "WeChat": "we", "chat"
		"code": true, "mode": true, "method": true, "type": true, "trade": true}
	qrWords = map[string]bool{"qr": true, "qrcode": true, "scan": true}
	// hanPayWords are payWords in Chinese: a word of Han characters made
	// of them alone ("支付", "微信支付", "支付方式") may stand beside
	// "native" or "jsapi", as WeChat Pay names them ("Native支付").
	hanPayWords = strings.NewReplacer("微信", "", "支付", "", "付款", "", "方式", "", "模式", "", "类型", "", "類型", "")
)

// flagSet reads v as a flag: true or false, or the same written as a
// string ("true", "Yes", "no"), as a model that quotes every value writes
// it ({"qr_code":"true"}); ok false for anything else.
func flagSet(v gjson.Result) (set, ok bool) {
	switch v.Type {
	case gjson.True:
		return true, true
	case gjson.False:
		return false, true
	case gjson.String:
		switch strings.ToLower(strings.TrimSpace(v.Str)) {
		case "true", "yes":
			return true, true
		case "false", "no":
			return false, true
		}
	}
	return false, false
}

// methodNamed is the pay method the string value s names, or "": "native"
// or "jsapi" in any case, alone or among payWords ("Native QR",
// "native_qr"), or Native Pay said by its QR code (qrWords, "扫码支付")
// with nothing but payWords beside it. A value with any other word names
// none ("native speaker", "a QR code photo of the receipt").
func methodNamed(s string) string {
	for _, qr := range []string{"扫码", "掃碼", "二维码", "二維碼"} {
		if strings.Contains(s, qr) {
			return "native"
		}
	}
	method, qr := "", false
	for _, w := range nameWords(s) {
		switch {
		case w == "native" || w == "jsapi":
			method = w
		case qrWords[w]:
			qr = true
		case !payWords[w] && hanPayWords.Replace(w) != "":
			return ""
		}
	}
	if method == "" && qr {
		return "native"
	}
	return method
}

// chineseMeasures are the measure words a count of things bought is
// named with in Chinese, before 数 ("件数", "份数": the number of pieces,
// of portions), simplified and traditional (個, 張, 臺, 隻; Japanese 個数).
const chineseMeasures = "件个份张杯盒瓶套台本支包袋箱只個張臺隻"

// chineseCount reports whether an argument's name reads as a count of
// items in Chinese: "数量" or "数目" in it ("数量", "购买数量"), or a
// measure word and 数 at its end ("件数"). A model answering in Chinese
// put the user's "要五杯" under {"数量":5}, ignored as outside the schema
// while {"qty":5} was asked about, and one was bought. A name that also
// reads as money ("价", "金额", "费", "钱") is a price's, ignored as the
// English ones are (SPEC 4). Traditional characters (數量, 價, 金額) and
// Japanese (個数) read as the simplified ones: {"數量":5} was ignored.
func chineseCount(name string) bool {
	if strings.ContainsAny(name, "价费钱價費錢") || strings.Contains(name, "金额") || strings.Contains(name, "金額") {
		return false
	}
	for _, count := range []string{"数量", "数目", "數量", "數目"} {
		if strings.Contains(name, count) {
			return true
		}
	}
	rest, ok := strings.CutSuffix(name, "数")
	if !ok {
		rest, ok = strings.CutSuffix(name, "數")
	}
	if !ok {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(rest)
	return strings.ContainsRune(chineseMeasures, r)
}

// nameWords splits an argument's name into lower-case words at anything
// but a letter, where a lower-case letter meets an upper-case one
// ("numItems", "item_count", "Item-Count"), and where a Han character
// meets another letter ("Native支付", "partial退款", read as one word that
// named nothing). Full-width letters are read as the ASCII ones they
// stand for: a model typing in a Chinese input method wrote {"ｑｔｙ":5},
// which read as no count word.
func nameWords(name string) []string {
	var words []string
	var cur []rune
	prevLower, prevHan := false, false
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range name {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII: "ｑ" is "q"
			r -= 0xFEE0
		}
		switch {
		case !unicode.IsLetter(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower, unicode.Is(unicode.Han, r) != prevHan:
			flush()
		}
		cur = append(cur, r)
		prevLower, prevHan = unicode.IsLower(r), unicode.Is(unicode.Han, r)
	}
	flush()
	return words
}

// ignoreExtra logs arguments outside the schema; they are never obeyed.
// The names are the model's words, which a user can steer: the line names
// the first extraNamesLogged, each cut to extraNameMax bytes, and counts
// them all. Named whole, 51 names (one of 3,000 bytes, fifty quoting what
// the user said) made a line of 4,962 bytes.
func (t *Tools) ignoreExtra(ctx context.Context, name, args string, allowed map[string]bool) {
	var extra []string
	count := 0
	gjson.Parse(args).ForEach(func(k, _ gjson.Result) bool {
		if !allowed[k.String()] {
			if count++; len(extra) < extraNamesLogged {
				extra = append(extra, cutName(k.String()))
			}
		}
		return true
	})
	if count > 0 {
		t.log.WarnContext(ctx, "payment tool arguments outside the schema ignored", "tool", name, "fields", strings.Join(extra, ","), "count", count)
	}
}

// extraNamesLogged and extraNameMax bound what ignoreExtra logs of the
// names outside the schema: a model's own are few and short (amount,
// price, openid, notify_url).
const (
	extraNamesLogged = 10
	extraNameMax     = 32
	extraNameDigits  = 4
)

// maskDigitRuns is n with each run of extraNameDigits or more digits
// (ASCII, full-width or Chinese numerals, mixed) replaced by a '#' for
// each; n itself when it has none. A user types a number in whichever
// their keyboard gives: 13800138000, １３８００１３８０００ or
// 一三八〇〇一三八〇〇〇.
func maskDigitRuns(n string) string {
	var b strings.Builder
	run, start, last := 0, 0, 0 // the run's digits and first byte; where the text after the last masked run starts
	mask := func(end int) {
		if run >= extraNameDigits {
			b.WriteString(n[last:start])
			b.WriteString(strings.Repeat("#", run))
			last = end
		}
		run = 0
	}
	for i, r := range n {
		if !isDigitRune(r) {
			mask(i)
			continue
		}
		if run == 0 {
			start = i
		}
		run++
	}
	mask(len(n))
	if last == 0 {
		return n
	}
	b.WriteString(n[last:])
	return b.String()
}

// isDigitRune reports whether r is a digit as a user may type one in a
// number: ASCII, full-width, or a Chinese numeral.
func isDigitRune(r rune) bool {
	return r >= '0' && r <= '9' || r >= '０' && r <= '９' || strings.ContainsRune("〇一二三四五六七八九零", r)
}

// cutName is n with each run of extraNameDigits or more digits masked
// ('#' for each), cut to extraNameMax bytes at a rune boundary. A name
// that quotes the user ("my phone is 13800138000") put the user's phone,
// card or ID number in the log; a model's own names hold no such runs.
func cutName(n string) string {
	n = maskDigitRuns(n)
	if len(n) <= extraNameMax {
		return n
	}
	i := extraNameMax
	for i > 0 && !utf8.RuneStart(n[i]) {
		i--
	}
	return n[:i]
}

func clarify(why string) Outcome {
	return Outcome{
		Result:  resultJSON(map[string]any{"status": "needs_clarification", "error": why, "instruction": "do not guess: ask the user a clarifying question"}),
		Clarify: true,
	}
}

func (t *Tools) createOrder(ctx context.Context, c Caller, args string) Outcome {
	res := gjson.GetMany(args, "sku", "quantity", "pay_method")
	sku := res[0]
	// White space the model wrote around the SKU is not the SKU's, which
	// never holds any (as query_order trims order_no): taken as written,
	// " premium-monthly", or one after a Chinese input method's
	// ideographic space (U+3000) or before a line break, had the user
	// asked which product they meant. Nothing else is folded: another case
	// or a lookalike may be another SKU, or none offered.
	sku.Str = strings.TrimSpace(sku.Str)
	if sku.Type != gjson.String || sku.Str == "" {
		return clarify("sku is missing")
	}
	item, err := t.svc.catalog.Lookup(sku.Str)
	if err != nil || !allowed(c.AllowedSKUs, sku.Str) {
		if qty, ok := askedQuantity(res[1]); ok && qty >= 1 {
			if out, ok := t.handBackUnsold(ctx, c, args, sku.Str, qty, res[1], res[2]); ok {
				return out
			}
		}
		return clarify(t.unknownSKU(sku.Str, t.allowedSKUs(c)))
	}
	qty, whole := askedQuantity(res[1])
	if !whole {
		return clarify("quantity must be a whole number")
	}
	if q := res[1]; !q.Exists() || q.Type == gjson.Null {
		if name := quantityOutside(args); name != "" {
			// "quantity": 1, not "leave it out to buy one": a model that
			// left quantity out beside the same member (a monthly SKU's
			// "trial_days":7) was asked again, every time.
			return clarify(fmt.Sprintf(`the argument %q is not a name this tool takes, and without "quantity" one would be bought, so nothing was done: give how many to buy as "quantity" (a whole number; "quantity": 1 buys one), since without it this is asked again`, echo(name)))
		}
	}
	if qty < 1 || qty > item.MaxQuantity {
		if qty > 1 {
			if out, ok := t.handBackUnsold(ctx, c, args, item.SKU, qty, res[1], res[2]); ok {
				return out
			}
		}
		return clarify(fmt.Sprintf("quantity must be between 1 and %d", item.MaxQuantity))
	}
	// Left out or null (strict mode's null for an optional argument), the
	// purchase's open order keeps its method (KeepPayMethod), and a new
	// order is of the caller's first method (jsapi unless configured):
	// read as that, a model asking again for a purchase whose QR code the
	// user has closed it and opened a jsapi order.
	methods := c.payMethods()
	method, keep := methods[0], true
	switch m := res[2]; {
	case !m.Exists() || m.Type == gjson.Null:
		name, named := methodOutside(args)
		switch {
		case name == "":
		case len(methods) == 1 && named == methods[0]:
			// The one method offered, which the tool has no parameter
			// for: what leaving it out means, so only ignored (logged).
		case len(methods) == 1 && t.handsBack(ctx, c, item.SKU, qty, named):
			// The purchase's open order is of the method named, one no
			// longer offered: handed back as it is, as when left out.
		case len(methods) == 1:
			return clarify(fmt.Sprintf(`the argument %q is not a name this tool takes, so nothing was done: the only pay method offered here is %s, which is used without being named; tell the user`, echo(name), methodsOffered(methods)))
		default:
			return clarify(fmt.Sprintf(`the argument %q is not a name this tool takes, and without "pay_method" it was not read as one, so nothing was done: give %s as "pay_method"`, echo(name), methodsOffered(methods)))
		}
	case m.Str != "jsapi" && m.Str != "native":
		return clarify(fmt.Sprintf(`pay_method must be %s`, methodsOffered(methods)))
	case !slices.Contains(methods, m.Str) && t.handsBack(ctx, c, item.SKU, qty, m.Str):
		// The purchase's open order is of that method, made before it
		// was taken off: a model asking again copies its earlier call's
		// pay_method, and asked about, it told the user no QR code could
		// be had beside their open, payable one. Handed back as it is, as
		// when pay_method is left out (an order held for a manager takes
		// the first method offered: KeepPayMethod).
	case !slices.Contains(methods, m.Str):
		// Native Pay and JSAPI are products the merchant activates apart:
		// one not activated is refused by WeChat Pay (NO_AUTH), the order
		// closed as failed and the operator paged for what only the
		// config could prevent. Models ignore enums: asked, not prepaid.
		return clarify(fmt.Sprintf(`pay_method %q is not offered here, so nothing was done: the pay methods offered are %s; tell the user which they can use`, m.Str, methodsOffered(methods)))
	default:
		method, keep = m.Str, false
	}
	req := CreateRequest{
		Client: c.Client, AppID: c.AppID, User: c.User, Session: c.Session,
		SKU: item.SKU, Quantity: qty, PayMethod: method, KeepPayMethod: keep, PayMethods: methods,
	}
	// The per-minute limit keeps a looping model from hammering WeChat
	// Pay: an ask that only hands back the purchase's order (the turn sent
	// again by a bot's SDK or backend) reaches none, so it neither counts
	// nor is refused. Counted, six resends of one purchase used up the
	// limit for the user's next one; refused past it, its model told the
	// user to wait a minute beside the order's pay button the same answer
	// hands them. Any other ask counts, and is refused past the limit. A
	// repeat whose order expired or was closed before CreateOrder read it
	// again makes a new order, and counts then (CountCall): uncounted,
	// limit 2, a third order went to WeChat Pay within the minute.
	if t.svc.opts.Rules.MaxPaymentCallsPerMinute > 0 {
		if t.svc.RepeatsPurchase(ctx, req) {
			req.CountCall = func(ctx context.Context) error { return t.svc.CheckCall(ctx, c.Client, c.User) }
		} else if err := t.svc.CheckCall(ctx, c.Client, c.User); err != nil {
			if !t.svc.RenewsPurchase(ctx, req) {
				return t.refusedByRule(ctx, t.names.CreateOrder, args, c, err)
			}
			// Its order in its last minute, which a renewal replaces
			// (three WeChat Pay calls): past the limit it is handed back
			// as it stands, still payable for its last seconds, as at the
			// day's order limit; refused, the model told the user to wait
			// a minute beside an order dead by then. A new order made
			// after all (it expired meanwhile) is refused (CountCall).
			req.NoRenew = true
			req.CountCall = func(ctx context.Context) error { return t.svc.CheckCall(ctx, c.Client, c.User) }
		}
	}
	cr, err := t.svc.CreateOrder(ctx, req)
	return t.created(ctx, c, args, item.SKU, qty, cr, err)
}

// askedQuantity is the quantity a create_order's q asks for: a whole
// number (also one below 1, which no item sells: its caller says so), or
// 1 left out or null; ok false for anything else.
func askedQuantity(q gjson.Result) (int, bool) {
	if !q.Exists() || q.Type == gjson.Null {
		return 1, true
	}
	if q.Type != gjson.Number || q.Num != float64(int(q.Num)) {
		return 0, false
	}
	return int(q.Num), true
}

// handBackUnsold answers a create_order of a purchase no longer sold to c
// as asked (its SKU taken out of the catalog or out of c's allowed_skus,
// its quantity above a lowered max_quantity: a config edited since, or
// another replica's mid deploy) with the purchase's order, when it has one
// a repeated ask hands back as it stands (RepeatsPurchase: open, held for
// a manager, or just paid; one in its last minute is not renewed but
// handed back as it stands, payable until its deadline), in the pay method named
// (m) or in its own when none is. The order was made at its amount and
// stays payable, approvable and refundable (README), and the payment state
// lists it as awaiting payment: a clarification that the item "is not
// sold here" or that at most 5 may be bought had the model tell the user
// of no order beside the one they can pay. Nothing is priced or sent to
// WeChat Pay; with no such order, ok is false and the ask is clarified as
// before. A quantity (q left out) or a pay method (m left out) put under a
// name outside the schema ({"qty":11}, {"payment_method":"native"}) asks
// for another purchase than one of one, or in the order's own method: the
// order of one in JSAPI was handed back for it, where a purchase still
// sold is asked which was meant. The pay method so named is the one the
// order must be of; a quantity so named is no hand back.
func (t *Tools) handBackUnsold(ctx context.Context, c Caller, args, sku string, qty int, q, m gjson.Result) (Outcome, bool) {
	req := CreateRequest{Client: c.Client, User: c.User, SKU: sku, Quantity: qty, KeepPayMethod: true}
	if (!q.Exists() || q.Type == gjson.Null) && quantityOutside(args) != "" {
		return Outcome{}, false
	}
	if m.Exists() && m.Type != gjson.Null {
		if m.Type != gjson.String || m.Str == "" {
			return Outcome{}, false
		}
		req.PayMethod, req.KeepPayMethod = m.Str, false
	} else if name, named := methodOutside(args); name != "" {
		req.PayMethod, req.KeepPayMethod = named, false
	}
	cr, ok, err := t.svc.handBack(ctx, req)
	if !ok {
		return Outcome{}, false
	}
	t.log.InfoContext(ctx, "create_order of a purchase no longer sold as asked; its order handed back", "client", c.Client, "sku", sku, "quantity", qty, "order_no", cr.Order.OrderNo, "status", cr.Order.Status)
	return t.created(ctx, c, args, sku, qty, cr, err), true
}

// created is create_order's answer (args) of CreateOrder's cr and err.
func (t *Tools) created(ctx context.Context, c Caller, args, sku string, qty int, cr *CreateResult, err error) Outcome {
	out := Outcome{MoneyMoving: true, Executed: true}
	if err != nil && (cr == nil || cr.Order == nil) {
		if errors.Is(err, ErrDailyLimit) || errors.Is(err, ErrRateLimited) {
			return t.refusedByRule(ctx, t.names.CreateOrder, args, c, err)
		}
		t.log.WarnContext(ctx, "create_order failed", "client", c.Client, "sku", sku, "err", err)
		if cr != nil && cr.Closed != "" {
			// The switch closed the purchase's open order, and no order
			// stands for it now.
			out.Purchase = &Purchase{SKU: sku, Quantity: qty}
		}
		out.Failed = true
		out.Result = resultJSON(map[string]any{"status": "failed", "error": failureText(err)})
		return out
	}
	o := cr.Order
	out.Purchase = &Purchase{SKU: o.SKU, Quantity: o.Quantity, OrderNo: o.OrderNo}
	status := string(o.Status)
	switch {
	case errors.Is(err, ErrPayerPaying):
		// No new payment: the bot must not open the payment sheet again,
		// nor the model speak of a QR code that was never made.
		status = "user_paying"
	case errors.Is(err, ErrInProgress) && o.Status == store.StatusAwaitingPayment:
		// Another request is switching this open order to the other pay
		// method: no payment of either method comes with it, so no
		// order_created action; asked again, the replacement is returned.
		status = "pending"
	case o.Status == store.StatusAwaitingPayment && err == nil:
		// With an error the order is returned as it stood and no payment
		// came of the call (WeChat Pay did not answer the close of a
		// switch of pay method, or the query of an order past its
		// deadline): pending below, with no order_created, which carried
		// neither request_payment nor code_url and was told to the model
		// as a success.
		action := map[string]any{"type": "order_created", "order": OrderView(o)}
		if cr.Payment != nil {
			action["request_payment"] = cr.Payment
		}
		if cr.CodeURL != "" {
			action["code_url"] = cr.CodeURL
		}
		out.Action = resultJSON(action)
	case PaidOrLater(o.Status):
		status = "already_paid"
	case o.Status == store.StatusApprovalRequired:
		out.Action = resultJSON(map[string]any{"type": "approval_required", "order": OrderView(o)})
	case errors.Is(err, ErrPrepayRejected):
		// Refused for good and closed: nothing will come of waiting, so the
		// model must not tell the user the order is on its way.
		status = "failed"
	case err != nil:
		// No answer yet (ErrPaymentUnavailable, ErrInProgress), or the
		// store failed after the order was recorded: the order stands and
		// is checked again.
		status = "pending"
	}
	r := map[string]any{
		"order_no":    o.OrderNo,
		"description": o.Description,
		"amount":      FormatAmount(o.AmountFen, o.Currency),
		"status":      status,
	}
	if status == "failed" {
		r["error"] = failureText(err)
	}
	out.Failed = status == "failed" || status == "pending" && err != nil && !errors.Is(err, ErrInProgress)
	if status == "pending" && errors.Is(err, store.ErrUnavailable) {
		r["message"] = "the order was created, but payments are temporarily unavailable, so it cannot be paid yet; it will be checked again, and asking for it again in a minute returns it"
	}
	if status == "pending" && o.Status == store.StatusCreating && errors.Is(err, ErrPaymentUnavailable) {
		// The prepay (or the query of an order left creating) got no
		// answer: no payment came of the call, and "pending" alone, beside
		// the order's number and amount, reads as an order ready to pay.
		r["message"] = "WeChat Pay has not confirmed this order yet, so it cannot be paid yet and nothing was charged; it will be checked again and offered for payment once WeChat Pay confirms it, unless its time runs out first: tell the user so, and do not tell the user to pay now"
	}
	if status == "pending" && o.Status == store.StatusAwaitingPayment && errors.Is(err, ErrPaymentUnavailable) && !errors.Is(err, store.ErrUnavailable) {
		// The open order as it stood: WeChat Pay did not answer the close
		// of a switch of pay method (no QR code or payment sheet of the
		// other method was made), or the query of an order past its
		// deadline. "pending" alone, beside its number and amount, read as
		// an order ready to pay, with no word of what was not done.
		r["message"] = "WeChat Pay did not answer, so no new payment was started and the order is as it was; nothing was charged by this request: tell the user so, and to ask again in a minute"
	}
	if status == string(store.StatusAwaitingPayment) && err == nil && cr.Existing {
		// The purchase's open order, asked for again (SPEC 4): told as a
		// new one, the model told a user who wanted one more that a
		// second order was made, and they paid one thinking it was two.
		r["message"] = "this is the order already open for the same item and quantity, returned again: no second order was made; if the user meant another one besides it, tell them so"
	}
	if status == "already_paid" && !o.PaidAt.IsZero() {
		// As above: "already_paid" alone had the model tell a user who
		// wanted another that they had it, with no word of which order.
		r["message"] = "no new order was made: the user already paid for the same item and quantity in this order at " + o.PaidAt.UTC().Format(time.RFC3339) + "; if they meant another one besides it, tell them so"
	}
	if status == "user_paying" {
		r["message"] = "the user is paying this order in WeChat right now, so no new payment was started; ask them to finish paying, or, if they gave up, to ask again in a minute"
	}
	if o.Status == store.StatusApprovalRequired {
		// Quoted only when the order is above it: one held under a lower
		// limit, since raised or turned off, still waits for its manager,
		// and "orders above 200.00 CNY" of a 99.98 CNY order had the model
		// tell the user a rule the order does not meet.
		why := "this order needs a manager's approval"
		if t.svc.opts.Rules.needsApproval(o.AmountFen) {
			why = "orders above " + t.approvalLimit() + " need a manager's approval"
		}
		r["message"] = why + "; tell the user the order is waiting for approval and that they will be able to pay as soon as it is approved"
	}
	out.Result = resultJSON(r)
	return out
}

// handsBack reports whether a create_order of c for sku and qty naming
// method, one c is not offered, only hands back the purchase's order of
// that method (open before its deadline, held, or just paid; or past its
// deadline while its payer pays it: handsBackPurchase): made before
// the method was taken off, it is the order asked for again, and no
// WeChat Pay prepay comes of it (RepeatsPurchase). Only then does the
// call go on, as one that leaves pay_method out. Past its deadline under
// a paying user, it was asked about, a clarifying question of a QR code
// the user was paying at that moment, where left out it was user_paying.
func (t *Tools) handsBack(ctx context.Context, c Caller, sku string, qty int, method string) bool {
	req := CreateRequest{Client: c.Client, User: c.User, SKU: sku, Quantity: qty, PayMethod: method}
	return t.svc.handsBackPurchase(ctx, req)
}

func (t *Tools) queryOrder(ctx context.Context, c Caller, args string) Outcome {
	no := gjson.Get(args, "order_no")
	// White space around the number the model wrote (a trailing newline,
	// an ideographic space) is not the number's, which never holds any:
	// taken as written, the user's own order was "not_found".
	no.Str = strings.TrimSpace(no.Str)
	if no.Type != gjson.String || no.Str == "" {
		return clarify("order_no is missing")
	}
	o, err := t.svc.Order(ctx, c.Client, c.User, no.Str)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrNotOwner) {
			return Outcome{Executed: true, Result: resultJSON(map[string]any{"order_no": echo(no.Str), "status": "not_found"})}
		}
		why := failureText(err)
		if errors.Is(err, store.ErrUnavailable) {
			why = "payments are temporarily unavailable; the order's status could not be read"
		}
		return Outcome{Executed: true, Failed: true, Result: resultJSON(map[string]any{"order_no": echo(no.Str), "status": "unknown", "error": why})}
	}
	// Read as the payment state reads it (UnsentRefunds): an order a cut
	// confirmation left reserved sent nothing, and "refunding" had the
	// model tell the user to wait for a refund nobody sent, against the
	// state it had just read. The stored order stays reserved.
	if o.Status == store.StatusRefunding {
		o = t.svc.UnsentRefunds(ctx, []*store.Order{o})[0]
	}
	r := map[string]any{"order_no": o.OrderNo, "status": string(o.Status), "paid_at": nil}
	if !o.PaidAt.IsZero() {
		r["paid_at"] = o.PaidAt.UTC().Format(time.RFC3339)
	}
	return Outcome{Executed: true, Result: resultJSON(r)}
}

// failureText tells the model what went wrong in words it can pass on,
// without internals.
func failureText(err error) string {
	switch {
	case errors.Is(err, ErrOrderUnconfirmed):
		return "payments are temporarily unavailable and the order could not be confirmed: it may have been created; nothing was charged, and asking for it again in a moment returns it if it was"
	case errors.Is(err, store.ErrUnavailable):
		return "payments are temporarily unavailable; no order was created"
	case errors.Is(err, ErrPaymentUnavailable):
		return "WeChat Pay did not answer; the order is pending and will be checked again"
	case errors.Is(err, ErrPrepayRejected):
		return "WeChat Pay refused the order"
	case errors.Is(err, ErrInProgress):
		return "the same order is being created right now"
	case errors.Is(err, ErrRateLimited):
		return "too many payment requests in the last minute; ask the user to wait a minute and try again"
	case errors.Is(err, ErrDailyLimit):
		return "this user has reached the maximum number of orders for today; they can order again tomorrow"
	}
	return "the payment could not be started"
}

func allowed(list []string, sku string) bool {
	if len(list) == 0 {
		return true
	}
	for _, s := range list {
		if s == sku {
			return true
		}
	}
	return false
}

// maxSKUsListed is how many SKUs sold here a clarification of an unknown
// SKU lists; past it, it names how many there are.
const maxSKUsListed = 20

// maxNearSKUs is how many SKUs near an unknown one its clarification
// names, past maxSKUsListed.
const maxNearSKUs = 3

// unknownSKU is the clarification of a create_order whose sku is not one
// of valid (the SKUs sold to the caller). It lists them for a short
// catalog; a long one is in the tool's definition already, and listed
// again (5,000 SKUs: 54,999 bytes) it went to the provider in the turn's
// next round and with the kept exchange on later turns, so only the SKUs
// of valid the model may have meant are named (nearSKU), for it to ask
// the user about: never taken for the one written, another case or
// spelling may be another SKU, or one left out of the caller's
// allowed_skus.
func (t *Tools) unknownSKU(sku string, valid []string) string {
	said := echo(sku)
	if len(valid) <= maxSKUsListed {
		return fmt.Sprintf("sku %q is not sold here; valid skus: %s", said, strings.Join(valid, ", "))
	}
	msg := fmt.Sprintf("sku %q is not sold here: the sku must be one of the %d skus the catalog in this tool's sku description lists, exactly as written there", said, len(valid))
	want := skuKey(sku)
	var near []string
	for _, v := range valid {
		if it, err := t.svc.catalog.Lookup(v); err == nil && want != "" && (skuKey(v) == want || skuKey(it.Name) == want) {
			near = append(near, fmt.Sprintf("%q (%s)", v, it.Name))
			if len(near) == maxNearSKUs {
				break
			}
		}
	}
	if len(near) > 0 {
		msg += "; it may mean " + strings.Join(near, " or ") + ": ask the user which, then write that sku exactly"
	}
	return msg
}

// skuKey is s as a model may miswrite a SKU or an item's name: letters
// lowercased, digits without their leading zeros, nothing else ("TEE_42",
// "tee-00042" and "Tee 042" are all "tee42").
func skuKey(s string) string {
	var b strings.Builder
	zeros := 0 // leading zeros of the run of digits written so far, held back
	digits := false
	for _, r := range strings.ToLower(s) {
		isDigit := r >= '0' && r <= '9'
		if digits && !isDigit && zeros > 0 {
			b.WriteByte('0') // the run was all zeros: "0" for any of them
		}
		switch {
		case isDigit && r == '0' && (!digits || zeros > 0):
			zeros++
		case isDigit:
			zeros = 0
			b.WriteRune(r)
		case unicode.IsLetter(r):
			b.WriteRune(r)
		}
		digits = isDigit
		if !isDigit {
			zeros = 0
		}
	}
	if digits && zeros > 0 {
		b.WriteByte('0')
	}
	return b.String()
}

// maxEcho bounds the model's words (a SKU, an order number, an argument's
// name outside the schema) quoted back in a tool result: whole, a
// 16,000-byte SKU (as much as the arguments hold) came back in a
// clarification of 16,167 bytes, a 16,000-byte order_no in a not_found of
// 16,036, and a 16,000-byte argument name in a clarification of 16,318,
// sent to the provider again in the turn's next round and with the kept
// exchange.
const maxEcho = 64

// echo is s, the model's argument, as a tool result quotes it: cut to
// maxEcho bytes between characters (cutCharacters), with "…" when cut.
func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return cutCharacters(s, maxEcho) + "…"
}

// allowedSKUs are the catalog's SKUs sold to c, in the catalog's order,
// found with c's allow-list as a set: compared pair by pair, 5,000 SKUs
// and an allow-list of as many took 35 ms (0.45 s under the race
// detector) for every call naming a SKU not sold, and the square of that
// as both grow.
func (t *Tools) allowedSKUs(c Caller) []string {
	all := t.svc.catalog.SKUs()
	if len(c.AllowedSKUs) == 0 {
		return all
	}
	set := make(map[string]struct{}, len(c.AllowedSKUs))
	for _, s := range c.AllowedSKUs {
		set[s] = struct{}{}
	}
	var out []string
	for _, s := range all {
		if _, ok := set[s]; ok {
			out = append(out, s)
		}
	}
	return out
}

// OrderView is the order object of SPEC 2.3, the same in actions, in
// GET /v1/paygate/orders and in webhooks.
func OrderView(o *store.Order) map[string]any {
	ts := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	cur := o.Currency
	if cur == "" {
		cur = "CNY"
	}
	return map[string]any{
		"order_no": o.OrderNo, "sku": o.SKU, "description": o.Description, "quantity": o.Quantity,
		"amount_fen": o.AmountFen, "currency": cur, "pay_method": o.PayMethod, "status": string(o.Status),
		"created_at": ts(o.CreatedAt), "expires_at": ts(o.ExpiresAt), "paid_at": ts(o.PaidAt),
		"refunded_fen": o.RefundedFen,
	}
}

func resultJSON(v any) []byte {
	// Not json.Marshal: its HTML escaping wrote an item named "Tea & Cake"
	// as "Tea \u0026 Cake", which the model reads as text (a tool
	// message's content is no HTML) and can copy into its answer as read.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only maps of strings, numbers and nested maps are passed here.
		panic("payments: marshal tool result: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
