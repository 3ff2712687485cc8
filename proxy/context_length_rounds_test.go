package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
)

// contextTooLong answers as OpenAI does a conversation longer than the
// model's context.
var contextTooLong = jsonHandler(400, `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`)

// TestContextLengthTargetNotAskedInLaterRounds: a target that refused a
// turn's round for its context length is not asked again in the turn's
// later rounds, whose conversation only grew (SPEC 5: "never the same
// target again"), stream and non-stream. Asked again, it refused again
// every round: a wasted attempt each, and with max_attempts 2 a 500 of the
// larger target in the round after a payment call left it no retry, so the
// turn failed after its order was created.
func TestContextLengthTargetNotAskedInLaterRounds(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "stream", false: "non-stream"}[stream], func(t *testing.T) {
			small := newFakeProvider(t, contextTooLong)
			var bigRounds []http.HandlerFunc
			bigRounds = append(bigRounds,
				wordsRound(stream, "On it.", createOrderCall, "tool_calls"),
				jsonHandler(500, `{"error":{"message":"overloaded","type":"server_error"}}`),
				wordsRound(stream, "Your order is ready.", "", "stop"))
			big := newFakeProvider(t, roundByRound(bigRounds...))
			tools := &recordingTools{}
			url := toolsProxy(t, small.URL, tools, func(c *config.Config) {
				withSecondProvider(big.URL)(c)
				c.Failover.MaxAttempts = 2
			})
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if n := len(small.requests()); n != 1 {
				t.Errorf("the small target was asked %d times; want once, in the first round only", n)
			}
			if got := tools.executed(); len(got) != 1 {
				t.Errorf("executed %q; want the one create_order", got)
			}
			if resp.StatusCode != http.StatusOK || !strings.Contains(answerText(stream, body), "Your order is ready.") || strings.Contains(body, `"error"`) {
				t.Errorf("the bot got %d %s; want the second round's answer", resp.StatusCode, body)
			}
		})
	}
}
