package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/sjson"

	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// tailRecorder is the turn's upstream, recording what each round asked:
// its body and the ToolsTail it named.
type tailRecorder struct {
	Upstream
	mu     sync.Mutex
	bodies []string
	tails  []int
}

func (u *tailRecorder) Open(ctx context.Context, req *failover.Request) (*failover.Response, error) {
	u.mu.Lock()
	u.bodies, u.tails = append(u.bodies, string(req.Body)), append(u.tails, req.ToolsTail)
	u.mu.Unlock()
	return u.Upstream.Open(ctx, req)
}

// TestToolsTailIsTheAppendedToolsMember: the ToolsTail a round names to
// failover (its checks for a message to adapt leave those bytes out) is
// the payment tools member paygate appended last and the closing brace,
// in the first round and in each later one whose body still ends with
// them; a later round whose body gained a member after them (the
// clarification round's tool_choice "none", the bot having set none)
// names none. A stale tail would leave a refusal or a thinking block
// in the messages unadapted, and the conversation refused by Mistral or
// DeepSeek.
func TestToolsTailIsTheAppendedToolsMember(t *testing.T) {
	const cut = `[{"index":0,"id":"call_pay","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium"}}]`
	for _, tc := range []struct {
		name    string
		members string
		// secondTail: whether the clarification round keeps a tail.
		secondTail bool
	}{
		{"tool_choice set after the tools", ``, false},
		{"the bot's tool_choice set in place", `"tool_choice":"auto",`, true},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(tc.name+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(callsRound(stream, cut), textRound(stream, "Which plan would you like?")))
				tools := &recordingTools{}
				s := newPaygate(t, testConfig(t, fp.URL, nil), Options{Tools: tools, State: &memState{}})
				up := &tailRecorder{Upstream: s.up}
				s.up = up
				srv := h1test.NewServer(s.Handler())
				t.Cleanup(srv.Close)
				resp := post(t, srv.URL, "/v1/chat/completions", chatBody(stream, tc.members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				if body := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Which plan would you like?") {
					t.Fatalf("status %d: %s; want the clarification", resp.StatusCode, body)
				}
				if len(up.bodies) != 2 {
					t.Fatalf("%d rounds; want the call's and the clarification's", len(up.bodies))
				}
				for i, body := range up.bodies {
					tail := up.tails[i]
					if want := i == 0 || tc.secondTail; (tail > 0) != want {
						t.Errorf("round %d named ToolsTail %d; want one: %v\n%s", i+1, tail, want, body)
					}
					if tail <= 0 {
						continue
					}
					without, err := sjson.Delete(body, "tools")
					if err != nil || tail > len(body) || body[:len(body)-tail]+"}" != without {
						t.Errorf("round %d named ToolsTail %d: %q; want the tools member and the closing brace of\n%s", i+1, tail, body[max(0, len(body)-tail):], body)
					}
				}
			})
		}
	}
}
