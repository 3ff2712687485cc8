package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestThreeRoundStream: a streamed turn of three rounds against the
// simulator: create_order, then query_order of the order the first round
// made (its number read from the tool result the second round's request
// carries), then words. The client sees one stream (SPEC 3.6): one id, one
// role delta, one finish_reason, on the chunk that carries paygate (2.3)
// with the three rounds; the usage it asked for sums the three (3.8); one
// order exists and the query saw it awaiting payment; the second and third
// rounds carry the earlier rounds' exchanges in order.
func TestThreeRoundStream(t *testing.T) {
	head := func(id string) string {
		return `{"id":"` + id + `","object":"chat.completion.chunk","created":1,"model":"m-` + id + `","choices":[`
	}
	usage := func(id string) string {
		return head(id) + `],"usage":{"prompt_tokens":100,"completion_tokens":10,"total_tokens":110}}`
	}
	var orderNo string
	up := newScriptedProvider(t, func(body string) scriptRound {
		switch strings.Count(body, `"role":"tool"`) {
		case 0:
			return scriptRound{chunks: []string{
				head("r0") + `{"index":0,"delta":{"role":"assistant","content":"Ordering. "},"finish_reason":null}]}`,
				head("r0") + `{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}`,
				head("r0") + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`, usage("r0")}}
		case 1:
			res := gjson.Get(body, `messages.#(tool_call_id=="call_pg_1_0").content`).Str
			orderNo = gjson.Get(res, "order_no").Str
			return scriptRound{chunks: []string{
				head("r1") + `{"index":0,"delta":{"role":"assistant","content":"Checking. "},"finish_reason":null}]}`,
				head("r1") + `{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"` + orderNo + `\"}"}}]},"finish_reason":null}]}`,
				head("r1") + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`, usage("r1")}}
		}
		return scriptRound{chunks: []string{
			head("r2") + `{"index":0,"delta":{"role":"assistant","content":"Please pay."},"finish_reason":null}]}`,
			head("r2") + `{"index":0,"delta":{},"finish_reason":"stop"}]}`, usage("r2")}}
	})
	url, a := paymentApp(t, up.URL, "")
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"buy premium"}]}`))
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("X-WeChat-OpenID", testOpenID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var chunks []gjson.Result
	for _, line := range strings.Split(string(raw), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && d != "[DONE]" {
			chunks = append(chunks, gjson.Parse(d))
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(string(raw)), "data: [DONE]") || len(chunks) < 3 {
		t.Fatalf("stream:\n%s", raw)
	}
	ids, roles, finishes := map[string]bool{}, 0, 0
	var text strings.Builder
	var ext, use gjson.Result
	for _, c := range chunks {
		ids[c.Get("id").Str] = true
		if c.Get("choices.0.delta.role").Exists() {
			roles++
		}
		text.WriteString(c.Get("choices.0.delta.content").Str)
		if c.Get("choices.0.finish_reason").Str != "" {
			finishes++
			ext = c.Get("paygate")
		}
		if c.Get("usage").IsObject() {
			use = c.Get("usage")
		}
	}
	if len(ids) != 1 || roles != 1 || finishes != 1 {
		t.Errorf("ids %v, %d role deltas, %d finish reasons; want one of each\n%s", ids, roles, finishes, raw)
	}
	if got := text.String(); got != "Ordering. Checking. Please pay." {
		t.Errorf("text %q", got)
	}
	if n := len(ext.Get("rounds").Array()); n != 3 || ext.Get("rounds.2.model").Str != "m-r2" {
		t.Errorf("paygate.rounds %s; want the three rounds", ext.Get("rounds").Raw)
	}
	if acts := ext.Get("actions").Array(); len(acts) != 1 || acts[0].Get("order.order_no").Str != orderNo || orderNo == "" {
		t.Errorf("paygate.actions %s; want the order_created of %q", ext.Get("actions").Raw, orderNo)
	}
	if use.Get("prompt_tokens").Int() != 300 || use.Get("total_tokens").Int() != 330 {
		t.Errorf("usage %s; want the three rounds summed", use.Raw)
	}
	if n := a.sim.OrderCount(); n != 1 {
		t.Errorf("%d orders at the simulator; want 1", n)
	}
	bodies := up.requests()
	if len(bodies) != 3 {
		t.Fatalf("%d upstream rounds; want 3", len(bodies))
	}
	last := gjson.Get(bodies[2], "messages")
	q := last.Get(`#(tool_call_id=="call_pg_2_0").content`).Str
	if gjson.Get(q, "status").Str != "awaiting_payment" {
		t.Errorf("query_order's result %s; want the order awaiting payment", q)
	}
	var order []string
	last.ForEach(func(_, m gjson.Result) bool {
		order = append(order, m.Get("role").Str+":"+m.Get("tool_call_id").Str+m.Get("tool_calls.0.id").Str)
		return true
	})
	if got := strings.Join(order, " "); !strings.HasSuffix(got, "user: assistant:call_pg_1_0 tool:call_pg_1_0 assistant:call_pg_2_0 tool:call_pg_2_0") {
		t.Errorf("the third round's messages %s", got)
	}
}
