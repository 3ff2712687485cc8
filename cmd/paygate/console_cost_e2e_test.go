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
