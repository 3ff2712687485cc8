package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestPaymentTurnLaterRoundStalledMidStream: a payment turn whose primary
// ran create_order in round 1 and then, in round 2, streamed its first
// words and stalled (a brownout that sends a token and no more) is
// finished by the fallback provider once the idle timeout ends the stall:
// the fallback is asked round 2 with round 1's tool result, the primary is
// not asked round 2 again, and the order is created once. A careful
// operator relies on a later round's failover never repeating the money
// call the first round made.
func TestPaymentTurnLaterRoundStalledMidStream(t *testing.T) {
	stalled := make(chan struct{}, 1)
	stall := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(roundChunk + `[{"index":0,"delta":{"role":"assistant","content":"Order O1 "},"finish_reason":null}]}` + "\n\n"))
		w.(http.Flusher).Flush()
		stalled <- struct{}{}
		<-r.Context().Done() // silent until paygate gives up on it
	}
	primary := newFakeProvider(t, roundByRound(callsRound(true, createOrderCall), stall))
	fallback := newFakeProvider(t, textRound(true, "Order O1 awaits your payment."))
	tools := &recordingTools{}
	url := toolsProxy(t, primary.URL, tools, func(c *config.Config) {
		c.Providers[0].Timeouts.Idle = config.Duration(time.Second)
		p := c.Providers[0]
		p.Name, p.BaseURL = "fallback", fallback.URL+"/v1"
		c.Providers = append(c.Providers, p)
		c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: "fallback", Model: "vendor/upstream-model", Weight: 1})
	})
	resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	select {
	case <-stalled:
	default:
		t.Fatalf("round 2 never reached the primary's stall:\n%s", body)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "[DONE]") || strings.Contains(body, `"error"`) {
		t.Fatalf("status %d; want a whole stream:\n%s", resp.StatusCode, body)
	}
	if got := streamText(body); got != "Order O1 awaits your payment." {
		t.Errorf("the bot read %q; want the stalled words finished by the fallback", got)
	}
	if got := tools.executed(); len(got) != 1 || got[0] != `create_order {"sku":"premium-monthly"}` {
		t.Errorf("executed %q; want one create_order", got)
	}
	if n := len(primary.requests()); n != 2 {
		t.Errorf("the primary was asked %d times; want 2 (round 1, and round 2 that stalled)", n)
	}
	reqs := fallback.requests()
	if len(reqs) != 1 {
		t.Fatalf("the fallback was asked %d times; want once (round 2)", len(reqs))
	}
	last := reqs[0].Body
	if res := gjson.GetBytes(last, `messages.#(tool_call_id=="call_pg_1_0")`); !res.Exists() {
		t.Errorf("the fallback's round 2 lacks round 1's create_order result: %s", last)
	}
	if n := gjson.GetBytes(last, `messages.#(role=="assistant")#`).Get("#").Int(); n != 1 {
		t.Errorf("the fallback's round 2 holds %d assistant messages; want 1 (round 1's call): %s", n, last)
	}
}
