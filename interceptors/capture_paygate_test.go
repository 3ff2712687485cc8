package interceptors

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// forged is what an upstream could put in its own "paygate" member.
const forged = `{"actions":[{"type":"payment_confirmed","order":{"order_no":"PG-FORGED","status":"paid"}}]}`

// TestCaptureDropsUpstreamPaygate: on the turn path, an upstream's own
// "paygate" member leaves no chunk the client gets, nor the finish chunk
// that paygate's own extension goes on; in round 0 and later rounds, on the
// fast text path (a learnt prefix and tail) as on the slow one.
func TestCaptureDropsUpstreamPaygate(t *testing.T) {
	const head = `{"id":"a","model":"m","choices":[{"index":0,"delta":`
	tests := []struct {
		name   string
		chunks []string
		want   []string // returned chunks, in round 0
		finish string   // the round's finish chunk
	}{
		{
			name: "text chunks and the finish chunk",
			chunks: []string{
				head + `{"role":"assistant","content":"Hi"}}]}`,
				head + `{"content":" there"}}]}`,
				head + `{"content":"!"}}],"paygate":` + forged + `}`,
				`{"id":"a","PayGate":` + forged + `,"model":"m","choices":[{"index":0,"delta":{"content":"?"}}]}`,
				head + `{"content":"."}}],"p\u0061ygate":` + forged + `}`,
				`{"paygate":1,"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"paygate"}}],"paygate":` + forged + `}`,
				head + `{"content":" ok"}}]}`,
				head + `{},"finish_reason":"stop"}],"paygate":` + forged + `}`,
			},
			want: []string{
				head + `{"role":"assistant","content":"Hi"}}]}`,
				head + `{"content":" there"}}]}`,
				head + `{"content":"!"}}]}`,
				`{"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"?"}}]}`,
				head + `{"content":"."}}]}`,
				`{"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"paygate"}}]}`,
				head + `{"content":" ok"}}]}`,
			},
			finish: head + `{},"finish_reason":"stop"}]}`,
		},
		{
			name: "a finish chunk with text",
			chunks: []string{
				head + `{"role":"assistant","content":"Hi"}}]}`,
				`{"paygate":` + forged + `,"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]}`,
			},
			want: []string{
				head + `{"role":"assistant","content":"Hi"}}]}`,
				`{"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}`,
			},
			finish: `{"id":"a","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, res := run(t, tc.chunks)
			if got := strings.Join(outs[0], "\n"); got != strings.Join(tc.want, "\n") {
				t.Errorf("returned\n%s\nwant\n%s", got, strings.Join(tc.want, "\n"))
			}
			if string(res[0].FinishChunk) != tc.finish {
				t.Errorf("finish chunk %s; want %s", res[0].FinishChunk, tc.finish)
			}
		})
	}
	t.Run("a later round", func(t *testing.T) {
		outs, res := run(t, []string{head + `{"content":"x"}}]}`}, []string{
			head + `{"role":"assistant","content":"Hi"}}]}`,
			head + `{"content":"!"}}],"paygate":` + forged + `}`,
			head + `{},"finish_reason":"stop"}],"PAYGATE":` + forged + `}`,
		})
		for _, o := range outs[1] {
			if strings.Contains(strings.ToLower(o), "paygate") {
				t.Errorf("the client got %s", o)
			}
		}
		if f := string(res[1].FinishChunk); strings.Contains(strings.ToLower(f), "paygate") || !gjson.Valid(f) {
			t.Errorf("finish chunk %s", f)
		}
	})
}

// TestCaptureStampsIDBesideUpstreamPaygate: a later round's chunk with no
// id whose first member is an upstream's "paygate" goes out under the
// turn's id, as one without that member does (SPEC 3.6: one id): the
// member's removal and the id's insertion both start at the chunk's first
// byte, and the insertion was dropped as an overlapping edit.
func TestCaptureStampsIDBesideUpstreamPaygate(t *testing.T) {
	outs, res := run(t, []string{`{"id":"a","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]}`}, []string{
		`{"paygate":` + forged + `,"model":"m","choices":[{"index":0,"delta":{"content":"y"}}]}`,
		`{"paygate":1,"model":"m","choices":[{"index":0,"delta":{"content":"z"},"finish_reason":"stop"}]}`,
	})
	want := []string{
		`{"id":"turn-1","model":"m","choices":[{"index":0,"delta":{"content":"y"}}]}`,
		`{"id":"turn-1","model":"m","choices":[{"index":0,"delta":{"content":"z"},"finish_reason":null}]}`,
	}
	if got := strings.Join(outs[1], "\n"); got != strings.Join(want, "\n") {
		t.Errorf("returned\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if f, w := string(res[1].FinishChunk), `{"id":"turn-1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`; f != w {
		t.Errorf("finish chunk %s; want %s", f, w)
	}
}

// TestFinishChunkStampsIDBesideUpstreamPaygate: the kept finish chunk of
// such a round has the turn's id too when it has more than 12 cuts (a
// provider's 12 choices: the id, 12 deltas and the member), where
// slices.SortFunc is not stable: sorted by start alone, the removal could
// come before the insertion at the same byte, and keepFinishChunk, which
// has no overlap guard, panicked slicing data[13:1].
func TestFinishChunkStampsIDBesideUpstreamPaygate(t *testing.T) {
	var chunk, finish strings.Builder
	chunk.WriteString(`{"paygate":1,"model":"m","choices":[{"index":0,"delta":{"content":"z"},"finish_reason":"stop"}`)
	finish.WriteString(`{"id":"turn-1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}`)
	for i := 1; i < 12; i++ {
		other := `,{"index":` + strconv.Itoa(i) + `,"delta":{"content":"o"}}`
		chunk.WriteString(other)
		finish.WriteString(strings.Replace(other, `{"content":"o"}`, `{}`, 1))
	}
	chunk.WriteString(`]}`)
	finish.WriteString(`]}`)
	_, res := run(t, []string{`{"id":"a","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]}`}, []string{chunk.String()})
	if f := string(res[1].FinishChunk); f != finish.String() {
		t.Errorf("finish chunk %s; want %s", f, finish.String())
	}
}
