package failover

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/jsonscan"
)

// scanStringByByte is scanString as it was before it skipped eight bytes
// at a time: a switch per byte. TestScanStringMatches and FuzzScanString
// hold scanString to it.
func scanStringByByte(data []byte, i int, m *eventMarks) (int, bool) {
	for ; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '"':
			if i >= 4 && string(data[i-4:i]) == "rror" {
				*m |= markErrorTail
			} else if n := len(keyResourceFinish) - 1; i >= n && data[i-1] == 'e' && string(data[i-n:i]) == string(keyResourceFinish[:n]) {
				*m |= markResourceFinish
			}
			return i + 1, true
		case c < ' ':
			return i, false
		case c == '\\':
			*m |= markEscape
			i++
			if i == len(data) {
				return i, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					i++
					if i >= len(data) || !jsonscan.IsHex(data[i]) {
						return i, false
					}
				}
			default:
				return i, false
			}
		}
	}
	return i, false
}

// checkScanString holds scanString to scanStringByByte from every start
// in data, so that each string of it is met at each distance from the
// end of data (the run of eight bytes and the byte-by-byte tail), with
// no marks and with each mark set before it.
func checkScanString(t *testing.T, data []byte) {
	t.Helper()
	for i := 0; i <= len(data); i++ {
		for _, before := range []eventMarks{0, markErrorTail, markErrorEscape, markResourceFinish, markFinish, markEscape} {
			gm, wm := before, before
			gi, gok := scanString(data, i, &gm)
			wi, wok := scanStringByByte(data, i, &wm)
			if gi != wi || gok != wok || gm != wm {
				t.Fatalf("scanString(%q, %d) = %d, %v, marks %b; byte by byte %d, %v, marks %b",
					data, i, gi, gok, gm, wi, wok, wm)
			}
		}
	}
}

// scanStringBytes are the bytes a string's run turns on: the stops ('"',
// '\\', each byte below ' '), their neighbours, and bytes whose low seven
// bits are a stop's (the high bit a word-at-a-time test must not miss).
const scanStringBytes = "\"\\\x00\x01\x1f !#[]~\x7f\x80\x9f\xa0\xa1\xa2\xdc\xdd\xff"

// scanStringCases are strings of escapes of each kind and each mistake in
// one, \u sequences, control bytes, bytes that are not UTF-8, and the
// marks' needles, whole and cut.
var scanStringCases = []string{
	`abc"`, `"`, ``, `a`, `abcdefg"`, `abcdefgh"`, `abcdefghi"`, `abcdefghijklmnopq"x`,
	`\"\\\/\b\f\n\r\t"`, `\u0041\u00e9\uD83D\uDE00\uabcd\uABCD"`, `\u004"`, `\u00G1"`, `\u`, `\u0`, `\u00`, `\u000`,
	`\u0000"`, `\x"`, `\'"`, `\U0041"`, `\`, `\\`, `\\"`, `\\\"`, `abcdefg\`, `abcdefgh\"x"`, `abcdefg\u12`,
	"a\x00\"", "\\n\x01\"", "\\\"abc\x1f\"", "abcdefgh\x1f\"", "abcdefghijklmn\x7f\"", "\t\"", "abcdefghi\n\"", "\xff\xfe\"", "\xc0\xaf\"",
	"\xed\xa0\x80\"", "\xe2\x82\"", "日本語のテキストです\"", "\xa2\xdc\xa0\x9f\x80\"", "\x80\x80\x80\x80\x80\x80\x80\x80\x22",
	`error"`, `rror"`, `Error"`, `rror\"`, `err\u006fr"`, `rror`, `rror"rror"`, `xxxxxxxxrror"`,
	`insufficient_system_resource"`, `xinsufficient_system_resource"`, `insufficient_system_resourc"`,
	`insufficient_system_resource\"`, `said \"insufficient_system_resource"`,
	strings.Repeat("tok ", 40) + `"`, strings.Repeat(`\n`, 20) + `"`, strings.Repeat("\xff", 17) + "\x01",
}

// TestScanStringMatches holds scanString to the byte-by-byte walk on every
// case of the event, answer and string scans, and on runs of ordinary
// bytes of each length up to three words, after nothing or an escape,
// with each byte scanStringBytes names at each place, followed by each
// tail.
func TestScanStringMatches(t *testing.T) {
	for _, cases := range [][]string{scanStringCases, scanEventCases, scanEventJSONCases, scanAnswerCases} {
		for _, s := range cases {
			checkScanString(t, []byte(s))
		}
	}
	for n := 0; n <= 24; n++ {
		for at := 0; at < n; at++ {
			for j := 0; j < len(scanStringBytes); j++ {
				for _, tail := range []string{"", `"`, `rror"`, `\u0041"`, `x"}]}`} {
					for _, head := range []string{"", `\n`, `\u0041`} {
						b := []byte(head + strings.Repeat("a", n) + tail)
						b[len(head)+at] = scanStringBytes[j]
						checkScanString(t, b)
					}
				}
			}
		}
	}
}

func FuzzScanString(f *testing.F) {
	for _, cases := range [][]string{scanStringCases, scanEventCases, scanEventJSONCases, scanAnswerCases} {
		for _, s := range cases {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkScanString(t, data) })
}

// BenchmarkScanString is scanString on the strings of a content chunk
// (short keys and values), a tool call's chunk, a long content string and a string of escaped
// JSON (a tool call's arguments), against the byte-by-byte walk.
func BenchmarkScanString(b *testing.B) {
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"chunk", []byte(scanEventCases[0])},
		{"call", []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"sku\":\"a-1\",\"qty\":"}}]},"logprobs":null,"finish_reason":null}]}`)},
		{"long", []byte(`"` + strings.Repeat("Hello there, how may I help? ", 20) + `"`)},
		{"escaped", []byte(`"` + strings.Repeat(`{\"sku\":\"a\"} `, 20) + `"`)},
	} {
		b.Run("words/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			var m eventMarks
			for b.Loop() {
				for i := 0; i < len(c.data); i++ {
					if c.data[i] == '"' {
						i, _ = scanString(c.data, i+1, &m)
						i--
					}
				}
			}
		})
		b.Run("bytes/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			var m eventMarks
			for b.Loop() {
				for i := 0; i < len(c.data); i++ {
					if c.data[i] == '"' {
						i, _ = scanStringByByte(c.data, i+1, &m)
						i--
					}
				}
			}
		})
	}
}
