package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPaymentConfirmedOnceAcrossSessions: the user bought in one
// conversation (X-Paygate-Session) and writes next in another: that turn
// announces payment_confirmed, once per user and order, so the first
// conversation's next turn, and one with no session named, are quiet.
func TestPaymentConfirmedOnceAcrossSessions(t *testing.T) {
	forEachMode(t, func(t *testing.T, stream bool) {
		script := announceProvider(t, func(string) upstreamFault { return noFault })
		url, a := paymentApp(t, script.URL, "")
		turn := func(session, content string) turnResult {
			t.Helper()
			body := fmt.Sprintf(`{"model":"gpt-4o","stream":%v,"messages":[{"role":"user","content":%q}]}`, stream, content)
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e2eClientKey)
			req.Header.Set("X-WeChat-OpenID", testOpenID)
			if session != "" {
				req.Header.Set("X-Paygate-Session", session)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			return parseTurn(resp.StatusCode, stream, b)
		}
		turn("chat-a", "I want premium")
		orderNo := lastOrderNo(t, a.sim)
		if d, err := a.sim.Pay(context.Background(), orderNo); err != nil || !d.Acked {
			t.Fatalf("pay: %+v %v", d, err)
		}
		checkAnnounced(t, turn("chat-b", "Did it go through?"), "payment_confirmed", orderNo)
		checkQuiet(t, turn("chat-a", "Did it go through?"))
		checkQuiet(t, turn("", "Did it go through?"))
	})
}
