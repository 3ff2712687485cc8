package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestLegacyFunctionCallNameInPieces: a legacy function_call whose name a
// provider streams in pieces ("create_", then "order") is the payment call
// create_order, as a tool call named so is: read from its first piece, it
// went to the bot as its own call (its SDK joined create_order, a tool it
// does not have), and, events answering a non-stream request, the answer
// kept "create_" alone; the order was never made. A call of the bot's own
// named in pieces still reaches it whole.
func TestLegacyFunctionCallNameInPieces(t *testing.T) {
	legacy := func(fc string) string {
		return roundChunk + `[{"index":0,"delta":{"function_call":` + fc + `},"finish_reason":null}]}` + "\n\n"
	}
	for _, tc := range []struct {
		name     string
		stream   bool
		pieces   []string
		executed []string
		botGets  string // in the answer the bot read
	}{
		{"stream", true, []string{`{"name":"create_","arguments":""}`, `{"name":"order"}`, `{"arguments":"{\"sku\":\"premium\"}"}`},
			[]string{`create_order {"sku":"premium"}`}, ""},
		{"non-stream answered with events", false, []string{`{"name":"create_","arguments":""}`, `{"name":"order"}`, `{"arguments":"{\"sku\":\"premium\"}"}`},
			[]string{`create_order {"sku":"premium"}`}, ""},
		{"stream, the name's last piece with the arguments", true, []string{`{"name":"create"}`, `{"name":"_ord"}`, `{"name":"er","arguments":"{\"sku\":\"premium\"}"}`},
			[]string{`create_order {"sku":"premium"}`}, ""},
		{"stream, the bot's own call", true, []string{`{"name":"create_","arguments":""}`, `{"name":"invoice"}`, `{"arguments":"{\"n\":1}"}`},
			nil, `"name":"create_invoice"`},
		{"non-stream, the bot's own call", false, []string{`{"name":"create_","arguments":""}`, `{"name":"invoice"}`, `{"arguments":"{\"n\":1}"}`},
			nil, `"name":"create_invoice"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := []string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n"}
			for _, p := range tc.pieces {
				events = append(events, legacy(p))
			}
			events = append(events, roundChunk+`[{"index":0,"delta":{},"finish_reason":"function_call"}]}`+"\n\n", "data: [DONE]\n\n")
			fp := newFakeProvider(t, roundByRound(sseHandler(events...), textRound(tc.stream, "Order O1 is waiting for payment.")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(tc.stream, weatherTool), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := tools.executed(); !slices.Equal(got, tc.executed) {
				t.Errorf("executed %q; want %q\n%s", got, tc.executed, body)
			}
			if tc.botGets != "" {
				got := body
				if tc.stream {
					// The name the bot's SDK joins from the pieces.
					var name strings.Builder
					for _, line := range strings.Split(body, "\n") {
						if data, ok := strings.CutPrefix(line, "data: "); ok {
							name.WriteString(gjson.Get(data, "choices.0.delta.function_call.name").Str)
						}
					}
					got = `"name":"` + name.String() + `"`
				}
				if !strings.Contains(got, tc.botGets) {
					t.Errorf("the bot read %s; want %s:\n%s", got, tc.botGets, body)
				}
			} else if strings.Contains(body, `"function_call"`) {
				t.Errorf("the payment call reached the bot:\n%s", body)
			}
		})
	}
}
