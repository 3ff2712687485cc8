package embedded

import (
	"encoding/binary"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// TestAuditLegacy: texts and marks an earlier version kept by user alone.
func TestAuditLegacy(t *testing.T) {
	put := func(t testing.TB, st store.Store, f func(tx *bolt.Tx) error) {
		t.Helper()
		if err := st.(*DB).db.Update(f); err != nil {
			t.Fatal(err)
		}
	}
	storetest.RunAuditLegacy(t, func(t testing.TB, clock *storetest.Clock) store.Store { return openTest(t, clock) }, storetest.Legacy{
		Text: func(t testing.TB, st store.Store, seq uint64, user string, text []byte, until time.Time) {
			put(t, st, func(tx *bolt.Tx) error {
				v, err := marshal(struct {
					User  string `json:"user"`
					Text  []byte `json:"text"`
					Until int64  `json:"until"`
				}{user, text, until.UnixNano()})
				if err != nil {
					return err
				}
				if err := tx.Bucket(bAuditText).Put(u64(seq), v); err != nil {
					return err
				}
				return tx.Bucket(bAuditTextUsr).Put(join(enc(user), u64(seq)), nil)
			})
		},
		Mark: func(t testing.TB, st store.Store, user string, at time.Time) {
			put(t, st, func(tx *bolt.Tx) error {
				return tx.Bucket(bAuditErased).Put(enc(user), binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())))
			})
		},
		Spoil: func(t testing.TB, st store.Store, seq uint64, data []byte) {
			put(t, st, func(tx *bolt.Tx) error { return tx.Bucket(bAudit).Put(u64(seq), data) })
		},
	})
}
