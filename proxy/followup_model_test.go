package proxy

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// followupModel adds the public model "cheap", served as vendor/cheap by
// the provider at base (a provider "budget"; "": the first provider), and
// makes it payments.followup_model.
func followupModel(base string) func(*config.Config) {
	return func(c *config.Config) {
		p := c.Providers[0]
		if base != "" {
			p.Name, p.BaseURL = "budget", base+"/v1"
			c.Providers = append(c.Providers, p)
		}
		c.Models = append(c.Models, config.Model{Name: "cheap", Strategy: c.Models[0].Strategy,
			Targets: []config.Target{{Provider: p.Name, Model: "vendor/cheap", Weight: 1}}})
		c.Payments.FollowupModel = "cheap"
	}
}

// byUpstreamModel answers a request for vendor/cheap with cheap, and the
// n-th request for any other upstream model with own[n] (the last again
// after that).
func byUpstreamModel(cheap http.HandlerFunc, own ...http.HandlerFunc) http.HandlerFunc {
	next := roundByRound(own...)
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if gjson.GetBytes(b, "model").Str == "vendor/cheap" {
			cheap(w, r)
			return
		}
		next(w, r)
	}
}

// answerPaygate is the paygate object of an answer, streamed (on the chunk
// that carries it) or not.
func answerPaygate(stream bool, body string) gjson.Result {
	if !stream {
		return gjson.Get(body, "paygate")
	}
	for _, c := range streamChunks(body) {
		if p := gjson.Get(c, "paygate"); p.Exists() {
			return p
		}
	}
	return gjson.Result{}
}

// TestFollowupModelFailureFallsBackToTheTurnsModel: a round after a
// payment call goes to payments.followup_model, and when none of its
// targets answers it (a cheap model that refuses "tools" with a 400, an
// outage), the turn's own model, which just answered the conversation,
// answers the round: the order the call made reaches the bot with the
// words about it, where the bot got an error and no order_created. The
// later rounds of the turn go to the turn's model at once, and the
// payment call is never run again.
func TestFollowupModelFailureFallsBackToTheTurnsModel(t *testing.T) {
	queryCall := `[{"index":0,"id":"call_q","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"O1\"}"}}]`
	failures := []struct {
		name  string
		cheap http.HandlerFunc
	}{
		{"tools refused", jsonHandler(400, `{"error":{"message":"This model does not support tools","type":"invalid_request_error","param":"tools","code":null}}`)},
		{"outage", jsonHandler(502, `{"error":{"message":"bad gateway"}}`)},
	}
	for _, f := range failures {
		for _, stream := range []bool{false, true} {
			t.Run(f.name+map[bool]string{false: "", true: " stream"}[stream], func(t *testing.T) {
				h := byUpstreamModel(f.cheap,
					callsRound(stream, createOrderCall), callsRound(stream, queryCall), textRound(stream, "Order O1 awaits your payment."))
				fp := newFakeProvider(t, h)
				tools := &recordingTools{}
				url := toolsProxy(t, fp.URL, tools, followupModel(""))
				resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK || answerText(stream, body) != "Order O1 awaits your payment." {
					t.Fatalf("status %d, answer:\n%s", resp.StatusCode, body)
				}
				if got := answerPaygate(stream, body).Get("actions.#(type==order_created).order.order_no").Str; got != "O1" {
					t.Errorf("paygate %s; want O1's order_created", answerPaygate(stream, body).Raw)
				}
				if got := tools.executed(); len(got) != 2 || got[0] != `create_order {"sku":"premium-monthly"}` {
					t.Errorf("executed %q; want create_order once, then query_order", got)
				}
				// The turn's model, the follow-up's (retried on a 502), then
				// the turn's for the round and the one after it.
				var got []string
				for _, r := range fp.requests() {
					got = append(got, gjson.GetBytes(r.Body, "model").Str)
				}
				i := 1
				for i < len(got) && got[i] == "vendor/cheap" {
					i++
				}
				if own := "vendor/upstream-model"; len(got) == 0 || got[0] != own || i == 1 || !slices.Equal(got[i:], []string{own, own}) {
					t.Errorf("upstream models %q; want the turn's, the follow-up's, then the turn's for the rest", got)
				}
				if n := gjson.Get(answerPaygate(stream, body).Raw, "rounds.#").Int(); n != 3 {
					t.Errorf("paygate.rounds %s; want the 3 rounds that answered", answerPaygate(stream, body).Get("rounds").Raw)
				}
			})
		}
	}
}

// filterRefusal is DashScope's content filter refusing a round.
var filterRefusal = jsonHandler(400, `{"error":{"message":"Output data may contain inappropriate content.","type":"data_inspection_failed","param":null,"code":"data_inspection_failed"}}`)

// TestFollowupModelContentFilterNotAskedOfTheTurnsModel: a round after a
// payment call that followup_model's provider refused with a content
// filter ends with that provider's reason, as the turn's own model's
// refusal would: the turn's model is not asked the flagged conversation
// (SPEC 5: a content filter is retried nowhere), where only the model
// that refuses tools, or is down, hands the round to it.
func TestFollowupModelContentFilterNotAskedOfTheTurnsModel(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "stream"}[stream], func(t *testing.T) {
			fp := newFakeProvider(t, byUpstreamModel(filterRefusal,
				callsRound(stream, createOrderCall), textRound(stream, "Order O1 awaits your payment.")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, followupModel(""))
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if !strings.Contains(body, "data_inspection_failed") || strings.Contains(body, "awaits") {
				t.Errorf("status %d; the answer did not end with the content filter's reason:\n%s", resp.StatusCode, body)
			}
			var got []string
			for _, r := range fp.requests() {
				got = append(got, gjson.GetBytes(r.Body, "model").Str)
			}
			if !slices.Equal(got, []string{"vendor/upstream-model", "vendor/cheap"}) {
				t.Errorf("upstream models %q; want the turn's for the payment round, then the follow-up's alone", got)
			}
			if got := tools.executed(); len(got) != 1 {
				t.Errorf("executed %q; want create_order once", got)
			}
		})
	}
}

// cutFollowup is a follow-up round whose stream ends after its first words.
var cutFollowup = sseHandler(roundChunk + `[{"index":0,"delta":{"role":"assistant","content":"Order O1 "},"finish_reason":null}]}` + "\n\n")

// orderThenWords is the turn's own model: a streamed create_order call,
// then words about the order.
func orderThenWords() http.HandlerFunc {
	return roundByRound(callsRound(true, createOrderCall), textRound(true, "Order O1 awaits your payment."))
}

// TestFollowupModelCutStreamFinishedByTheTurnsModel: a follow-up round
// whose stream was cut, which none of followup_model's other targets can
// finish, is finished by the turn's own model: the bot reads the whole
// answer and its order, where the stream ended "not recovered".
func TestFollowupModelCutStreamFinishedByTheTurnsModel(t *testing.T) {
	cheap := newFakeProvider(t, cutFollowup)
	own := newFakeProvider(t, orderThenWords())
	tools := &recordingTools{}
	url := toolsProxy(t, own.URL, tools, followupModel(cheap.URL))
	resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if got := streamText(body); got != "Order O1 awaits your payment." || !strings.Contains(body, "[DONE]") {
		t.Fatalf("the bot read %q:\n%s", got, body)
	}
	if got := answerPaygate(true, body).Get("actions.0.order.order_no").Str; got != "O1" {
		t.Errorf("paygate %s; want O1's order_created", answerPaygate(true, body).Raw)
	}
	if got := tools.executed(); len(got) != 1 {
		t.Errorf("executed %q; want create_order once", got)
	}
	if n := len(cheap.requests()); n != 1 {
		t.Errorf("followup_model's provider was asked %d times; want once", n)
	}
}

// cutFollowupProxy is a paygate whose turn's own model (own) answers a
// streamed create_order call, then words, and whose followup_model is
// served by a provider that cuts its stream and then by one that answers
// with second.
func cutFollowupProxy(t *testing.T, second http.HandlerFunc) (url string, own *fakeProvider) {
	cheap := newFakeProvider(t, cutFollowup)
	next := newFakeProvider(t, second)
	own = newFakeProvider(t, orderThenWords())
	url = toolsProxy(t, own.URL, &recordingTools{}, func(c *config.Config) {
		followupModel(cheap.URL)(c)
		p := c.Providers[0]
		p.Name, p.BaseURL = "second", next.URL+"/v1"
		c.Providers = append(c.Providers, p)
		c.Models[len(c.Models)-1].Targets = append(c.Models[len(c.Models)-1].Targets, config.Target{Provider: "second", Model: "vendor/cheap", Weight: 1})
	})
	return url, own
}

// TestFollowupModelRefusedRecoveryNotFinishedByTheTurnsModel: a follow-up
// round cut, whose recovery followup_model's next target refused with a
// content filter, ends with that provider's reason: the turn's own model
// is not asked to finish a flagged answer (SPEC 5).
func TestFollowupModelRefusedRecoveryNotFinishedByTheTurnsModel(t *testing.T) {
	url, own := cutFollowupProxy(t, filterRefusal)
	resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if !strings.Contains(body, "data_inspection_failed") || strings.Contains(body, "awaits") {
		t.Errorf("the stream did not end with the content filter's reason:\n%s", body)
	}
	if n := len(own.requests()); n != 1 {
		t.Errorf("the turn's model was asked %d times; want once, for the payment round", n)
	}
}

// TestFollowupModelCutStreamToolsRefusedFinishedByTheTurnsModel: a
// follow-up round cut, whose recovery followup_model's next target refused
// for the tools (a 400 that is no content filter), is finished by the
// turn's own model, as a cut none of its targets can finish is: the stream
// ended with "This model does not support tools" as if the answer had been
// refused.
func TestFollowupModelCutStreamToolsRefusedFinishedByTheTurnsModel(t *testing.T) {
	url, own := cutFollowupProxy(t, jsonHandler(400, `{"error":{"message":"This model does not support tools","type":"invalid_request_error","param":"tools","code":null}}`))
	resp := post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
	body := readAll(t, resp.Body)
	if got := streamText(body); got != "Order O1 awaits your payment." || !strings.Contains(body, "[DONE]") {
		t.Fatalf("the bot read %q:\n%s", got, body)
	}
	if n := len(own.requests()); n != 2 {
		t.Errorf("the turn's model was asked %d times; want twice, for the payment round and the cut one", n)
	}
}
