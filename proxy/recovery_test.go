package proxy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
)

// TestRecoveryBudget: a turn recovers at most failover.recovery.max_attempts
// cut streams, none once failover.recovery.window has passed since its first
// cut, and none at all with max_attempts -1.
func TestRecoveryBudget(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	w := 30 * time.Second // the default failover.recovery.window
	tests := []struct {
		name        string
		max         int
		window      time.Duration
		at          []time.Duration // when each cut happens, after t0
		want        []bool          // whether each may be recovered
		wantOutcome string          // of the first refusal
	}{
		{"two recoveries then none", 0, 0, []time.Duration{0, time.Second, 2 * time.Second}, []bool{true, true, false}, recoveryBudget},
		{"none after the window", 0, 0, []time.Duration{0, w + time.Millisecond}, []bool{true, false}, recoveryBudget},
		{"at the window's end still", 0, 0, []time.Duration{0, w}, []bool{true, true}, ""},
		{"configured: one", 1, 0, []time.Duration{0, time.Second}, []bool{true, false}, recoveryBudget},
		{"configured: four", 4, 0, []time.Duration{0, 1, 2, 3, 4}, []bool{true, true, true, true, false}, recoveryBudget},
		{"configured window", 0, time.Second, []time.Duration{0, 2 * time.Second}, []bool{true, false}, recoveryBudget},
		{"off", -1, 0, []time.Duration{0}, []bool{false}, recoveryOff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "http://127.0.0.1:1", nil) // 0 in a row: the config default
			if tc.max != 0 {
				cfg.Failover.Recovery.MaxAttempts = tc.max
			}
			if tc.window != 0 {
				cfg.Failover.Recovery.Window = config.Duration(tc.window)
			}
			r := &recoveries{limit: cfg.Failover.Recovery}
			refused := ""
			for i, d := range tc.at {
				why, outcome := r.take(t0.Add(d))
				if got := why == ""; got != tc.want[i] {
					t.Errorf("cut %d at %v: allowed %v (%q); want %v", i, d, got, why, tc.want[i])
				}
				if why != "" && refused == "" {
					refused = outcome
				}
			}
			if refused != tc.wantOutcome {
				t.Errorf("outcome %q; want %q", refused, tc.wantOutcome)
			}
		})
	}
}

// TestUnrecoveredNamesTheFirstCause: the client's error keeps the original
// cut's provider and cause, whatever stopped the recovery.
func TestUnrecoveredNamesTheFirstCause(t *testing.T) {
	first := &failover.StreamError{Provider: "primary", Cause: failover.CauseIdleTimeout, Err: failover.ErrIdleTimeout}
	err := unrecovered(first, "the new answer diverges from what was already sent")
	var se *failover.StreamError
	if !errors.As(err, &se) || se.Cause != failover.CauseIdleTimeout || se.Provider != "primary" {
		t.Fatalf("got %v; want a StreamError from primary with cause %s", err, failover.CauseIdleTimeout)
	}
	if !errors.Is(err, failover.ErrIdleTimeout) {
		t.Errorf("got %v; want it to wrap ErrIdleTimeout", err)
	}
	if !strings.Contains(err.Error(), "diverges") {
		t.Errorf("got %q; want the reason recovery stopped", err.Error())
	}
}

// TestReadSent: what a plain stream's client received, read back from the
// log of sent events.
func TestReadSent(t *testing.T) {
	log := []byte(`{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"hm","reasoning":"hm"}}]}` + "\x00" +
		`{"id":"c1","choices":[{"index":0,"delta":{"content":"Hel\n"}}]}` + "\x00" +
		`{"id":"c1","choices":[{"index":0,"delta":{"content":"lo"}}]}` + "\x00")
	var calls []sentCall
	got := readSent(log, &calls, nil)
	if got.id != "c1" || got.text != "Hel\nlo" || got.reasoning != "hm" || got.unmatchable || len(calls) != 0 {
		t.Errorf("got %+v, calls %v; want id c1, text %q, reasoning hm, no calls", got, calls, "Hel\nlo")
	}
	// A surrogate pair written as \u escapes and split between two deltas
	// is one character, in the text as in the reasoning.
	got = readSent([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"reasoning_content":"R\ud83d","content":"A\ud83d"}}]}`+"\x00"+
		`{"id":"c1","choices":[{"index":0,"delta":{"reasoning_content":"\ude00","content":"\ude00"}}]}`+"\x00"), &calls, nil)
	if got.text != "A😀" || got.reasoning != "R😀" {
		t.Errorf("got text %+q, reasoning %+q; want %+q, %+q", got.text, got.reasoning, "A😀", "R😀")
	}
	// A null or empty reasoning_content beside reasoning: the reasoning is
	// read from the member with text, as Resume matches it.
	got = readSent([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"reasoning_content":null,"reasoning":"hm"}}]}`+"\x00"), &calls, nil)
	if got.reasoning != "hm" {
		t.Errorf("got reasoning %q; want hm", got.reasoning)
	}
	// A call over two attempts: its id and name come once, its argument
	// fragments (a surrogate pair split between them) join.
	got = readSent([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"q\":\"\ud83d"}}]}}]}`+"\x00"), &calls, nil)
	if got.unmatchable {
		t.Errorf("an indexed tool-call delta was reported unmatchable")
	}
	readSent([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\ude00\"}"}}]}}]}`+"\x00"), &calls, nil)
	tcs := toolCalls(calls)
	if len(tcs) != 1 || tcs[0].Index != 1 || tcs[0].ID != "call_a" || tcs[0].Name != "f" || tcs[0].Arguments != `{"q":"😀"}` {
		t.Errorf("got calls %+v; want one call 1 call_a f with the emoji whole", tcs)
	}
	// A call to one of the bot's custom tools: its name and text come in
	// "custom", and it stays one.
	var custom []sentCall
	readSent([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_c","type":"custom","custom":{"name":"run_sql","input":"SELECT"}}]}}]}`+"\x00"+
		`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"custom":{"input":" 1"}}]}}]}`+"\x00"), &custom, nil)
	if tcs := toolCalls(custom); len(tcs) != 1 || tcs[0].Name != "run_sql" || tcs[0].Arguments != "SELECT 1" || !tcs[0].Custom {
		t.Errorf("got calls %+v; want the custom call run_sql with SELECT 1", tcs)
	}
	got = readSent([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{"}}]}}]}`), &calls, nil)
	if !got.unmatchable {
		t.Errorf("a tool-call delta without an index was not reported unmatchable")
	}
	// A refusal is read as text; content given as parts and audio, which
	// no fresh answer can be matched against, are noted (opaque).
	got = readSent([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","refusal":"I can"}}]}`+"\x00"+
		`{"id":"c1","choices":[{"index":0,"delta":{"refusal":"'t \u2014 no."}}]}`+"\x00"), &calls, nil)
	if got.refusal != "I can't — no." || got.opaque {
		t.Errorf("got refusal %q, opaque %v; want %q, not opaque", got.refusal, got.opaque, "I can't — no.")
	}
	for _, ev := range []string{
		`{"id":"c1","choices":[{"index":0,"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"hm"}]}]}}]}`,
		`{"id":"c1","choices":[{"index":0,"delta":{"content":null,"audio":{"id":"audio_1","transcript":"Hi"}}}]}`,
	} {
		if got = readSent([]byte(ev+"\x00"), &calls, nil); !got.opaque {
			t.Errorf("%s was not reported opaque", ev)
		}
	}
	if got = readSent([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"content":[],"audio":null}}]}`+"\x00"), &calls, nil); got.opaque {
		t.Errorf("empty content parts and a null audio were reported opaque")
	}
}

// TestSentLogLargeEvent: an event over largeEvent is logged with its
// content parts, audio and pictures as a stand-in, and read back as it
// would be whole: the same text, calls and opaque delta (a tool call
// without an index beside a picture is still a partial call). Its other
// bytes are logged as they are, a long text's
// too. A picture logged whole was held once more for the stream's life.
func TestSentLogLargeEvent(t *testing.T) {
	const ev = `{"id":"c1","choices":[{"index":0,"delta":%s}]}`
	pic := strings.Repeat("A", largeEvent)
	image := `[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + pic + `"}}]`
	for _, tc := range []struct {
		name, delta string
		whole       bool // logged as it came
	}{
		{"image and text", `{"role":"assistant","content":"Here it is","images":` + image + `}`, false},
		{"audio", `{"content":null,"audio":{"id":"audio_1","data":"` + pic + `","transcript":"Hi"}}`, false},
		{"content parts", `{"content":[{"type":"thinking","thinking":[{"type":"text","text":"` + pic + `"}]}]}`, false},
		{"image beside a call without an index", `{"images":` + image + `,"tool_calls":[{"function":{"arguments":"{"}}]}`, false},
		{"image beside an indexed call", `{"images":` + image + `,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}`, false},
		{"long text", `{"content":"` + pic + `","images":[]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := fmt.Sprintf(ev, tc.delta)
			l := &sentLog{}
			l.add([]byte(data))
			l.add([]byte(fmt.Sprintf(ev, `{"content":" more"}`)))
			var calls, wantCalls []sentCall
			got := readSent(l.b, &calls, nil)
			want := readSent([]byte(data+"\x00"+fmt.Sprintf(ev, `{"content":" more"}`)+"\x00"), &wantCalls, nil)
			if got != want || !reflect.DeepEqual(calls, wantCalls) {
				t.Errorf("read back %+v, calls %+v; want %+v, calls %+v", got, calls, want, wantCalls)
			}
			if whole := len(l.b) > len(data); whole != tc.whole {
				t.Errorf("logged %d bytes of a %d-byte event and a small one; want it logged whole: %v", len(l.b), len(data), tc.whole)
			}
		})
	}
}
