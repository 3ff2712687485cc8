package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestAdminAuditTextPageIsBounded: GET /admin/api/audit?text=1 ends a page
// once its conversation texts reach auditPageTextBytes, and next_from names
// the first record left out, so that following next_from still serves every
// record and every text once. A text is a turn's whole request (up to
// server.max_body_bytes, 8 MiB by default, and more after payment rounds),
// and a page of up to 1000 of them was built whole in memory: gigabytes for
// one admin request, in the process that serves the bots' payments.
//
// The bound is lowered to 64 KiB for the test: the pages are the same with
// texts of 25 KiB as with texts of 3.2 MiB (a page without the bound holds
// all five), and building, storing, serving and decoding 16 MiB of texts per
// driver took 101 s of the package's run under -race in CI.
func TestAdminAuditTextPageIsBounded(t *testing.T) {
	old := auditPageTextBytes
	auditPageTextBytes = 64 << 10
	t.Cleanup(func() { auditPageTextBytes = old })
	const n = 5
	size := auditPageTextBytes * 2 / 5 // two fit in a page, three do not
	var acts []auditAct
	for i := range n {
		text := fmt.Sprintf(`[{"role":"user","content":"%d %s"}]`, i+1, strings.Repeat("x", size))
		acts = append(acts, auditAct{audit.Action{Name: "order.created", Client: "shop-bot", User: "oAlice", OrderNo: fmt.Sprintf("PG%d", i+1), AmountFen: 4999},
			&payments.Turn{Messages: []byte(text), Provider: "fake", Model: "vendor/upstream-model"}})
	}
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			st := testdrivers.NewPlace(t, driver, nil).Open()
			base, _ := auditAdminOn(t, st, acts)
			var pages [][]int
			texts := 0
			for from, q := 1, 0; from != 0; q++ {
				if q > n {
					t.Fatalf("no end after %d pages: %v", q, pages)
				}
				status, out := auditAdminDo(t, "GET", fmt.Sprintf("%s/admin/api/audit?from=%d&limit=1000&text=1", base, from), auditAdminToken)
				if status != http.StatusOK {
					t.Fatalf("from %d: %d %v", from, status, out)
				}
				got := auditSeqs(out)
				if len(got) == 0 || got[0] != from {
					t.Fatalf("from %d: records %v", from, got)
				}
				pages = append(pages, got)
				bytes := 0
				for i, r := range out["records"].([]any) {
					text, _ := r.(map[string]any)["text"].(string)
					if !strings.HasPrefix(text, fmt.Sprintf(`[{"role":"user","content":"%d `, got[i])) || len(text) != len(acts[got[i]-1].turn.Messages) {
						t.Fatalf("record %d: text of %d bytes, not its own", got[i], len(text))
					}
					bytes += len(text)
					texts++
				}
				if len(got) > 1 && bytes > auditPageTextBytes {
					t.Errorf("page from %d: %d records with %d bytes of text; want at most %d bytes, or a single record", from, len(got), bytes, auditPageTextBytes)
				}
				from = 0
				if nf, ok := out["next_from"].(float64); ok {
					from = int(nf)
				}
			}
			if fmt.Sprint(pages) != "[[1 2] [3 4] [5]]" || texts != n {
				t.Errorf("pages %v with %d texts; want [[1 2] [3 4] [5]], every text once", pages, texts)
			}
		})
	}
}
