package interceptors

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Fuzz targets, each runnable bounded in CI:
//
//	go test -run '^$' -fuzz '^FuzzCaptureChunking$' -fuzztime 10s ./interceptors
//	go test -run '^$' -fuzz '^FuzzCaptureArbitraryChunks$' -fuzztime 10s ./interceptors

// FuzzCaptureChunking builds a provider stream around a text and two tool
// calls (one payment, one the client's), cuts the text and the arguments at
// arbitrary points (inside multi-byte characters, between the two halves of
// a UTF-16 surrogate pair, inside escapes of the arguments' own JSON), and
// feeds it through the SSE reader in arbitrary transport pieces. Whatever
// the cutting, the reassembled text and arguments equal the originals, the
// payment call never reaches the client and the client's call arrives as it
// was sent.
func FuzzCaptureChunking(f *testing.F) {
	for _, seed := range fixtureSeeds(f) {
		f.Add(seed[0], seed[1], seed[2], []byte{3, 1, 4, 1, 5, 9, 2, 6}, byte(0))
	}
	f.Add("好的，这就为您下单 😊", `{"sku":"premium-monthly","note":"送给妈妈😀 caf\u00e9"}`, `{"city":"杭州"}`, []byte{1, 2, 1, 2}, byte(1))
	f.Add("a\"b\\c\n\x01\u2028", `{"q":"\\\"\u0000"}`, "", []byte{0}, byte(0xff))
	f.Add("x\xe4\xb8", "\xad\xff", "{}", []byte{5}, byte(0x12))
	// Every flavour, payment first or second, raw or escaped.
	for style := byte(0); style < 16; style++ {
		f.Add("价格 49.99 元 😀", `{"sku":"premium-monthly","quantity":2}`, `{"city":"上海 \"浦东\""}`, []byte{1, 2, 3}, style)
	}
	f.Fuzz(func(t *testing.T, text, payArgs, clientArgs string, cuts []byte, style byte) {
		s := buildStream(text, payArgs, clientArgs, cuts, style)
		c := NewCapture(isPaymentName)
		c.PaymentNames(paymentNames...) // as in a turn: names that may grow are held
		outs := replay(t, c, &pieceReader{b: s.sse, cuts: cuts})
		res := c.EndRound()

		if res.Content != text {
			t.Errorf("content = %q; want %q", res.Content, text)
		}
		if len(res.PaymentCalls) != 1 || res.PaymentCalls[0].Arguments != payArgs ||
			res.PaymentCalls[0].ID != "call_pay" || res.PaymentCalls[0].Name != "create_order" {
			t.Fatalf("payment calls = %+v; want one create_order with %q", res.PaymentCalls, payArgs)
		}
		if len(res.ClientCalls) != 1 || res.ClientCalls[0].Arguments != clientArgs ||
			res.ClientCalls[0].ID != "call_client" || res.ClientCalls[0].Index != 0 {
			t.Fatalf("client calls = %+v; want get_weather at 0 with %q", res.ClientCalls, clientArgs)
		}
		if res.FinishReason != "tool_calls" || res.Usage == nil || res.Usage.TotalTokens != 3 {
			t.Errorf("finish, usage = %q, %+v", res.FinishReason, res.Usage)
		}
		v := viewOf(t, outs)
		if v.text != s.clientText {
			t.Errorf("client text = %q; want %q", v.text, s.clientText)
		}
		call := v.calls[0]
		if len(v.calls) != 1 || call == nil || call.Arguments != s.clientSees || call.Name != "get_weather" || call.ID != "call_client" {
			t.Errorf("client calls seen = %+v; want get_weather with %q", v.calls, s.clientSees)
		}
		if len(v.finishes) != 0 {
			t.Errorf("finish reasons reached the client: %q", v.finishes)
		}
		for _, o := range outs {
			if bytes.Contains(o, []byte("call_pay")) || bytes.Contains(o, []byte("create_order")) {
				t.Fatalf("the payment call reached the client: %s", o)
			}
		}
	})
}

// FuzzCaptureArbitraryChunks feeds arbitrary chunk data, one event per
// line: Process must never panic; for valid JSON it returns valid JSON;
// whatever it returns that a client could parse holds no payment tool call.
// Invalid JSON, which failover skips before it gets here, is refused by the
// slow path and may pass the text path, which reads without parsing. That
// path refuses every chunk with a tool call, so what it passes holds none;
// and it may come out valid, when the garbage was inside what a later
// round's edits replace (the id, the role).
func FuzzCaptureArbitraryChunks(f *testing.F) {
	// Seeds are windows of a few events of every fixture: small inputs keep
	// the engine's minimisation short enough for a bounded run.
	for _, name := range fixtureNames(f) {
		var events [][]byte
		for _, ev := range bytes.Split(readFixture(f, name), []byte("\n\n")) {
			if ev = bytes.TrimPrefix(bytes.TrimSpace(ev), []byte("data: ")); len(ev) > 0 {
				events = append(events, ev)
			}
		}
		for i := 0; i < len(events); i += 3 {
			f.Add(bytes.Join(events[i:min(i+5, len(events))], []byte("\n")))
		}
	}
	// A name in pieces under one index: the bot's "query" (no arguments),
	// then "_order", which would make it a payment tool's.
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"query","arguments":""}}]}}]}` + "\n" +
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"_order"}}]}}]}` + "\n" +
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := NewCapture(isPaymentName)
		// The payment tools' names, so that names in pieces are held and
		// joined as in a turn (PaymentNames).
		c.PaymentNames(paymentNames...)
		// A fallback id and a turn's created, so that chunks without an
		// id and later rounds' timestamps are rewritten too.
		c.StartRound(0, "chatcmpl-paygate-f", 0)
		// The name each call the client got reads as, its pieces joined
		// by choice and index as an SDK joins them: never a payment
		// tool's, whole or in pieces.
		joined := map[[2]int64]string{}
		for i, line := range bytes.Split(in, []byte("\n")) {
			line = bytes.TrimPrefix(line, []byte("data: "))
			if i == 2 {
				c.StartRound(1, "turn-1", 1700000000)
			}
			out, err := c.Process(line)
			if err != nil || out == nil {
				continue
			}
			switch inOK, outOK := gjson.ValidBytes(line), gjson.ValidBytes(out); {
			case inOK && !outOK:
				t.Fatalf("valid chunk %s became invalid %s", line, out)
			case !inOK && outOK && hasToolCalls(out):
				t.Fatalf("invalid chunk %q came out valid with tool calls: %q", line, out)
			case !outOK:
				continue
			}
			gjson.ParseBytes(out).Get("choices").ForEach(func(_, ch gjson.Result) bool {
				ch.Get("delta.tool_calls").ForEach(func(_, tc gjson.Result) bool {
					if isPaymentName(tc.Get("function.name").String()) {
						t.Fatalf("payment call returned: %s", out)
					}
					k := [2]int64{ch.Get("index").Int(), tc.Get("index").Int()}
					joined[k] += tc.Get("function.name").String()
					if isPaymentName(joined[k]) {
						t.Fatalf("a call the client got reads %q, a payment tool's name, with %s", joined[k], out)
					}
					return true
				})
				return true
			})
		}
		c.EndRound()
	})
}

func fixtureNames(tb testing.TB) []string {
	m, err := filepath.Glob(filepath.Join("testdata", "*.sse"))
	if err != nil || len(m) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// fixtureSeeds replays every fixture and returns its text and the arguments
// of its first payment and client calls.
func fixtureSeeds(tb testing.TB) [][3]string {
	var seeds [][3]string
	for _, name := range fixtureNames(tb) {
		c := NewCapture(isPaymentName)
		replay(tb, c, bytes.NewReader(readFixture(tb, name)))
		r := c.EndRound()
		seed := [3]string{r.Content, "", ""}
		if len(r.PaymentCalls) > 0 {
			seed[1] = r.PaymentCalls[0].Arguments
		}
		if len(r.ClientCalls) > 0 {
			seed[2] = r.ClientCalls[0].Arguments
		}
		seeds = append(seeds, seed)
	}
	return seeds
}

type builtStream struct {
	sse        []byte
	clientText string // the text as a client decoding chunk by chunk sees it
	clientSees string // the client call's arguments, likewise
}

// buildStream renders an OpenAI-style stream. style's bits pick the
// provider flavour (OpenAI, Qwen-like repeated ids, Gemini-like no index),
// whether the payment call comes first, and per fragment whether non-ASCII
// is sent raw or as \u escapes.
func buildStream(text, payArgs, clientArgs string, cuts []byte, style byte) builtStream {
	var b builtStream
	var out bytes.Buffer
	ci := 0
	next := func() int { // the next fragment length
		if len(cuts) == 0 {
			return 3
		}
		n := int(cuts[ci%len(cuts)]%7) + 1
		ci++
		return n
	}
	chunk := func(delta string) {
		out.WriteString(`data: {"id":"chatcmpl-fz","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`)
		out.WriteString(delta)
		out.WriteString(`,"logprobs":null,"finish_reason":null}]}` + "\n\n")
	}
	ascii := style&0x08 != 0
	chunk(`{"role":"assistant","content":""}`)
	for _, frag := range fragments(text, next, ascii) {
		chunk(`{"content":"` + frag + `"}`)
		b.clientText += gjson.Parse(`"` + frag + `"`).String()
	}
	flavour := int(style&0x03) % 3
	payFirst := style&0x04 != 0
	type call struct {
		idx      int
		id, name string
		frags    []string
	}
	pay := call{id: "call_pay", name: "create_order", frags: fragments(payArgs, next, ascii)}
	cli := call{id: "call_client", name: "get_weather", frags: fragments(clientArgs, next, ascii)}
	if payFirst {
		pay.idx, cli.idx = 0, 1
	} else {
		pay.idx, cli.idx = 1, 0
	}
	for _, fr := range cli.frags {
		b.clientSees += gjson.Parse(`"` + fr + `"`).String()
	}
	entry := func(c call, i int) string {
		frag := ""
		if i < len(c.frags) {
			frag = c.frags[i]
		}
		idx := strconv.Itoa(c.idx)
		switch {
		case flavour == 1: // Qwen: id, type and name in every delta, empty after the first
			id, name := "", ""
			if i == 0 {
				id, name = c.id, c.name
			}
			return `{"index":` + idx + `,"id":"` + id + `","type":"function","function":{"name":"` + name + `","arguments":"` + frag + `"}}`
		case flavour == 2 && i == 0: // Gemini: no index
			return `{"id":"` + c.id + `","type":"function","function":{"name":"` + c.name + `","arguments":"` + frag + `"}}`
		case flavour == 2:
			return `{"function":{"arguments":"` + frag + `"}}`
		case i == 0:
			return `{"index":` + idx + `,"id":"` + c.id + `","type":"function","function":{"name":"` + c.name + `","arguments":"` + frag + `"}}`
		}
		return `{"index":` + idx + `,"function":{"arguments":"` + frag + `"}}`
	}
	first, second := pay, cli
	if !payFirst {
		first, second = cli, pay
	}
	n1, n2 := max(len(first.frags), 1), max(len(second.frags), 1)
	if flavour == 2 { // without an index, calls cannot interleave
		for i := 0; i < n1; i++ {
			chunk(`{"tool_calls":[` + entry(first, i) + `]}`)
		}
		for i := 0; i < n2; i++ {
			chunk(`{"tool_calls":[` + entry(second, i) + `]}`)
		}
	} else { // interleaved, sometimes two entries in one chunk
		i, j := 0, 0
		for i < n1 || j < n2 {
			switch {
			case i < n1 && j < n2 && next()%3 == 0:
				chunk(`{"tool_calls":[` + entry(first, i) + `,` + entry(second, j) + `]}`)
				i, j = i+1, j+1
			case i < n1 && (j >= n2 || next()%2 == 0):
				chunk(`{"tool_calls":[` + entry(first, i) + `]}`)
				i++
			default:
				chunk(`{"tool_calls":[` + entry(second, j) + `]}`)
				j++
			}
		}
	}
	out.WriteString(`data: {"id":"chatcmpl-fz","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}` + "\n\n")
	out.WriteString(`data: {"id":"chatcmpl-fz","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}` + "\n\n")
	out.WriteString("data: [DONE]\n\n")
	b.sse = out.Bytes()
	return b
}

// fragments cuts s and encodes each piece as the inside of a JSON string.
// Raw pieces are cut at any byte (a multi-byte character may be split);
// ASCII pieces (valid UTF-8 only) are cut between UTF-16 code units, so a
// surrogate pair may be split, and escape everything outside ASCII.
func fragments(s string, next func() int, ascii bool) []string {
	var frags []string
	if ascii && utf8.ValidString(s) {
		units := utf16.Encode([]rune(s))
		for len(units) > 0 {
			n := min(next(), len(units))
			var b strings.Builder
			for _, u := range units[:n] {
				if u >= 0x20 && u < 0x7f && u != '"' && u != '\\' {
					b.WriteByte(byte(u))
					continue
				}
				b.WriteString(`\u`)
				b.WriteString(strconv.FormatUint(uint64(u)|0x10000, 16)[1:])
			}
			frags = append(frags, b.String())
			units = units[n:]
		}
		return frags
	}
	for len(s) > 0 {
		n := min(next(), len(s))
		frags = append(frags, rawJSON(s[:n]))
		s = s[n:]
	}
	return frags
}

// rawJSON escapes only what JSON requires, leaving other bytes (even half of
// a UTF-8 sequence) as they are, like a streaming encoder that flushes a
// token's bytes.
func rawJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pieceReader returns b in reads of sizes taken from cuts, as TCP segments
// cut an event stream anywhere.
type pieceReader struct {
	b    []byte
	cuts []byte
	i    int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := 7
	if len(r.cuts) > 0 {
		n = int(r.cuts[r.i%len(r.cuts)])*3 + 1
		r.i++
	}
	n = min(n, len(p), len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// hasToolCalls reports a choice whose delta has tool_calls.
func hasToolCalls(chunk []byte) bool {
	found := false
	gjson.GetBytes(chunk, "choices").ForEach(func(_, ch gjson.Result) bool {
		found = ch.Get("delta.tool_calls").Exists()
		return !found
	})
	return found
}
