package interceptors

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzTextPathMatchesSlowPath is TestTextPathMatchesSlowPath for any
// valid chunks, one a line: each goes once as it is, once with a member
// that sends it down the slow path, and the outputs, errors and the
// round's result must agree; a text path that accepted a chunk the slow
// path reads otherwise (a call, a finish, another choice's text) fails
// here.
func FuzzTextPathMatchesSlowPath(f *testing.F) {
	for _, name := range fixtureNames(f) {
		var events [][]byte
		for _, ev := range bytes.Split(readFixture(f, name), []byte("\n\n")) {
			if ev = bytes.TrimPrefix(bytes.TrimSpace(ev), []byte("data: ")); len(ev) > 0 && ev[0] == '{' {
				events = append(events, ev)
			}
		}
		for i := 0; i < len(events); i += 3 {
			f.Add(bytes.Join(events[i:min(i+4, len(events))], []byte("\n")))
		}
	}
	// An error that is not an object beside text (TestErrorBesideTextIsTheRoundsError),
	// an id with an escaped quote (TestTurnIDReplacesAnIDWithAnEscape), an
	// id named twice (TestTurnStampsTheIDTheBotReads).
	f.Add([]byte(`{"id":"a","choices":[{"index":0,"delta":{"role":"assistant"}}]}` + "\n" +
		`{"id":"a","choices":[{"index":0,"delta":{"content":"hi"}}],"error":"boom"}`))
	f.Add([]byte(`{"id":"a","choices":[{"index":0,"delta":{"role":"assistant"}}]}` + "\n" +
		`{"id":"a\"b","choices":[{"index":0,"delta":{"content":"x"}}]}`))
	f.Add([]byte(`{"id":"a","choices":[{"index":0,"delta":{"role":"assistant"}}]}` + "\n" +
		`{"id":"a","created":1,"choices":[{"index":0,"delta":{"content":"x"}}],"id":"b","created":2}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fast, slow := NewCapture(isPaymentName), NewCapture(isPaymentName)
		fast.PaymentNames(paymentNames...)
		slow.PaymentNames(paymentNames...)
		// Round 1's chunks go out under the turn's id and created.
		for round := range 2 {
			fuzzRoundsAgree(t, fast, slow, in, round)
		}
	})
}

// fuzzRoundsAgree runs round on both captures: the same outputs, errors
// and result.
func fuzzRoundsAgree(t *testing.T, fast, slow *Capture, in []byte, round int) {
	const poison = `,"zz":"\u0041"`
	fast.StartRound(round, "turn-1", 1700000000)
	slow.StartRound(round, "turn-1", 1700000000)
	for _, ev := range strings.Split(string(in), "\n") {
		if !gjson.Valid(ev) || len(ev) < 3 || ev[0] != '{' || ev[len(ev)-1] != '}' || strings.Contains(ev, `"zz"`) {
			continue
		}
		poisoned := ev[:len(ev)-1] + poison + "}"
		if !gjson.Valid(poisoned) {
			continue
		}
		out, err := fast.Process([]byte(ev))
		sout, serr := slow.Process([]byte(poisoned))
		sout = []byte(strings.Replace(string(sout), poison, "", 1))
		if emptyText(out) && len(sout) == 0 && err == nil && serr == nil {
			continue // see emptyText
		}
		if (err == nil) != (serr == nil) || string(out) != string(sout) {
			t.Fatalf("round %d, %s:\ntext path %s (%v)\nslow path %s (%v)", round, ev, out, err, sout, serr)
		}
	}
	fr, sr := fast.EndRound(), slow.EndRound()
	sr.FinishChunk = []byte(strings.Replace(string(sr.FinishChunk), poison, "", 1))
	// The fingerprint, model and created are read only from chunks
	// read in full (RoundResult.Fingerprint; a provider names its
	// model in the first): the text path's are not.
	fr.Fingerprint, sr.Fingerprint = nil, nil
	fr.Model, sr.Model, fr.Created, sr.Created = "", "", 0, 0
	if len(fr.FinishChunk) == 0 && len(sr.FinishChunk) == 0 {
		fr.FinishChunk, sr.FinishChunk = nil, nil
	}
	if !reflect.DeepEqual(fr, sr) {
		t.Fatalf("round %d: text path's result %+v\nslow path's %+v", round, fr, sr)
	}
}

// emptyText reports a chunk whose deltas hold nothing but empty or null
// members: the text path passes one on as it came (a role dropped from
// it leaves {}), the slow path sends none (nothing meaningful). A client
// reads nothing from either.
func emptyText(out []byte) bool {
	if out == nil {
		return false
	}
	empty := true
	gjson.GetBytes(out, "choices").ForEach(func(_, ch gjson.Result) bool {
		ch.Get("delta").ForEach(func(_, v gjson.Result) bool {
			empty = empty && (v.Type == gjson.Null || v.Raw == `""` || v.Raw == "[]" || v.Raw == "{}")
			return empty
		})
		return empty
	})
	return empty
}
