package interceptors

import (
	"errors"
	"strings"
	"testing"
)

func rchunk(delta, finish string) string {
	if finish == "" {
		finish = "null"
	} else {
		finish = `"` + finish + `"`
	}
	return `{"id":"chatcmpl-new","object":"chat.completion.chunk","model":"m2","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}]}`
}

// TestResumeFilter: a fresh answer's repeat of the sent prefix is dropped,
// a straddling chunk is cut to its suffix, a departure is ErrDiverged, and
// the client's id is kept with no second role delta.
func TestResumeFilter(t *testing.T) {
	tests := []struct {
		name      string
		id        string
		text      string
		reasoning string
		skip      bool
		in        []string
		want      []string // "" : dropped
		wantErrAt int      // index of the chunk that diverges; -1 none
	}{
		{
			name: "prefix repeated across chunks, straddling chunk cut",
			text: "Hello, wor", skip: true,
			in: []string{
				rchunk(`{"role":"assistant","content":""}`, ""),
				rchunk(`{"content":"Hello"}`, ""),
				rchunk(`{"content":", w"}`, ""),
				rchunk(`{"content":"orld!"}`, ""),
				rchunk(`{"content":" Bye"}`, ""),
				rchunk(`{}`, "stop"),
			},
			want: []string{
				rchunk(`{"role":"assistant","content":""}`, ""),
				"",
				"",
				rchunk(`{"content":"ld!"}`, ""),
				rchunk(`{"content":" Bye"}`, ""),
				rchunk(`{}`, "stop"),
			},
			wantErrAt: -1,
		},
		{
			name: "same id kept and role removed",
			id:   "chatcmpl-first", text: "Hi", skip: true,
			in: []string{
				rchunk(`{"role":"assistant","content":"Hi"}`, ""),
				rchunk(`{"content":" there"}`, ""),
			},
			want: []string{
				"",
				strings.Replace(rchunk(`{"content":" there"}`, ""), "chatcmpl-new", "chatcmpl-first", 1),
			},
			wantErrAt: -1,
		},
		{
			name: "a continued stream only gets the id and loses its role",
			id:   "chatcmpl-first", text: "Hi", skip: false,
			in: []string{
				rchunk(`{"role":"assistant","content":" there"}`, ""),
			},
			want: []string{
				strings.Replace(rchunk(`{"content":" there"}`, ""), "chatcmpl-new", "chatcmpl-first", 1),
			},
			wantErrAt: -1,
		},
		{
			name: "multi-byte text straddling the end",
			text: "价格是", skip: true,
			in:        []string{rchunk(`{"content":"价格"}`, ""), rchunk(`{"content":"是49元"}`, "")},
			want:      []string{"", rchunk(`{"content":"49元"}`, "")},
			wantErrAt: -1,
		},
		{
			name: "reasoning then text",
			text: "An", reasoning: "think", skip: true,
			in: []string{
				rchunk(`{"reasoning_content":"thi"}`, ""),
				rchunk(`{"reasoning_content":"nk"}`, ""),
				rchunk(`{"content":"Answer"}`, ""),
			},
			want:      []string{"", "", rchunk(`{"content":"swer"}`, "")},
			wantErrAt: -1,
		},
		{
			name: "different text diverges",
			text: "Hello, wor", skip: true,
			in:        []string{rchunk(`{"content":"Hello"}`, ""), rchunk(`{"content":", there"}`, "")},
			want:      []string{""},
			wantErrAt: 1,
		},
		{
			name: "shorter answer diverges at its finish",
			text: "Hello, wor", skip: true,
			in:        []string{rchunk(`{"content":"Hello"}`, ""), rchunk(`{}`, "stop")},
			want:      []string{""},
			wantErrAt: 1,
		},
		{
			name: "a tool call before the prefix is matched diverges",
			text: "Hello", skip: true,
			in:        []string{rchunk(`{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}`, "")},
			wantErrAt: 0,
		},
		{
			name: "a tool call after the prefix passes",
			text: "Hello", skip: true,
			in: []string{
				rchunk(`{"content":"Hello"}`, ""),
				rchunk(`{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}`, ""),
			},
			want:      []string{"", rchunk(`{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}`, "")},
			wantErrAt: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewResume(tc.id, tc.text, tc.reasoning, tc.skip)
			for i, in := range tc.in {
				out, err := r.Filter([]byte(in))
				if i == tc.wantErrAt {
					if !errors.Is(err, ErrDiverged) {
						t.Fatalf("chunk %d: got %s, %v; want ErrDiverged", i, out, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				if i < len(tc.want) && string(out) != tc.want[i] {
					t.Errorf("chunk %d: got %s; want %s", i, out, tc.want[i])
				}
			}
			if tc.wantErrAt >= 0 {
				t.Errorf("no divergence; want one at chunk %d", tc.wantErrAt)
			}
			if r.Matching() {
				t.Errorf("still matching after the stream")
			}
		})
	}
}
