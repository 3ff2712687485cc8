package failover

import (
	"bytes"
	"strings"
	"testing"
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
		{"resource finish", markResourceFinish, bytes.Contains(data, keyResourceFinish)},
		{"finish", markFinish, hasFinish(data)},
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
