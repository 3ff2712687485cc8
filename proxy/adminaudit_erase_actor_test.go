package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/audit"
)

// TestAdminAuditErasureRecordsWhoAndWhy: an erasure of a user's
// conversation texts, the one admin action that deletes what the chain's
// money records were made from, is recorded in the chain with who asked
// (kind admin, the request's id and remote address) and the operator and
// reason its optional body gives, as a manager's decision is; without a
// body, still with the request's id and address. A body a decision would
// refuse (an unknown member) is a 400 that erases nothing.
func TestAdminAuditErasureRecordsWhoAndWhy(t *testing.T) {
	base, st, _ := auditAdmin(t)
	ctx := context.Background()
	erase := func(user, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodDelete, base+"/admin/api/audit/texts/"+user, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+auditAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Request-Id")
	}
	if status, _ := erase("oBob", `{"operater":"li"}`); status != http.StatusBadRequest {
		t.Errorf("erase with a misspelt member: %d; want 400", status)
	}
	if _, err := st.GetAuditText(ctx, 2); err != nil {
		t.Errorf("oBob's text after a refused erasure: %v; want it kept", err)
	}
	for _, tc := range []struct {
		user, body, operator, reason string
	}{
		{user: "oAlice", body: `{"operator":"ops-li","reason":"user request, ticket 42"}`, operator: "ops-li", reason: "user request, ticket 42"},
		{user: "oBob"},
	} {
		status, id := erase(tc.user, tc.body)
		if status != http.StatusOK || id == "" {
			t.Fatalf("erase %s: %d (request id %q); want 200 with an id", tc.user, status, id)
		}
		head, err := st.AuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := st.ReadAudit(ctx, head.Seq, 1)
		if err != nil || len(recs) != 1 {
			t.Fatalf("read the head record: %v %v", recs, err)
		}
		a := gjson.ParseBytes(recs[0].Body)
		if a.Get("action").Str != audit.ActionTextErased || a.Get("user").Str != tc.user {
			t.Fatalf("head record %s; want the erasure of %s", recs[0].Body, tc.user)
		}
		actor := a.Get("actor")
		if actor.Get("kind").Str != "admin" || actor.Get("request_id").Str != id || !strings.HasPrefix(actor.Get("remote_addr").Str, "127.0.0.1:") ||
			actor.Get("operator").Str != tc.operator || actor.Get("reason").Str != tc.reason {
			t.Errorf("erasure of %s recorded with actor %s; want admin, request %s from 127.0.0.1, operator %q, reason %q",
				tc.user, actor.Raw, id, tc.operator, tc.reason)
		}
	}
}
