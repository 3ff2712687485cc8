package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments/audit"
)

// TestAuditEraseIsPerApp: OpenIDs are per app (SPEC 2.2), and paygate
// treats the same OpenID string under two clients as two users
// (TestTwoMiniPrograms). Erasing one app's user through the admin API must
// keep the other app's user's conversation texts (their evidence), and
// with two clients the API refuses to guess which one is meant.
func TestAuditEraseIsPerApp(t *testing.T) {
	m := newMerchant(t, nil)
	up := newScriptedProvider(t, moneyScript("create_order", func() string { return `{"sku":"premium-monthly"}` }))
	src := strings.Replace(twoAppsConfig, "payments:\n", "admin: {token: "+testAdminToken+"}\npayments:\n  catalog: [{sku: premium-monthly, name: \"Premium\", price: \"49.99\", max_quantity: 12}]\n", 1)
	url, a := twoAppsApp(t, up.URL, m.URL, src)
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	const shared = "oShared-openid-0001"
	chatWith(t, url, "sk-client-a", shared, "premium please (app A user)")
	chatWith(t, url, "sk-client-b", shared, "premium please (app B user)")
	ctx := context.Background()
	if _, err := a.audit.worker.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	texts := func() map[string]int {
		kept := map[string]int{}
		recs, err := a.store.ReadAudit(ctx, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			b, _ := audit.Decode(r.Body)
			if b.TextSHA256 == "" {
				continue
			}
			if _, err := a.store.GetAuditText(ctx, r.Seq); err == nil {
				kept[b.Client]++
			}
		}
		return kept
	}
	before := texts()
	if before["shop-a"] == 0 || before["shop-b"] == 0 {
		t.Fatalf("texts kept per client before the erasure: %v; want some of both", before)
	}
	erase := "/admin/api/audit/texts/" + shared
	if status, e := httpCall(t, http.MethodDelete, admin.URL+erase, "Bearer "+testAdminToken, ""); status != http.StatusBadRequest {
		t.Errorf("erase naming no client with two configured: %d %s; want 400", status, e.Raw)
	}
	status, e := httpCall(t, http.MethodDelete, admin.URL+erase+"?client=shop-a", "Bearer "+testAdminToken, "")
	if status != http.StatusOK || e.Get("erased").Int() != int64(before["shop-a"]) {
		t.Fatalf("erase shop-a's user: %d %s; want %d erased", status, e.Raw, before["shop-a"])
	}
	if after := texts(); after["shop-a"] != 0 || after["shop-b"] != before["shop-b"] {
		t.Errorf("texts kept per client after erasing shop-a's %s: %v; want shop-a none, shop-b all %d", shared, after, before["shop-b"])
	}
	// The erasure is itself in the chain, and only that covers the texts.
	// The erase appends its record before answering only within a bound
	// (audit.Worker.Erase); past it, under load, the record is appended by
	// the worker's next pass: the chain is read once the outbox is drained.
	if _, err := a.audit.worker.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	h, _ := a.store.AuditHead(ctx)
	last, err := a.store.ReadAudit(ctx, h.Seq, 1)
	if err != nil || len(last) != 1 {
		t.Fatalf("read the head record: %v", err)
	}
	if b, _ := audit.Decode(last[0].Body); b.Name != audit.ActionTextErased || b.Client != "shop-a" || b.User != shared || b.TextsErased != before["shop-a"] {
		t.Errorf("head record after the erasure: %s; want shop-a's %s erased", last[0].Body, shared)
	}
	if _, err := audit.Verify(ctx, a.store, audit.VerifyOptions{Texts: true}); err != nil {
		t.Errorf("verify after the erasure: %v", err)
	}
}
