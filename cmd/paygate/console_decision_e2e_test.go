package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// TestConsoleSaysWhatADecisionFound: a manager's page goes stale while it is
// open (another manager, another tab or another replica decides; a held
// order's approval deadline passes), and the manager then decides. The
// notice says in words what happened instead of the API's "order is not
// awaiting approval: PG… is awaiting_payment": that the order was already
// approved (and is awaiting payment) or already rejected, or that it expired
// before anyone decided, and that this click changed nothing; the row leaves
// the queue. An approval whose WeChat Pay order did not open says it was
// approved, not that it "could not approve" an order no longer held; one
// WeChat Pay refused, whose close paygate could not record (the order is
// still creating), says so, not that the user gets the payment once it
// opens.
func TestConsoleSaysWhatADecisionFound(t *testing.T) {
	b := newBrowser(t)
	// WeChat Pay refuses the fifth and sixth users' orders for good, and
	// the store fails to record them closed (the sixth's has lost its
	// data): they stay creating.
	const refusedUser, lostUser = "oUser-console-five", "oUser-console-six"
	tr := &numberUsedElsewhere{users: []string{refusedUser, lostUser}}
	url, adminURL, a, _ := consoleApp(t, withWeChatPayTransport(tr),
		withStoreWrap(func(st store.Store) store.Store {
			return closeUnrecorded{closeUnrecorded{st, refusedUser, storeDown}, lostUser, dataLost}
		}))
	tr.sim.Store(a.sim)
	ctx := context.Background()
	approvedElsewhere, _ := orderFor(t, url, "oUser-console-one", "two years of premium please")
	rejectedElsewhere, _ := orderFor(t, url, "oUser-console-two", "two years of premium please")
	unopened, _ := orderFor(t, url, "oUser-console-four", "two years of premium please")
	refused, _ := orderFor(t, url, refusedUser, "two years of premium please")
	lost, _ := orderFor(t, url, lostUser, "two years of premium please")
	// Held past its approval deadline, which the sweep has not reached yet.
	const lapsed = "PGHELDLAPSED0001"
	deadline := time.Now().Add(-time.Second).Truncate(time.Second)
	if err := a.store.CreateOrder(ctx, &store.Order{OrderNo: lapsed, Client: "bot", User: "oUser-console-three", SKU: "premium-yearly",
		Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi",
		Status: store.StatusApprovalRequired, ClaimKey: "k" + lapsed, Generation: 1, CreatedAt: deadline.Add(-time.Hour), ExpiresAt: deadline}); err != nil {
		t.Fatal(err)
	}
	// Held, their deadline ahead: one put in review behind the page's
	// back, one expired because another order of the same purchase took
	// its place (superseded), well before its deadline.
	const reviewed, superseded = "PGHELDREVIEW0001", "PGHELDSUPERSEDED"
	for i, no := range []string{reviewed, superseded} {
		if err := a.store.CreateOrder(ctx, &store.Order{OrderNo: no, Client: "bot", User: "oUser-console-held" + string(rune('a'+i)), SKU: "premium-yearly",
			Description: "Premium tier, 1 year", Quantity: 2, AmountFen: 99800, Currency: "CNY", PayMethod: "jsapi",
			Status: store.StatusApprovalRequired, ClaimKey: "k" + no, Generation: 1, CreatedAt: time.Now().Add(-time.Minute), ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	moveBehind := func(no string, to store.OrderStatus, reason string) {
		t.Helper()
		o, err := a.store.GetOrder(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		o.Status, o.ReviewReason = to, reason
		if err := a.store.UpdateOrder(ctx, o, store.StatusApprovalRequired); err != nil {
			t.Fatal(err)
		}
	}

	b.do(t, "sign in", chromedp.Navigate(adminURL+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), consoleToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", approvedElsewhere))), chromedp.WaitVisible(chromedp.CSS(row("approvals", rejectedElsewhere))),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", lapsed))), chromedp.WaitVisible(chromedp.CSS(row("approvals", unopened))),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", refused))), chromedp.WaitVisible(chromedp.CSS(row("approvals", lost))),
		chromedp.WaitVisible(chromedp.CSS(row("approvals", reviewed))), chromedp.WaitVisible(chromedp.CSS(row("approvals", superseded))))

	decideElsewhere := func(no, verb string) {
		t.Helper()
		resp, body := adminDo(t, http.MethodPost, adminURL+"/admin/api/approvals/"+no+"/"+verb,
			map[string]string{"Authorization": "Bearer " + consoleToken, console.CSRFHeader: "1"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s elsewhere: %d %s", verb, no, resp.StatusCode, body)
		}
	}
	// The page is settled when no read of it is on its way (the panel's
	// and the summary's are aria-busy until drawn): a read taken after a
	// change behind its back, answering while the manager's confirmation
	// is not yet open, takes the order out of the queue before the click.
	settled := waitFor("the page to settle", `!document.querySelector("[aria-busy]")`)
	// ask opens the confirmation of verb on no, as a manager does on a
	// page not yet stale; decideHere confirms it, once the page went stale
	// under the open confirmation (a redraw waits for a confirmation).
	ask := func(no, verb string) {
		t.Helper()
		b.do(t, verb+" "+no, settled, chromedp.Click(chromedp.CSS(`button[data-action="`+verb+`"][data-order-no="`+no+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)))
	}
	decideHere := func(no, verb string) string {
		t.Helper()
		b.do(t, "confirm "+verb+" "+no, chromedp.Click(chromedp.CSS(`button[data-action="confirm"][data-order-no="`+no+`"]`)),
			waitFor("the notice", `!document.getElementById("notice").hidden && document.getElementById("notice").textContent.includes(`+jsString(no)+`)`),
			chromedp.WaitNotPresent(chromedp.CSS(row("approvals", no))), settled)
		return b.text(t, "#notice")
	}

	tests := []struct {
		name, no, verb string
		elsewhere      string // the decision made behind the page's back
		down           bool   // WeChat Pay fails every prepay attempt of the decision
		behind         func() // the order changed behind the page's back
		want           []string
		unwanted       []string // not in the notice
		wantStatus     store.OrderStatus
	}{
		{name: "rejecting an order another manager approved", no: approvedElsewhere, verb: "reject", elsewhere: "approve",
			want: []string{"already approved", "awaiting payment", "nothing changed"}, wantStatus: store.StatusAwaitingPayment},
		{name: "approving an order another manager rejected", no: rejectedElsewhere, verb: "approve", elsewhere: "reject",
			want: []string{"already rejected", "nothing changed"}, wantStatus: store.StatusRejected},
		{name: "approving an order past its deadline", no: lapsed, verb: "approve",
			want: []string{"expired", "approval deadline", "before anyone decided", "can no longer be approved"}, wantStatus: store.StatusExpired},
		// Neither decided nor past its deadline: said as what the order
		// is, not as "already approved" or "its deadline passed".
		{name: "approving an order put in review", no: reviewed, verb: "approve",
			behind:     func() { moveBehind(reviewed, store.StatusNeedsReview, "paid_after_approval_required") },
			want:       []string{"in review", "paid_after_approval_required", "can no longer be approved", "nothing changed"},
			unwanted:   []string{"already approved"},
			wantStatus: store.StatusNeedsReview},
		{name: "rejecting an order superseded by another of its purchase", no: superseded, verb: "reject",
			behind:     func() { moveBehind(superseded, store.StatusExpired, "") },
			want:       []string{"expired", "another order of the same purchase", "can no longer be rejected", "nothing changed"},
			unwanted:   []string{"deadline", "passed"},
			wantStatus: store.StatusExpired},
		{name: "approving while WeChat Pay fails", no: unopened, verb: "approve", down: true,
			want: []string{"Approved " + unopened, "did not open", "SYSTEM_ERROR", "creating", "keeps asking WeChat Pay"}, wantStatus: store.StatusCreating},
		// Refused for good, and its close not recorded: creating, but no
		// payment is coming of it unless WeChat Pay, asked again by the
		// reconciler, takes it after all.
		{name: "approving an order WeChat Pay refuses, its close unrecorded", no: refused, verb: "approve",
			want:       []string{"Approved " + refused, "WeChat Pay refused its order", "OUT_TRADE_NO_USED", "could not record it closed", "creating", "closes it if WeChat Pay refuses it again"},
			unwanted:   []string{"keeps asking", "gets the payment", "did not open", storeAddr},
			wantStatus: store.StatusCreating},
		// The same on a store that lost its data: it refuses the
		// reconciler's commands too until every replica restarts.
		{name: "approving an order WeChat Pay refuses, its close unrecorded by a store that lost its data", no: lost, verb: "approve",
			want:       []string{"Approved " + lost, "WeChat Pay refused its order", "OUT_TRADE_NO_USED", "could not record it closed", "creating", store.DataLostAdvice},
			unwanted:   []string{"keeps asking", "gets the payment", "did not open", "closes it if", storeAddr},
			wantStatus: store.StatusCreating},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ask(tt.no, tt.verb)
			if tt.elsewhere != "" {
				decideElsewhere(tt.no, tt.elsewhere)
			}
			if tt.behind != nil {
				tt.behind()
			}
			if tt.down {
				// As many as the prepay's attempts (its error says "attempts 3").
				a.sim.InjectFault(wxsim.Fault{Op: "prepay", Kind: wxsim.FaultSystemError, Times: 3})
			}
			got := decideHere(tt.no, tt.verb)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("notice %q lacks %q", got, w)
				}
			}
			for _, w := range tt.unwanted {
				if strings.Contains(got, w) {
					t.Errorf("notice %q says %q", got, w)
				}
			}
			for _, raw := range []string{"is not awaiting approval", "awaiting_payment", "Could not", "approved, but"} {
				if strings.Contains(got, raw) {
					t.Errorf("notice %q says %q: the API's words, not what happened", got, raw)
				}
			}
			if o, err := a.store.GetOrder(ctx, tt.no); err != nil || o.Status != tt.wantStatus {
				t.Errorf("order %+v %v; want %s", o, err, tt.wantStatus)
			}
		})
	}
	if got := a.sim.Prepays(rejectedElsewhere) + a.sim.Prepays(lapsed); got != 0 {
		t.Errorf("%d prepays of the rejected and the lapsed order; want none", got)
	}
	if got := a.sim.Prepays(approvedElsewhere); got != 1 {
		t.Errorf("%d prepays of the order approved elsewhere; want 1", got)
	}
	b.do(t, "the emptied queue", waitFor("it", `document.querySelector("#panel-approvals").textContent.includes("Nothing waits for approval")`))
	if f := b.pageFaults(); len(f) > 0 {
		t.Errorf("the page logged faults: %v", f)
	}
}
