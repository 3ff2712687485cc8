package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestDailyLimitIsTheUsersAcrossSessions: one user asks for the same
// purchase from two conversations at once under max_orders_per_user_per_day
// 1. The repeats of one purchase are one order, counted once, so none of
// the concurrent turns is refused; the limit is the user's, not the
// conversation's, so the user's next purchase (another quantity) from a
// third conversation is refused; and it is not the client's, so another
// user's purchase goes through.
func TestDailyLimitIsTheUsersAcrossSessions(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var mu sync.Mutex
			quantity := map[string]string{} // by the turn's user message
			up := newScriptedProvider(t, func(body string) scriptRound {
				mu.Lock()
				q := quantity[gjson.Get(body, `messages.#(role=="user")#.content|@reverse|0`).Str]
				mu.Unlock()
				if q == "" {
					q = "1"
				}
				return moneyScript("create_order", func() string { return `{"sku":"premium-monthly","quantity":` + q + `}` })(body)
			})
			quantity["two months please"] = "2"
			url, a := serveConfig(t, premiumConfig(t, driver, up.URL, "  rules: {max_orders_per_user_per_day: 1}\n"), io.Discard)
			const user, other, turns = "oUser-sessions-daily-0001", "oOther-sessions-daily-002", 8
			chat := func(user, session, content string) (gjson.Result, string) {
				status, b, err := postSessionChat(url, user, session, userMessage(content))
				if err != nil {
					return gjson.Result{}, err.Error()
				}
				if status != http.StatusOK {
					return gjson.Result{}, strconv.Itoa(status) + " " + string(b)
				}
				return gjson.ParseBytes(b), ""
			}
			answers := make([]gjson.Result, turns)
			errs := make([]string, turns)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range turns {
				wg.Go(func() {
					<-start
					answers[i], errs[i] = chat(user, "chat-"+strconv.Itoa(i%2), "premium please")
				})
			}
			close(start)
			wg.Wait()
			orders, err := a.store.ListOrders(context.Background(), store.OrderFilter{Client: "bot", User: user})
			if err != nil {
				t.Fatal(err)
			}
			if len(orders) != 1 || a.sim.OrderCount() != 1 {
				t.Fatalf("stored orders %d, at WeChat Pay %d; want 1 and 1", len(orders), a.sim.OrderCount())
			}
			for i := range turns {
				if errs[i] != "" {
					t.Fatalf("turn %d: %s", i, errs[i])
				}
				acts := answers[i].Get("paygate.actions").Array()
				if len(acts) == 0 {
					t.Errorf("turn %d (chat-%d) named no order: %s; the repeats of one purchase count once", i, i%2, answers[i].Raw)
				}
				for _, act := range acts {
					if no := act.Get("order.order_no").Str; no != orders[0].OrderNo {
						t.Errorf("turn %d: %s names %s; want %s", i, act.Get("type").Str, no, orders[0].OrderNo)
					}
				}
			}

			ans, e := chat(user, "chat-c", "two months please")
			if e != "" {
				t.Fatal(e)
			}
			if n := ans.Get("paygate.actions.#").Int(); n != 0 || a.sim.OrderCount() != 1 {
				t.Errorf("the user's second purchase of the day, from a third conversation: paygate %s, %d orders at WeChat Pay; want it refused by the daily limit",
					ans.Get("paygate").Raw, a.sim.OrderCount())
			}
			ans, e = chat(other, "chat-a", "premium please")
			if e != "" {
				t.Fatal(e)
			}
			if got := ans.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str; got == "" || got == orders[0].OrderNo {
				t.Errorf("another user's first purchase of the day: paygate %s; want an order of their own", ans.Get("paygate").Raw)
			}
		})
	}
}
