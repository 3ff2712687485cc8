package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestPaymentBudgetHoldsAcrossModelsOfTheTurn: payments.budget.max_payment_calls
// is the turn's, whoever answers its later rounds. The turn's model runs
// create_order; the round after it is answered by another model
// (payments.followup_model) or, its provider failing with a 500, by another
// provider of the turn's model, and that answer makes a second money-moving
// call (another order, a refund). It is refused (not_executed, and the next
// round has tool_choice none), never run: one payment call, as the budget
// says, and the turn ends with the later model's words.
func TestPaymentBudgetHoldsAcrossModelsOfTheTurn(t *testing.T) {
	second := `[{"index":0,"id":"call_two","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-yearly\"}"}}]`
	refund := `[{"index":0,"id":"call_ref","type":"function","function":{"name":"request_refund","arguments":"{\"order_no\":\"O1\",\"reason\":\"x\"}"}}]`
	for _, stream := range []bool{false, true} {
		for _, tc := range []struct {
			name  string
			calls string // the later model's money-moving call
			setup func(t *testing.T, stream bool, calls string) (primary, later *fakeProvider, mutate func(*config.Config))
		}{
			{"followup model", second, func(t *testing.T, stream bool, calls string) (*fakeProvider, *fakeProvider, func(*config.Config)) {
				later := roundByRound(callsRound(stream, calls), textRound(stream, "Done."))
				fp := newFakeProvider(t, byUpstreamModel(later, callsRound(stream, createOrderCall), textRound(stream, "wrong model")))
				return fp, fp, followupModel("")
			}},
			{"failover to another provider", refund, func(t *testing.T, stream bool, calls string) (*fakeProvider, *fakeProvider, func(*config.Config)) {
				primary := newFakeProvider(t, roundByRound(callsRound(stream, createOrderCall), overloaded))
				later := newFakeProvider(t, roundByRound(callsRound(stream, calls), textRound(stream, "Done.")))
				return primary, later, func(c *config.Config) {
					p := c.Providers[0]
					p.Name, p.BaseURL = "other", later.URL+"/v1"
					c.Providers = append(c.Providers, p)
					c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: "other", Model: "vendor/upstream-model", Weight: 1})
				}
			}},
		} {
			t.Run(tc.name+map[bool]string{false: "", true: " stream"}[stream], func(t *testing.T) {
				primary, later, mutate := tc.setup(t, stream, tc.calls)
				tools := &recordingTools{}
				url := toolsProxy(t, primary.URL, tools, mutate)
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK || !strings.HasSuffix(answerText(stream, body), "Done.") {
					t.Fatalf("status %d, answer:\n%s", resp.StatusCode, body)
				}
				if got := tools.executed(); len(got) != 1 || got[0] != `create_order {"sku":"premium-monthly"}` {
					t.Fatalf("executed %q; want the first create_order only", got)
				}
				// The later model's last round: its call refused, tools off.
				var last []byte
				for _, r := range later.requests() {
					last = r.Body
				}
				res := gjson.GetBytes(last, `messages.#(tool_call_id=="call_pg_2_0").content`) // round 2's call, under paygate's id
				if gjson.Get(res.Str, "status").Str != "not_executed" || gjson.GetBytes(last, "tool_choice").Str != "none" {
					t.Errorf("the later model's call must be refused and the next round run with tool_choice none; last request %s", last)
				}
			})
		}
	}
}
