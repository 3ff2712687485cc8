package proxy

import "testing"

// TestPaymentsSinceUser: only payment tool results after the user's last
// message carry over: a clarification, and the money-moving calls run.
func TestPaymentsSinceUser(t *testing.T) {
	isPayment := func(n string) bool { return n == "create_order" || n == "query_order" }
	isMoney := func(n string) bool { return n == "create_order" }
	const (
		user     = `{"role":"user","content":"buy"}`
		mixed    = `{"role":"assistant","content":null,"tool_calls":[{"id":"pay_1","type":"function","function":{"name":"create_order","arguments":"{}"}},{"id":"client_1","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]}`
		query    = `{"role":"assistant","content":null,"tool_calls":[{"id":"pay_q","type":"function","function":{"name":"query_order","arguments":"{}"}},{"id":"client_1","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]}`
		clarify  = `{"role":"tool","tool_call_id":"pay_1","content":"{\"status\":\"needs_clarification\",\"error\":\"sku is missing\"}"}`
		refused  = `{"role":"tool","tool_call_id":"pay_1","content":"{\"status\":\"not_executed\"}"}`
		made     = `{"role":"tool","tool_call_id":"pay_1","content":"{\"status\":\"awaiting_payment\"}"}`
		queried  = `{"role":"tool","tool_call_id":"pay_q","content":"{\"status\":\"paid\"}"}`
		clientOK = `{"role":"tool","tool_call_id":"client_1","content":"{\"status\":\"not_executed\"}"}`
		answer   = `{"role":"user","content":"premium monthly"}`
	)
	tests := []struct {
		name        string
		msgs        string
		wantClarify bool
		wantCalls   int
	}{
		{"a clarification in the follow-up", user + "," + mixed + "," + clarify + "," + clientOK, true, 0},
		{"a refusal in the follow-up", user + "," + mixed + "," + refused, true, 0},
		{"an order made", user + "," + mixed + "," + made + "," + clientOK, false, 1},
		{"two orders made over two follow-ups", user + "," + mixed + "," + made + "," + clientOK + "," + mixed + "," + made, false, 2},
		{"a query is no money call", user + "," + query + "," + queried + "," + clientOK, false, 0},
		{"the user spoke since", user + "," + mixed + "," + clarify + "," + made + "," + clientOK + "," + answer, false, 0},
		{"the bot's own tool's result is not paygate's", user + "," + query + "," + clientOK, false, 0},
		{"no tool calls", user, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clarify, calls := paymentsSinceUser([]byte(`{"messages":[`+tt.msgs+`]}`), isPayment, isMoney)
			if clarify != tt.wantClarify || calls != tt.wantCalls {
				t.Errorf("paymentsSinceUser = %v, %d; want %v, %d", clarify, calls, tt.wantClarify, tt.wantCalls)
			}
		})
	}
}
