package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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
	body, err := json.Marshal(stats)
	if err != nil {
		t.Fatal(err)
	}
	// The real admin API, but for a ledger with these hours (its clock is
	// not the test's to move).
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
