package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// TestConsoleNamesItsTimeZone: the console shows times in the browser's
// zone, and says which: a manager on a laptop set to UTC comparing with
// WeChat Pay's merchant platform (Beijing time), or on a phone in Beijing
// reading a server log in UTC, read times hours apart with nothing saying
// so. In Beijing time (UTC+08:00) a deadline of 16:30 UTC is shown as
// 00:30 the next day, the page names UTC+08:00, and the time's tooltip
// gives it in UTC.
func TestConsoleNamesItsTimeZone(t *testing.T) {
	b := newBrowser(t)
	_, adminURL, a, _ := consoleApp(t)
	d := time.Now().UTC().Add(48 * time.Hour)
	deadline := time.Date(d.Year(), d.Month(), d.Day(), 16, 30, 0, 0, time.UTC)
	const no = "PGZONEHELD0001"
	if err := a.store.CreateOrder(context.Background(), &store.Order{OrderNo: no, Client: "bot", User: "oUser-zone", SKU: "premium-yearly",
		Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi",
		Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1, CreatedAt: time.Now().Truncate(time.Second), ExpiresAt: deadline}); err != nil {
		t.Fatal(err)
	}

	b.do(t, "Beijing time", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Shanghai"})
		return err
	}))
	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", no))))
	cell := row("approvals", no) + ` [data-deadline]`
	if got, want := evalJS[string](t, b, `document.querySelector(`+jsString(cell)+`)?.textContent ?? ""`), deadline.In(time.FixedZone("CST", 8*3600)).Format("2006-01-0215:04:05"); got != want {
		t.Errorf("deadline shown %q; want %q (16:30 UTC in Beijing time)", got, want)
	}
	if got := evalJS[string](t, b, `document.body.innerText.match(/UTC[+-]\d\d:\d\d/)?.[0] ?? "no zone named"`); got != "UTC+08:00" {
		t.Errorf("zone named on the page: %q; want UTC+08:00", got)
	}
	if got, want := evalJS[string](t, b, `document.querySelector(`+jsString(cell+" [title]")+`)?.title ?? ""`), deadline.Format("2006-01-02 15:04:05")+" UTC"; got != want {
		t.Errorf("deadline tooltip %q; want %q", got, want)
	}
}
