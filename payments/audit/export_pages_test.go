package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestExportAndVerifyAcrossPages: a chain longer than two of the reads
// export and verify make (readPage records each) is exported from the
// first record, from either side of a page's end and from the last one,
// each record once and in order, and verifies with pages of any size:
// no record is lost or written twice where one read ends and the next
// begins.
func TestExportAndVerifyAcrossPages(t *testing.T) {
	const n = 2*readPage + 3
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			st := e.store()
			ctx := context.Background()
			var head store.AuditHead
			hashes := []string{""}
			for i := 1; i <= n; i++ {
				rec, err := Seal(head, Record{EventID: fmt.Sprintf("evt_%d", i), AppendedAt: time.Now(),
					Action: Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: "oAlice",
						OrderNo: fmt.Sprintf("PG%04d", i), AmountFen: int64(i)}})
				if err != nil {
					t.Fatal(err)
				}
				if err := st.AppendAudit(ctx, rec); err != nil {
					t.Fatal(err)
				}
				head = store.AuditHead{Seq: rec.Seq, Hash: rec.Hash}
				hashes = append(hashes, rec.Hash)
			}
			for _, from := range []uint64{1, readPage - 1, readPage, readPage + 1, 2 * readPage, n} {
				var buf bytes.Buffer
				got, err := Export(ctx, st, &buf, ExportOptions{From: from})
				if err != nil {
					t.Fatalf("export from %d: %v", from, err)
				}
				want := n - int(from) + 1
				sc := bufio.NewScanner(&buf)
				seq := from
				for sc.Scan() {
					var en Entry
					if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
						t.Fatalf("export from %d, line %d: %v", from, seq-from+1, err)
					}
					if en.Seq != seq || en.Hash != hashes[seq] || en.PrevHash != hashes[seq-1] {
						t.Fatalf("export from %d, line %d: record %d; want record %d", from, seq-from+1, en.Seq, seq)
					}
					seq++
				}
				if got != want || int(seq-from) != want {
					t.Errorf("export from %d: said %d, wrote %d records; want %d", from, got, seq-from, want)
				}
			}
			for _, page := range []int{1, 7, readPage - 1, readPage, readPage + 1, n} {
				res, err := Verify(ctx, st, VerifyOptions{PageSize: page})
				if err != nil || res.Records != n || res.Head != head {
					t.Errorf("verify with pages of %d: %d records, head %v, %v; want %d records to head %v", page, res.Records, res.Head, err, n, head)
				}
			}
		})
	}
}
