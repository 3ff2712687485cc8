package main

import (
	"context"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestDemo runs `paygate demo` and checks what its fakes saw over HTTP: the
// purchase took two model rounds, WeChat Pay got one prepay and one refund,
// paygate acknowledged one payment notification, and the transcript names
// the order.
func TestDemo(t *testing.T) {
	var out strings.Builder
	res, err := runDemo(context.Background(), &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	transcript := out.String()
	if res.orderNo == "" || !strings.Contains(transcript, res.orderNo) {
		t.Errorf("transcript does not name the order %q", res.orderNo)
	}
	bodies := res.upstream.requestBodies()
	purchaseRounds := 0
	for _, b := range bodies {
		if strings.Contains(gjson.Get(b, "messages.0.content").Str, "premium") && gjson.Get(b, "messages.#").Int() <= 3 {
			purchaseRounds++
		}
	}
	if purchaseRounds != 2 {
		t.Errorf("the purchase took %d model rounds; want 2 (the tool call, then the words)", purchaseRounds)
	}
	prepays, refunds := 0, 0
	for _, rl := range res.app.sim.Requests() {
		switch rl.Op {
		case "prepay-jsapi", "prepay-native":
			prepays++
		case "refund":
			refunds++
		}
	}
	if prepays != 1 || refunds != 1 {
		t.Errorf("WeChat Pay saw %d prepays and %d refunds; want 1 and 1", prepays, refunds)
	}
	payNotes := 0
	for _, d := range res.app.sim.Deliveries() {
		if d.OutTradeNo == res.orderNo && strings.HasPrefix(d.EventType, "TRANSACTION") && d.Acked {
			payNotes++
		}
	}
	if payNotes != 1 {
		t.Errorf("%d acknowledged payment notifications; want 1", payNotes)
	}
	for _, want := range []string{"order_created", "payment_confirmed", "refund_proposed", "order.paid", "refund.succeeded", "— paid"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
}
