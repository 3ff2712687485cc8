package main

import (
	"context"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone database in the test binary: the test runs on a host without one

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/store"
)

// TestConsoleNamesTheOffsetOfATimeAcrossSummerTime: the bar names the
// browser's zone by its offset now, and a time from the other side of a
// summer-time change is shown at that time's own offset. In New York in
// December an order created in July was shown at EDT (UTC-04:00) under a bar
// saying UTC-05:00: an operator matching it with a server log in UTC was an
// hour off. Such a time names its own offset, in the table and the detail.
func TestConsoleNamesTheOffsetOfATimeAcrossSummerTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatalf("America/New_York: %v (the test binary embeds time/tzdata)", err)
	}
	now := time.Now().In(ny)
	_, offNow := now.Zone()
	created := now.Add(-90 * 24 * time.Hour).Truncate(time.Second)
	for _, off := created.Zone(); off == offNow; _, off = created.Zone() {
		created = created.Add(-30 * 24 * time.Hour)
	}
	_, off := created.Zone()
	wantZone := "UTC-04:00"
	if off == -5*3600 {
		wantZone = "UTC-05:00"
	}

	b := newBrowser(t)
	_, adminURL, a, _ := consoleApp(t)
	const no = "PGDSTORDER0001"
	if err := a.store.CreateOrder(context.Background(), &store.Order{OrderNo: no, Client: "bot", User: "oUser-dst", SKU: "premium-monthly",
		Description: "Premium tier, 1 month", Quantity: 1, AmountFen: 1999, Currency: "CNY", PayMethod: "jsapi", Status: store.StatusPaid,
		ClaimKey: "k" + no, Generation: 1, CreatedAt: created.UTC(), ExpiresAt: created.UTC().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	b.do(t, "New York time", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/New_York"})
		return err
	}))
	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")))
	b.do(t, "orders", chromedp.Click(chromedp.CSS(`#tabs [data-tab="orders"]`)),
		chromedp.WaitVisible(chromedp.CSS(row("orders", no))))
	if s := b.text(t, "#zone"); !strings.Contains(s, map[bool]string{true: "UTC-04:00", false: "UTC-05:00"}[offNow == -4*3600]) {
		t.Fatalf("bar %q; want the offset now", s)
	}
	local := created.Format("2006-01-02") + created.Format("15:04:05")
	if got := evalJS[string](t, b, `document.querySelector(`+jsString(row("orders", no)+` td[data-label="Created"]`)+`)?.textContent ?? ""`); got != local+wantZone {
		t.Errorf("created shown %q; want %q: %s in New York, at that time's offset, which the bar's is not", got, local+wantZone, created.UTC())
	}
	b.do(t, "open it", chromedp.Click(chromedp.CSS(row("orders", no)+" button")),
		waitFor("the detail", `document.querySelector("#panel-orders .detail:not([hidden]) h3")?.textContent.includes(`+jsString(no)+`)`))
	if got, want := evalJS[string](t, b, `[...document.querySelectorAll("#panel-orders .detail dt")].find((e) => e.textContent === "Created")?.nextElementSibling.textContent ?? ""`),
		created.Format("2006-01-02 15:04:05")+" "+wantZone; got != want {
		t.Errorf("detail's created %q; want %q", got, want)
	}
}
