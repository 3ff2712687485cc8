package proxy

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestKimiCallIDRenamedInItsForm: Kimi K2 names its calls
// "functions.<name>:<idx>" and reads them back in that form: its chat
// template prints the id of each call in the history, and a history with
// ids of another form puts it off its format, so that it writes its next
// calls as text or ends its turn empty (ml-explore/mlx-lm#821,
// getkimchi/kimchi#1063). A later round's payment call named as an
// earlier one's (the model numbered a second query_order :0 again) must get
// an id of its own (TestPaymentCallIDsUniqueInTurn); it got paygate's
// "call_pg_2_0", the only id of another form in Kimi's history. It now gets
// the next free index in Kimi's form, the same in its call and its result.
func TestKimiCallIDRenamedInItsForm(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(
				callsRound(stream, `[`+queryCall(0, "functions.query_order:0", "X1")+`]`),
				callsRound(stream, `[`+queryCall(0, "functions.query_order:0", "X2")+`]`),
				textRound(stream, "Both checked.")))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			reqs := fp.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d upstream requests; want 3 (the bot got %d %s)", len(reqs), resp.StatusCode, body)
			}
			checkToolIDs(t, reqs[2].Body)
			var ids []string
			gjson.GetBytes(reqs[2].Body, "messages.#.tool_calls.#.id|@flatten").ForEach(func(_, id gjson.Result) bool {
				ids = append(ids, id.Str)
				return true
			})
			if len(ids) != 2 || ids[0] != "functions.query_order:0" || ids[1] != "functions.query_order:1" {
				t.Errorf("the third round's calls are named %q; want [functions.query_order:0 functions.query_order:1]", ids)
			}
			if r := gjson.GetBytes(reqs[2].Body, `messages.#(role=="tool")#.tool_call_id`).String(); !strings.Contains(r, "functions.query_order:1") {
				t.Errorf("the results name %s; want the renamed call's id among them", r)
			}
		})
	}
}
