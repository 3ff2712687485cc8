package failover

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/jsonscan"
	"github.com/paygate/paygate/internal/jsonstr"
)

// scanEventCases are events and near-events that reach the per-event path:
// chunks, error events of each kind, finish reasons in and out of keys,
// and text that gjson.Valid refuses at each of its checks.
var scanEventCases = []string{
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":"tok "},"logprobs":null,"finish_reason":null}]}`,
	`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
	`{"choices":[{"index":0,"delta":{},"finish_reason" : "stop"}]}`,
	`{"choices":[{"index":0,"delta":{},"finish_reason":""}]}`,
	`{"choices":[{"index":0,"delta":{},"finish_reason":	"length"}]}`,
	`{"choices":[{"delta":{"content":"\"finish_reason\":\"stop\""}}]}`,
	// An escape of a byte of "error" (markErrorEscape), of another
	// byte, of a Chinese character whose low byte is one of its, and an
	// escaped backslash before "u006f".
	`{"type":"err\u006fr","message":"x"}`,
	`{"choices":[{"index":0,"delta":{"content":"a\u0041\u4e65\\u006f"}}]}`,
	`{"choices":[{"delta":{"x\"finish_reason":"stop"}}]}`,
	`{"xfinish_reason":"stop"}`,
	`{"finish_reason":1}`,
	`{"finish_reason":["stop"]}`,
	`{"error":{"message":"boom","type":"server_error","code":500}}`,
	`{"object":"error","message":"m","type":"BadRequestError","code":400}`,
	`{"type":"error","message":"m"}`,
	`{"choices":[{"delta":{},"finish_reason":"error"}]}`,
	`{"choices":[{"delta":{},"finish_reason":"network_error"}]}`,
	`{"choices":[{"delta":{},"finish_reason":"insufficient_system_resource"}]}`,
	`{"choices":[{"delta":{"content":"said \"insufficient_system_resource"}}]}`,
	`{"choices":[{"delta":{"content":"insufficient_system_resource"}}]}`,
	`{"choices":[{"delta":{"content":"xinsufficient_system_resource"}}]}`,
	`{"choices":[{"delta":{"content":"\rror"}}]}`,
	`{"ror":"ror"}`,
	`{"rror":1}`,
	`{"e":"\u0041rror"}`,
	`{"error":null,"choices":[]}`,
	`{"error":{},"id":"x","choices":[]}`,
	` {"a":1} `, "\t[1,2.5e10,-0,true,false,null]\r\n",
	"{\"id\":\"c\",\n\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", "{\"a\":\r1}", "{\"a\" \n:1}", "{\"a\":1\r\n}",
	"[1,\n2]", "[1\r,2]", "[\n]", "{\n}", "\n{}", "{}\r", "[\"x\",\n{\"b\":\n\"y\"\r}\n]",
	`"rror"`, `"insufficient_system_resource"`, `1`, `-`, `-a`, `01`, `1.`, `1.x`, `1e`, `1e+`, `1E-5`, `0.5e+3`,
	``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{,}`, `[`, `[1,]`, `[,1]`, `[1 2]`, `{"a":1}x`,
	`{"a":"b`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\xff\x7f\"}", `{"a":"\`,
	`tru`, `true`, `nul`, `fals`, `falsey`, `[true,nul]`, `{"a":[{"b":[]}],"c":{}}`, `[DONE]`, `data`, `{'a':1}`,
	strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting),
	strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
	strings.Repeat(`{"a":`, maxNesting) + "1" + strings.Repeat("}", maxNesting),
	strings.Repeat(`{"a":`, maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1),
}

// checkScanEvent holds scanEvent to what it replaces on the per-event
// path: validJSON, and on valid data errorObject's two bytes.Contains and
// hasFinish.
func checkScanEvent(t *testing.T, data []byte) {
	t.Helper()
	m, ok := scanEvent(data)
	if want := validJSON(unsafeString(data)); ok != want {
		t.Fatalf("scanEvent(%q) valid = %v, validJSON %v", data, ok, want)
	}
	if !ok {
		return
	}
	for _, c := range []struct {
		name string
		mark eventMarks
		want bool
	}{
		{"error tail", markErrorTail, bytes.Contains(data, keyErrorTail)},
		{"error escape", markErrorEscape, jsonscan.ErrorKey.Escapes(data)},
		{"resource finish", markResourceFinish, bytes.Contains(data, keyResourceFinish)},
		{"finish", markFinish, hasFinish(data)},
		{"line break", markLineBreak, bytes.ContainsAny(data, "\r\n")},
	} {
		if got := m&c.mark != 0; got != c.want {
			t.Errorf("scanEvent(%q) %s = %v, want %v", data, c.name, got, c.want)
		}
	}
}

func TestScanEventMatches(t *testing.T) {
	for _, s := range scanEventCases {
		checkScanEvent(t, []byte(s))
	}
}

// TestScanEventMutations checks every case with each byte cut, and each
// replaced by each byte that JSON's grammar turns on, so that each of the
// validator's refusals and each mark's edge is met without a fuzzer.
func TestScanEventMutations(t *testing.T) {
	const turns = "{}[]\":,\\ \t\nu0-.eE+tfnr\x01\xff"
	for _, s := range scanEventCases {
		if len(s) > 400 {
			continue
		}
		b := []byte(s)
		for i := range b {
			checkScanEvent(t, append(append([]byte(nil), b[:i]...), b[i+1:]...))
			checkScanEvent(t, b[:i])
			for j := 0; j < len(turns); j++ {
				m := append([]byte(nil), b...)
				m[i] = turns[j]
				checkScanEvent(t, m)
			}
		}
	}
}

func FuzzScanEvent(f *testing.F) {
	for _, s := range scanEventCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkScanEvent(t, data) })
}

// BenchmarkEventChecks is the per-event checks of a content chunk: one
// scanEvent pass, against the scans it replaced (validJSON, errorObject's
// bytes.Contains, hasFinish).
func BenchmarkEventChecks(b *testing.B) {
	data := []byte(scanEventCases[0])
	b.Run("scanEvent", func(b *testing.B) {
		for b.Loop() {
			m, ok := scanEvent(data)
			if !ok || m != 0 {
				b.Fatal(m, ok)
			}
		}
	})
	b.Run("separate", func(b *testing.B) {
		for b.Loop() {
			if !validJSON(unsafeString(data)) || errorObject(data) != nil || hasFinish(data) {
				b.Fatal()
			}
		}
	})
}

// scanEventJSONCases are texts where JSON's grammar is easy to get wrong:
// numbers, escapes (surrogates too), bytes that are not UTF-8, control
// characters, whitespace that JSON does not count as such, nesting at and
// past maxNesting of each kind, and garbage after a value.
var scanEventJSONCases = []string{
	`-0`, `-0.0`, `0`, `1e5`, `1E5`, `1e+5`, `1e-5`, `-1.5e-300`, `1e999999999999`, `-1e-999999999999`,
	`01`, `-01`, `00`, `0x1`, `1.`, `.5`, `+1`, `1.e5`, `1e`, `1e+`, `1ee5`, `--1`, `-`, `1.5.5`, `NaN`, `Infinity`,
	`"\ud800"`, `"\udc00\ud800"`, `"\ud83d\ude00"`, `"\u00"`, `"\u00zz"`, `"\U0041"`, `"\'"`, `"\a"`, `"\0"`,
	"\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xe2\x82\"", "\"\xf4\x90\x80\x80\"", "\"日本\"",
	"\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\t\"", "\"\n\"", "{\"a\x01\":1}",
	"\v1", "\f1", "1\v", "\xef\xbb\xbf{}", "\u00a0{}", "{}\u00a0", "{\u2028}", " \t\r\n1 \t\r\n", "\x00",
	`{} {}`, `[1]]`, `{}}`, `1 2`, `"a""b"`, `{"a":1}` + "\x00", `[1],`, `nulll`, `truex`, `{"a":1,"a":2}`,
	strings.Repeat("[", maxNesting-1) + `{"a":[]}` + strings.Repeat("]", maxNesting-1),
	strings.Repeat("[", maxNesting-1) + `{"a":[1]}` + strings.Repeat("]", maxNesting-1),
	strings.Repeat("[", maxNesting) + `"[[[[["` + strings.Repeat("]", maxNesting),
	`["` + strings.Repeat("[", maxNesting+1) + `"]`,
	strings.Repeat("[", maxNesting+1),
	strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + "]",
}

// checkScanEventJSON holds scanEvent's validation to encoding/json's, with
// the nesting limit JSON leaves to the reader (maxNesting), besides the
// gjson validation and marks checkScanEvent holds it to.
func checkScanEventJSON(t *testing.T, data []byte) {
	t.Helper()
	checkScanEvent(t, data)
	_, ok := scanEvent(data)
	if want := json.Valid(data) && !jsonstr.NestedOver(string(data), maxNesting); ok != want {
		t.Fatalf("scanEvent(%q) valid = %v, encoding/json %v", data, ok, want)
	}
}

func TestScanEventJSON(t *testing.T) {
	for _, s := range append(append([]string(nil), scanEventCases...), scanEventJSONCases...) {
		checkScanEventJSON(t, []byte(s))
	}
}

func FuzzScanEventJSON(f *testing.F) {
	for _, s := range append(append([]string(nil), scanEventCases...), scanEventJSONCases...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkScanEventJSON(t, data) })
}
