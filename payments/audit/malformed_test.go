package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
)

// rawPutBytes stores v, whatever it is, as the record at position pos.
func (e *env) rawPutBytes(pos uint64, v []byte) {
	e.t.Helper()
	switch e.driver {
	case "embedded":
		e.boltEdit(func(tx *bolt.Tx) error { return tx.Bucket([]byte("audit")).Put(u64(pos), v) })
	case "redis":
		if err := e.redis().Client().HSet(context.Background(), e.prefix+"{audit}:rec", strconv.FormatUint(pos, 10), v).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestVerifyNamesAnUndecodableRecord: a stored record edited into
// something that is not a record at all (not JSON, a field of the wrong
// type, a huge value) is a changed record: verify names it, as it names a
// record whose body was edited, rather than failing the read of the page
// it is on with a decode error that names no record.
func TestVerifyNamesAnUndecodableRecord(t *testing.T) {
	cases := []struct {
		name    string
		v       []byte
		decodes bool // a record, though not this one: export copies it
	}{
		{"not json", []byte("garbage{"), false},
		{"truncated", []byte(`{"seq":3,"prev_hash":"ab`), false},
		{"seq of the wrong type", []byte(`{"seq":"3","prev_hash":"","hash":"","body":""}`), false},
		{"body of the wrong type", []byte(`{"seq":3,"prev_hash":"","hash":"","body":{"a":1}}`), false},
		{"negative seq", []byte(`{"seq":-3}`), false},
		{"huge", []byte(`{"seq":3,"body":"` + strings.Repeat("A", 4<<20) + `"}`), true},
		{"json null", []byte(`null`), true},
		{"empty", []byte{}, false},
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					for _, pos := range []uint64{3, 5} { // inside a page; first of the second
						e := newEnv(t, driver)
						buildChain(t, e, 5)
						e.rawPutBytes(pos, c.v)
						_, err := Verify(context.Background(), e.store(), VerifyOptions{PageSize: 4, Texts: true})
						wantBroken(t, err, pos, "")
						if c.decodes {
							continue
						}
						var out bytes.Buffer
						n, err := Export(context.Background(), e.store(), &out, ExportOptions{})
						if !errors.Is(err, ErrBroken) || n != int(pos-1) || !strings.Contains(err.Error(), fmt.Sprintf("record %d", pos)) {
							t.Errorf("export with record %d not a record: %d records, %v; want the %d before it and an error naming it", pos, n, err, pos-1)
						}
					}
					// Beyond the head: stored outside the chain's append.
					e := newEnv(t, driver)
					buildChain(t, e, 5)
					e.rawPutBytes(6, c.v)
					_, err := Verify(context.Background(), e.store(), VerifyOptions{PageSize: 4, Texts: true})
					wantBroken(t, err, 6, "beyond")
				})
			}
		})
	}
}

// TestVerifyFindsACopyBeyondTheHead: a copy of an earlier record stored
// after the head (a record duplicated into the next place, where an
// auditor's tools or the next append would find it) is outside the
// chain's append, whatever seq its body and envelope claim: verify took
// the record's own seq for its place, so a copy claiming a seq at or
// before the head passed.
func TestVerifyFindsACopyBeyondTheHead(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, copyOf := range []int{1, 3, 5} {
				t.Run(fmt.Sprint("copy of record ", copyOf), func(t *testing.T) {
					e := newEnv(t, driver)
					recs := buildChain(t, e, 5)
					e.rawPut(6, recs[copyOf-1])
					_, err := Verify(context.Background(), e.store(), VerifyOptions{PageSize: 4})
					wantBroken(t, err, 6, "beyond")
				})
			}
		})
	}
}

// TestVerifyFindsARecordAfterAGapBeyondTheHead: a record stored beyond the
// head with an empty place before it is outside the chain's append as much
// as one right after the head. The embedded store found it (its read seeks
// the next key); Redis read only the place right after the head, and
// verify passed.
func TestVerifyFindsARecordAfterAGapBeyondTheHead(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			recs := buildChain(t, e, 5)
			forged, err := Seal(store.AuditHead{Seq: 6, Hash: recs[4].Hash}, Record{EventID: "evt_forged", AppendedAt: time.Now(),
				Action: Action{Time: time.Now(), Name: "order.created", User: "oBob", AmountFen: 1}})
			if err != nil {
				t.Fatal(err)
			}
			e.rawPut(7, forged)
			_, err = Verify(context.Background(), e.store(), VerifyOptions{PageSize: 4})
			wantBroken(t, err, 7, "beyond")
		})
	}
}

// TestExportStopsAtAMissingRecord: an export of a chain with a record
// deleted from the middle, or cut from the end with the head left, ended
// on Redis at the gap with success (its read stops at an empty place),
// and on the embedded store skipped the gap: either way the auditor got
// a chain with a hole and exit 0. It now writes the records before the
// hole and fails naming the missing record.
func TestExportStopsAtAMissingRecord(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, missing := range []uint64{3, 6} {
				t.Run(fmt.Sprint("record ", missing), func(t *testing.T) {
					e := newEnv(t, driver)
					buildChain(t, e, 6)
					e.rawDelete(missing)
					var out bytes.Buffer
					n, err := Export(context.Background(), e.store(), &out, ExportOptions{})
					if !errors.Is(err, ErrBroken) || !strings.Contains(fmt.Sprint(err), fmt.Sprintf("record %d", missing)) || n != int(missing-1) {
						t.Errorf("export with record %d deleted: %d records, %v; want the %d before it and an error naming it", missing, n, err, missing-1)
					}
				})
			}
		})
	}
}

// TestVerifySaysTheHeadIsNotAHead: a head edited into something that is
// not one (a seq that is no number; on the embedded store, a value that is
// not JSON) is reported as the head's fault. Redis read such a seq as 0,
// and verify said "broken at record 0: its hash differs from the store's
// head hash", a record that does not exist.
func TestVerifySaysTheHeadIsNotAHead(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			buildChain(t, e, 3)
			switch driver {
			case "embedded":
				e.boltEdit(func(tx *bolt.Tx) error {
					return tx.Bucket([]byte("audit_meta")).Put([]byte("head"), []byte("{garbage"))
				})
			case "redis":
				if err := e.redis().Client().HSet(context.Background(), e.prefix+"{audit}:head", "seq", "3x").Err(); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Verify(context.Background(), e.store(), VerifyOptions{})
			t.Logf("verify: %v", err)
			if err == nil || !strings.Contains(err.Error(), "head") || strings.Contains(err.Error(), "record 0") {
				t.Errorf("verify with a head that is not one: %v; want an error about the head", err)
			}
		})
	}
}

// TestVerifyNamesWhereAStrayIsStored: a record stored beyond the head is
// named by the place it is stored at, not by the seq it claims: an auditor
// looking at the place named must find it. The embedded store's read seeks
// past empty places, so a copy of record 3 stored at 8 was named as 6, an
// empty place, where Redis named 8.
func TestVerifyNamesWhereAStrayIsStored(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range []struct {
				name       string
				at, claims uint64
			}{
				{"a copy of record 3 past an empty place", 8, 3},
				{"a record claiming a later place", 6, 9},
				{"a record claiming a later place past an empty place", 7, 9},
			} {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, driver)
					recs := buildChain(t, e, 5)
					r := recs[2]
					r.Seq = c.claims
					e.rawPut(c.at, r)
					_, err := Verify(context.Background(), e.store(), VerifyOptions{PageSize: 4})
					wantBroken(t, err, c.at, "beyond")
				})
			}
		})
	}
}

// TestExportStopsAtARecordBeyondTheHead: a record stored beyond the
// store's head is not in the chain (an append moves the head with its
// record), however well it links: one sealed onto the head and put after
// it was exported as the chain's next record with success, and an auditor
// checking the export's links found nothing wrong. It now ends the export,
// after the chain, with an error naming it.
func TestExportStopsAtARecordBeyondTheHead(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			recs := buildChain(t, e, 5)
			forged, err := Seal(store.AuditHead{Seq: 5, Hash: recs[4].Hash}, Record{EventID: "evt_forged", AppendedAt: time.Now(),
				Action: Action{Time: time.Now(), Name: "order.created", User: "oBob", AmountFen: 1}})
			if err != nil {
				t.Fatal(err)
			}
			e.rawPut(6, forged)
			var out bytes.Buffer
			n, err := Export(context.Background(), e.store(), &out, ExportOptions{})
			if !errors.Is(err, ErrBroken) || !strings.Contains(fmt.Sprint(err), "record 6") || n != 5 {
				t.Errorf("export with a record beyond the head: %d records, %v; want the chain's 5 and an error naming record 6", n, err)
			}
			if strings.Contains(out.String(), "evt_forged") {
				t.Errorf("the record beyond the head was exported")
			}
		})
	}
}

// TestExportStopsAtARecordBeyondTheHeadPastAnEmptyPlace: a record stored
// beyond the head with an empty place before it ends the export with an
// error naming the place it is stored at, as one right after the head
// does. Redis reads a place only when asked for it, so the export's read
// from the place after the head found nothing and it ended with success,
// the stray unseen, though verify rejects the store and the README
// promises exit 1 for it; the embedded store's read seeks past the empty
// place, and the export named the record's claim (record 3 stored after
// record 5) or an empty place within no chain (record 6 missing).
func TestExportStopsAtARecordBeyondTheHeadPastAnEmptyPlace(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			for _, c := range []struct {
				name       string
				at, claims uint64
			}{
				{"a copy of record 3", 8, 3},
				{"a record claiming its place", 7, 7},
			} {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, driver)
					recs := buildChain(t, e, 5)
					r := recs[2]
					r.Seq = c.claims
					e.rawPut(c.at, r)
					var out bytes.Buffer
					n, err := Export(context.Background(), e.store(), &out, ExportOptions{})
					want := fmt.Sprintf("record %d is stored beyond", c.at)
					if !errors.Is(err, ErrBroken) || !strings.Contains(fmt.Sprint(err), want) || n != 5 {
						t.Errorf("export with a record stored at %d beyond the head past an empty place: %d records, %v; want the chain's 5 and an error saying %q",
							c.at, n, err, want)
					}
				})
			}
		})
	}
}

// TestVerifySaysAHeadWithoutItsSeqIsNotAHead: a head that names a hash but
// no seq (its seq field deleted by hand from the Redis hash, or from the
// embedded store's JSON) is not the empty chain's head. Read as seq 0 it
// was, and verify, walking the records, blamed record 1 as stored beyond
// the store's head (record 0), a record that is where it belongs.
func TestVerifySaysAHeadWithoutItsSeqIsNotAHead(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			recs := buildChain(t, e, 3)
			switch driver {
			case "embedded":
				e.boltEdit(func(tx *bolt.Tx) error {
					return tx.Bucket([]byte("audit_meta")).Put([]byte("head"), []byte(`{"hash":"`+recs[2].Hash+`"}`))
				})
			case "redis":
				if err := e.redis().Client().HDel(context.Background(), e.prefix+"{audit}:head", "seq").Err(); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Verify(context.Background(), e.store(), VerifyOptions{})
			t.Logf("verify: %v", err)
			if err == nil || !strings.Contains(err.Error(), "head") || strings.Contains(err.Error(), "record 0") || strings.Contains(err.Error(), "record 1") {
				t.Errorf("verify with a head without its seq: %v; want an error about the head, blaming no record", err)
			}
		})
	}
}
