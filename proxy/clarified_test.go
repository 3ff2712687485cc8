package proxy

import "testing"

// TestClarifiedSinceUser: only a payment tool's clarification after the
// user's last message holds the request's money calls back.
func TestClarifiedSinceUser(t *testing.T) {
	isPayment := func(n string) bool { return n == "create_order" || n == "query_order" }
	const (
		user     = `{"role":"user","content":"buy"}`
		mixed    = `{"role":"assistant","content":null,"tool_calls":[{"id":"pay_1","type":"function","function":{"name":"create_order","arguments":"{}"}},{"id":"client_1","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]}`
		clarify  = `{"role":"tool","tool_call_id":"pay_1","content":"{\"status\":\"needs_clarification\",\"error\":\"sku is missing\"}"}`
		refused  = `{"role":"tool","tool_call_id":"pay_1","content":"{\"status\":\"not_executed\"}"}`
		made     = `{"role":"tool","tool_call_id":"pay_1","content":"{\"status\":\"awaiting_payment\"}"}`
		clientOK = `{"role":"tool","tool_call_id":"client_1","content":"{\"status\":\"not_executed\"}"}`
		answer   = `{"role":"user","content":"premium monthly"}`
	)
	tests := []struct {
		name string
		msgs string
		want bool
	}{
		{"a clarification in the follow-up", user + "," + mixed + "," + clarify + "," + clientOK, true},
		{"a refusal in the follow-up", user + "," + mixed + "," + refused, true},
		{"an order made", user + "," + mixed + "," + made + "," + clientOK, false},
		{"the user answered since", user + "," + mixed + "," + clarify + "," + clientOK + "," + answer, false},
		{"the bot's own tool's result is not paygate's", user + "," + mixed + "," + made + "," + clientOK, false},
		{"no tool calls", user, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clarifiedSinceUser([]byte(`{"messages":[`+tt.msgs+`]}`), isPayment); got != tt.want {
				t.Errorf("clarifiedSinceUser = %v; want %v", got, tt.want)
			}
		})
	}
}
