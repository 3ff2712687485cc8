package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/accounting"
)

// TestConsoleCostChartBreaksAtHoursWithoutActivity: GET /admin/api/stats
// lists only the hours with activity, and the console's chart drew one line
// straight across an hour missing from the series, though its legend says
// gaps are hours without a paid order. Two paid hours, an hour with no
// activity, two paid hours: two lines, none across the quiet hour.
func TestConsoleCostChartBreaksAtHoursWithoutActivity(t *testing.T) {
	b := newBrowser(t)
	_, _, a, _ := consoleApp(t)
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-10 * time.Hour)
	cpt := func(s string) *string { return &s }
	hour := func(i int, paid int64, c *string) accounting.HourStats {
		return accounting.HourStats{Hour: h0.Add(time.Duration(i) * time.Hour).Format(time.RFC3339), Turns: 2, LLMCost: "0.02", PaidOrders: paid, CostPerTransaction: c}
	}
	stats := accounting.Stats{Turns: 8, PaidOrders: 4, LLMCost: "0.08", TransactionCost: "0.08", CostPerTransaction: cpt("0.02"),
		Series:  []accounting.HourStats{hour(0, 1, cpt("0.02")), hour(1, 1, cpt("0.02")), hour(3, 1, cpt("0.02")), hour(4, 1, cpt("0.02"))},
		ByModel: []accounting.ModelStats{}}
	srv := statsConsole(t, a, stats)

	b.do(t, "sign in", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("signout")))
	b.do(t, "cost", chromedp.Click(chromedp.CSS(`#tabs [data-tab="cost"]`)), chromedp.WaitVisible(chromedp.CSS(`#cost-chart svg circle`)))
	if n := evalJS[int](t, b, `document.querySelectorAll("#cost-chart svg circle").length`); n != 4 {
		t.Errorf("%d points drawn; want the 4 paid hours", n)
	}
	if n := evalJS[int](t, b, `document.querySelectorAll("#cost-chart svg polyline").length`); n != 2 {
		t.Errorf("%d lines drawn; want 2, broken at the hour without activity", n)
	}
	b.screenshot(t, "console-cost-gap.png")
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}

// statsConsole serves a's real admin API and console, but for a ledger
// whose GET /admin/api/stats answers stats (its clock is not the test's to
// move).
func statsConsole(t *testing.T, a *app, stats accounting.Stats) *httptest.Server {
	t.Helper()
	body, err := json.Marshal(stats)
	if err != nil {
		t.Fatal(err)
	}
	admin := a.adminHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/admin/api/stats" && r.Header.Get("Authorization") == "Bearer "+consoleToken {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
			return
		}
		admin.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestConsoleCostChartLabelsHoursInHalfHourZones: the chart's hours are
// labelled in the browser's zone, and a UTC hour starts at half past in
// India (UTC+05:30) and a quarter to in Nepal (UTC+05:45); the labels said
// ":00" there, the hour that began at 10:30 labelled 10:00.
func TestConsoleCostChartLabelsHoursInHalfHourZones(t *testing.T) {
	_, _, a, _ := consoleApp(t)
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	cpt := func(s string) *string { return &s }
	stats := accounting.Stats{Turns: 2, PaidOrders: 2, LLMCost: "0.04", TransactionCost: "0.04", CostPerTransaction: cpt("0.02"),
		Series: []accounting.HourStats{
			{Hour: h0.Format(time.RFC3339), Turns: 1, LLMCost: "0.02", PaidOrders: 1, CostPerTransaction: cpt("0.02")},
			{Hour: h0.Add(time.Hour).Format(time.RFC3339), Turns: 1, LLMCost: "0.02", PaidOrders: 1, CostPerTransaction: cpt("0.02")},
		},
		ByModel: []accounting.ModelStats{}}
	srv := statsConsole(t, a, stats)
	for _, tc := range []struct {
		zone   string
		offset int
	}{{"Asia/Kolkata", 5*3600 + 1800}, {"Asia/Kathmandu", 5*3600 + 2700}} {
		b := newBrowser(t)
		b.do(t, tc.zone, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: tc.zone})
			return err
		}))
		b.do(t, "sign in", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
			chromedp.WaitVisible(chromedp.ID("signout")))
		b.do(t, "cost", chromedp.Click(chromedp.CSS(`#tabs [data-tab="cost"]`)), chromedp.WaitVisible(chromedp.CSS(`#cost-chart svg circle`)))
		got := evalJS[[]string](t, b, `[...document.querySelectorAll("#cost-chart svg text")].map((e) => e.textContent).filter((s) => /:/.test(s))`)
		loc := time.FixedZone(tc.zone, tc.offset)
		want := []string{h0.In(loc).Format("01-02 15:04"), h0.Add(time.Hour).In(loc).Format("01-02 15:04")}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the chart's hours are labelled %q; want %q", tc.zone, got, want)
		}
	}
}

// TestConsoleCostShowsAmountsAtSixPlaces: the stats' amounts are exact (up
// to twelve places), and the console shows them at six, rounded half-up,
// with a positive amount that rounds to nothing as "< 0.000001", never as
// 0 (a cheap model's cost per transaction); the exact figure is the hover.
func TestConsoleCostShowsAmountsAtSixPlaces(t *testing.T) {
	b := newBrowser(t)
	_, _, a, _ := consoleApp(t)
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	cpt := func(s string) *string { return &s }
	stats := accounting.Stats{Turns: 3, PaidOrders: 2, LLMCost: "1.2345675", TransactionCost: "0.0000015", CostPerTransaction: cpt("0.0000004"),
		Series: []accounting.HourStats{
			{Hour: h0.Format(time.RFC3339), Turns: 2, LLMCost: "0.0000019", PaidOrders: 1, CostPerTransaction: cpt("0.000000000001")},
			{Hour: h0.Add(time.Hour).Format(time.RFC3339), Turns: 1, LLMCost: "1.2345656", PaidOrders: 1, CostPerTransaction: cpt("0.0000014")},
		},
		ByModel: []accounting.ModelStats{
			{Provider: "p", Model: "cheap", LLMCost: "0.0000004"},
			{Provider: "p", Model: "dear", LLMCost: "1.2345671"},
			{Provider: "p", Model: "unpriced", LLMCost: "0.000000"},
		}}
	srv := statsConsole(t, a, stats)
	b.do(t, "sign in", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("signout")))
	b.do(t, "cost", chromedp.Click(chromedp.CSS(`#tabs [data-tab="cost"]`)), chromedp.WaitVisible(chromedp.CSS(`#cost-chart svg circle`)),
		chromedp.WaitVisible(chromedp.ID("sum-cost")))
	cards := evalJS[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll("#panel-cost .card")].map((c) => [c.querySelector(".k").textContent, c.querySelector(".v").textContent]))`)
	for label, want := range map[string]string{"LLM cost": "1.234568", "LLM cost of paying turns": "0.000002", "Cost per transaction": "< 0.000001"} {
		if cards[label] != want {
			t.Errorf("card %q reads %q; want %q", label, cards[label], want)
		}
	}
	if got := evalJS[string](t, b, `document.querySelector("#sum-cost .v").textContent`); got != "< 0.000001" {
		t.Errorf("the summary's cost per transaction reads %q; want %q", got, "< 0.000001")
	}
	if got := evalJS[string](t, b, `document.querySelector("#sum-cost .v").title`); got != "0.0000004" {
		t.Errorf("the summary's cost per transaction's hover says %q; want the exact 0.0000004", got)
	}
	if got := evalJS[[]string](t, b, `[...document.querySelectorAll("#panel-cost table tbody tr")].map((r) => r.lastElementChild.textContent)`); !slices.Equal(got, []string{"< 0.000001", "1.234567", "0.000000"}) {
		t.Errorf("the models' LLM costs read %q; want %q", got, []string{"< 0.000001", "1.234567", "0.000000"})
	}
	tips := evalJS[[]string](t, b, `[...document.querySelectorAll("#cost-chart svg circle title")].map((e) => e.textContent)`)
	want := []string{h0.Format(time.RFC3339) + ": < 0.000001 per transaction, 0.000002 LLM cost, 1 paid",
		h0.Add(time.Hour).Format(time.RFC3339) + ": 0.000001 per transaction, 1.234566 LLM cost, 1 paid"}
	if !slices.Equal(tips, want) {
		t.Errorf("the chart's points say %q; want %q", tips, want)
	}
	if got := evalJS[string](t, b, `[...document.querySelectorAll("#panel-cost .card")].find((c) => c.querySelector(".k").textContent === "Cost per transaction").querySelector(".v").title`); got != "0.0000004" {
		t.Errorf("the cost per transaction's hover says %q; want the exact 0.0000004", got)
	}
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
