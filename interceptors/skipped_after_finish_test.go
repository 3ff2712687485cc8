package interceptors

import "testing"

// TestCallPieceSkippedAfterTheFinish: a call whose deltas go on after the
// round's finish chunk (relays that send the finish early) is Damaged
// when an event between them was skipped: by the relay's reader
// (SkippedAfterFinish) or by Process itself (a chunk it cannot read). The
// later piece is taken on the slow path and on the call path alike. An
// event skipped after the finish with no call delta after it takes
// nothing from the round.
func TestCallPieceSkippedAfterTheFinish(t *testing.T) {
	const c = `{"id":"g","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	named := c + `{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"a\""}}]},"finish_reason":null}]}`
	fin := c + `{},"finish_reason":"tool_calls"}]}`
	piece := func(p string) string {
		return c + `{"tool_calls":[{"index":0,"function":{"arguments":"` + p + `"}}]},"finish_reason":null}]}`
	}
	for _, tc := range []struct {
		name     string
		slow     bool
		skip     func(c *Capture) // the skip, between the finish's pieces
		after    []string         // the chunks after the skip
		wantLost bool
	}{
		{"reader's skip, call path", false, (*Capture).SkippedAfterFinish, []string{piece(`}`)}, true},
		{"reader's skip, slow path", true, (*Capture).SkippedAfterFinish, []string{piece(`}`)}, true},
		{"unreadable chunk", false, func(c *Capture) { _, _ = c.Process([]byte(`[1]`)) }, []string{piece(`}`)}, true},
		{"reader's skip, no call after", false, (*Capture).SkippedAfterFinish, []string{`{"id":"g","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := NewCapture(isPaymentName)
			cp.slowCalls = tc.slow
			// The second piece, after the finish and before the skip,
			// teaches the call path its envelope.
			for _, ch := range []string{named, fin, piece(`,\"n\":1`)} {
				if _, err := cp.Process([]byte(ch)); err != nil {
					t.Fatal(err)
				}
			}
			tc.skip(cp)
			for _, ch := range tc.after {
				if _, err := cp.Process([]byte(ch)); err != nil {
					t.Fatal(err)
				}
			}
			res := cp.EndRound()
			if res.Lost != tc.wantLost || len(res.PaymentCalls) != 1 {
				t.Fatalf("lost %v, payment calls %+v; want lost %v and one call", res.Lost, res.PaymentCalls, tc.wantLost)
			}
			if res.PaymentCalls[0].Damaged != tc.wantLost {
				t.Errorf("damaged %v; want %v", res.PaymentCalls[0].Damaged, tc.wantLost)
			}
		})
	}
}

// TestLegacyCallPieceSkippedAfterTheFinish: the same of a legacy
// function_call (functionary's shape): a piece of a payment call's
// arguments after the finish and a skipped event makes the round lost,
// and the call Damaged, as a tool call's does. Read whole, {"sku":"a"}
// without its skipped `,"quantity":2` ran as an order of one.
func TestLegacyCallPieceSkippedAfterTheFinish(t *testing.T) {
	const c = `{"id":"g","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	for _, tc := range []struct {
		name     string
		after    string
		wantLost bool
	}{
		{"a piece after the skip", c + `{"function_call":{"arguments":"}"}},"finish_reason":null}]}`, true},
		{"no piece after the skip", `{"id":"g","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := NewCapture(isPaymentName)
			for _, ch := range []string{
				c + `{"role":"assistant","function_call":{"name":"create_order","arguments":"{\"sku\":\"a\""}},"finish_reason":null}]}`,
				c + `{},"finish_reason":"function_call"}]}`,
			} {
				if _, err := cp.Process([]byte(ch)); err != nil {
					t.Fatal(err)
				}
			}
			cp.SkippedAfterFinish()
			if _, err := cp.Process([]byte(tc.after)); err != nil {
				t.Fatal(err)
			}
			res := cp.EndRound()
			if res.Lost != tc.wantLost || len(res.PaymentCalls) != 1 || res.PaymentCalls[0].Damaged != tc.wantLost {
				t.Fatalf("lost %v, payment calls %+v; want lost %v and one call, damaged so", res.Lost, res.PaymentCalls, tc.wantLost)
			}
		})
	}
}
