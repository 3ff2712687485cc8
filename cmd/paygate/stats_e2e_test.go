package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// adminStats is GET /admin/api/stats of a's admin handler, with token.
func adminStats(t *testing.T, a *app, token string) gjson.Result {
	t.Helper()
	admin := httptest.NewServer(a.adminHandler())
	defer admin.Close()
	req, _ := http.NewRequest(http.MethodGet, admin.URL+"/admin/api/stats", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: %d %s", resp.StatusCode, b)
	}
	return gjson.ParseBytes(b)
}

// TestStatsCountsUnansweredTurns: a turn is a chat request that went to the
// providers, answered or not. A payment turn (the bot sent the user) that
// every provider failed counted, while a plain turn (no user) that every
// provider failed did not: the console's turns were a mix of two rules.
func TestStatsCountsUnansweredTurns(t *testing.T) {
	down := failingProvider(t, "down")
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
admin: {token: adm-stats-1}
store: {path: "` + t.TempDir() + `/p.db"}
providers:
  - name: only
    base_url: "` + down.URL + `/v1"
    api_key: k1
    prices: {"openai/gpt-4o": {input: "2.50", output: "10.00"}}
models:
  - {name: gpt-4o, targets: [{provider: only, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
	for _, tc := range []struct {
		name, user string
	}{
		{"plain turn", ""},
		{"payment turn", testOpenID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, a := serveConfig(t, src, io.Discard)
			// Refused before it is routed: no turn.
			bad := postAs(t, base, e2eClientKey, tc.user, `{"model":"gpt-4o","messages":`)
			_, _ = io.Copy(io.Discard, bad.Body)
			bad.Body.Close()
			if bad.StatusCode != http.StatusBadRequest {
				t.Fatalf("a body cut short: %d; want 400", bad.StatusCode)
			}
			resp := postAs(t, base, e2eClientKey, tc.user, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 || !strings.Contains(string(b), "error") {
				t.Fatalf("chat with every provider down: %d %s; want a 5xx error", resp.StatusCode, b)
			}
			a.ledger.Flush()
			st := adminStats(t, a, "adm-stats-1")
			if got := st.Get("turns").Int(); got != 1 {
				t.Errorf("turns %d; want 1 (the unanswered turn, not the 400): %s", got, st.Raw)
			}
			if got := st.Get("series.0.turns").Int(); got != 1 {
				t.Errorf("this hour's turns %d; want 1: %s", got, st.Raw)
			}
		})
	}
}

// TestStatsFilesAPaidOrderUnderItsPaymentHour: the hourly series files a
// paid order under the hour WeChat Pay says it was paid (success_time), not
// the hour its notification (or the query that found it) reached paygate.
// A user who paid at 10:58 and whose notification came at 11:03, a retry or
// the reconciler's query later, counted in 11:00's cost per transaction.
func TestStatsFilesAPaidOrderUnderItsPaymentHour(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	url, a := serveConfig(t, pricedAppConfig(t, up.URL)+"admin: {token: adm-stats-1}\n", io.Discard)
	ans := chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"I want premium"}]}`)
	orderNo := ans.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
	if orderNo == "" {
		t.Fatalf("no order: %s", ans.Raw)
	}
	// Paid two hours ago (China Standard Time, as WeChat Pay writes it);
	// the notification comes now.
	paidAt := time.Now().Add(-2 * time.Hour).In(time.FixedZone("CST", 8*3600)).Truncate(time.Second)
	tx, ok := a.sim.Order(orderNo)
	if !ok {
		t.Fatalf("order %s unknown to the simulator", orderNo)
	}
	tx.TradeState, tx.TradeStateDesc, tx.TransactionID, tx.BankType = "SUCCESS", "支付成功", "4200000000000000000000000123", "OTHERS"
	tx.SuccessTime = paidAt.Format(time.RFC3339)
	tx.Payer = &wxsim.Payer{OpenID: testOpenID}
	tx.Amount.PayerTotal, tx.Amount.PayerCurrency = tx.Amount.Total, "CNY"
	n, err := a.sim.BuildNotification(wxsim.NotificationSpec{EventType: wechatpay.EventTransactionSuccess, Summary: "支付成功", OriginalType: "transaction", Resource: tx})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if code, err := a.sim.Deliver(ctx, url+"/wechatpay/notify", n); err != nil || code/100 != 2 {
		t.Fatalf("deliver: %d %v", code, err)
	}
	if o, err := a.store.GetOrder(ctx, orderNo); err != nil || o.Status != store.StatusPaid {
		t.Fatalf("order after the notification: %+v %v; want paid", o, err)
	}
	a.ledger.Flush()
	st := adminStats(t, a, "adm-stats-1")
	if st.Get("paid_orders").Int() != 1 || st.Get("cost_per_transaction").Str == "" {
		t.Fatalf("stats %s; want one paid order", st.Raw)
	}
	want := paidAt.UTC().Truncate(time.Hour).Format(time.RFC3339)
	var filed []string
	for _, h := range st.Get("series").Array() {
		if h.Get("paid_orders").Int() > 0 {
			filed = append(filed, h.Get("hour").Str)
		}
	}
	if len(filed) != 1 || filed[0] != want {
		t.Errorf("paid order filed under %v; want %s, the hour it was paid: %s", filed, want, st.Get("series").Raw)
	}
	paidHour := st.Get(`series.#(hour=="` + want + `")`)
	if paidHour.Get("cost_per_transaction").Str != st.Get("cost_per_transaction").Str {
		t.Errorf("the paid hour's cost per transaction %s; want the order's, %s", paidHour.Raw, st.Get("cost_per_transaction").Str)
	}
}

// failingProvider answers every request with a 500 server_error saying
// message, as a provider that is down does.
func failingProvider(t *testing.T, message string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"message":"`+message+`","type":"server_error"}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}
