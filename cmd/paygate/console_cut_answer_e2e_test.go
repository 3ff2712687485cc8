package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// TestConsoleCutAnswerIsNoAnswer: a decision paygate made whose answer
// came cut short (the connection dropped after the headers, a proxy that
// gave up mid-body) is a decision whose answer never came: the console asks
// paygate what became of the order. It read the cut body as "not JSON",
// handed the page null for a 200, and said "Could not reject PG…: Cannot
// read properties of null" of a rejection paygate made.
func TestConsoleCutAnswerIsNoAnswer(t *testing.T) {
	b := newBrowser(t)
	_, _, a, _ := consoleApp(t)
	ctx := context.Background()
	const no = "PGCUTREJECT00001"
	if err := a.store.CreateOrder(ctx, &store.Order{OrderNo: no, Client: "bot", User: "oUser-" + no, SKU: "premium-yearly",
		Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi",
		Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1, CreatedAt: time.Now().Add(-time.Minute).Truncate(time.Second),
		ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// A proxy in front of the admin listener: the rejection reaches
	// paygate, which decides, and its 200 comes with half its body, the
	// connection then closed.
	admin := a.adminHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/"+no+"/reject") {
			admin.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			rec.Code, http.StatusText(rec.Code), len(body))
		_, _ = bw.Write(body[:len(body)/2])
		_ = bw.Flush()
	}))
	t.Cleanup(srv.Close)

	settled := waitFor("the page to settle", `!document.querySelector("[aria-busy]")`)
	b.do(t, "sign in", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", no))), settled)
	b.do(t, "reject "+no, chromedp.Click(chromedp.CSS(`button[data-action="reject"][data-order-no="`+no+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)),
		waitFor("the notice", `!document.getElementById("notice").hidden && document.getElementById("notice").textContent.includes(`+jsString(no)+`)`),
		settled)
	if o, err := a.store.GetOrder(ctx, no); err != nil || o.Status != store.StatusRejected {
		t.Fatalf("%s after its rejection's answer was cut: %v %v; want rejected (the test needs paygate to have decided)", no, o, err)
	}
	if s := b.text(t, "#notice"); strings.Contains(s, "Could not") || !strings.Contains(s, "it was made") || !strings.Contains(s, "rejected now") {
		t.Errorf("notice %q; want it said that the answer never came whole, but the rejection was made", s)
	}
}
