package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// TestExport: one JSON line per record, bodies byte for byte as hashed (so
// the export alone proves each hash and link), texts when asked and kept.
func TestExport(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			recs := buildChain(t, e, 4)
			ctx := context.Background()
			if _, err := e.store().EraseAuditText(ctx, "shop-bot", "oBob"); err != nil { // records 2 and 4
				t.Fatal(err)
			}
			cases := []struct {
				name  string
				opts  ExportOptions
				first uint64
			}{
				{name: "all with texts", opts: ExportOptions{Texts: true}, first: 1},
				{name: "from 3 without texts", opts: ExportOptions{From: 3}, first: 3},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					var buf bytes.Buffer
					n, err := Export(ctx, e.store(), &buf, c.opts)
					if err != nil {
						t.Fatal(err)
					}
					if want := len(recs) - int(c.first) + 1; n != want {
						t.Fatalf("exported %d; want %d", n, want)
					}
					sc := bufio.NewScanner(&buf)
					seq, prev := c.first, recs[c.first-1].PrevHash
					for sc.Scan() {
						var en Entry
						if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
							t.Fatalf("line %d: %v", seq, err)
						}
						if en.Seq != seq || en.PrevHash != prev || Hash(en.Body) != en.Hash || en.Hash != recs[seq-1].Hash {
							t.Errorf("line %d: seq %d prev %.8s hash %.8s body hash %.8s", seq, en.Seq, en.PrevHash, en.Hash, Hash(en.Body))
						}
						body, err := Decode(en.Body)
						if err != nil {
							t.Fatal(err)
						}
						switch {
						case !c.opts.Texts:
							if en.Text != nil || en.TextErased {
								t.Errorf("line %d: text without -text", seq)
							}
						case seq%2 == 0:
							if en.Text != nil || !en.TextErased {
								t.Errorf("line %d: got text %v erased %v; want erased", seq, en.Text, en.TextErased)
							}
						default:
							if en.Text == nil || TextHash([]byte(*en.Text)) != body.TextSHA256 {
								t.Errorf("line %d: text %v does not match %s", seq, en.Text, body.TextSHA256)
							}
						}
						prev = en.Hash
						seq++
					}
					if seq != uint64(len(recs))+1 {
						t.Errorf("read %d lines", seq-c.first)
					}
				})
			}
		})
	}
}
