package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

func TestAuditStraysSingle(t *testing.T) {
	requireSharedRedis(t)
	testAuditStrays(t, func(t *testing.T) *Store {
		return openOn(t, storetest.NewClock(), Options{Addrs: []string{sharedAddr}})
	})
}

// testAuditStrays: AuditStrayAfterHead (a script over the head and the
// records hash, both on {audit}) names the first place after the head that
// holds a value, whatever the places before it hold; it runs in a cluster
// (TestCluster) as on one server, where a script over two slots would fail
// with CROSSSLOT and audit verify and export could never finish on Redis.
func testAuditStrays(t *testing.T, open func(t *testing.T) *Store) {
	ctx := context.Background()
	cases := []struct {
		name   string
		chain  int               // records appended through AppendAudit
		forged map[string]string // fields put into the records hash by hand
		want   uint64
	}{
		{name: "empty chain", want: 0},
		{name: "a chain with nothing beyond its head", chain: 3, want: 0},
		{name: "right after the head", chain: 3, forged: map[string]string{"4": `{"seq":4}`}, want: 4},
		{name: "past an empty place", chain: 3, forged: map[string]string{"6": `{"seq":6}`}, want: 6},
		{name: "a copy of an earlier record", chain: 3, forged: map[string]string{"9": `{"seq":2}`}, want: 9},
		{name: "the first of two", chain: 3, forged: map[string]string{"12": `{}`, "7": `{}`}, want: 7},
		{name: "ten places on (compared as numbers)", chain: 3, forged: map[string]string{"10": `{}`, "9": `{}`}, want: 9},
		{name: "on an empty chain", forged: map[string]string{"2": `{}`}, want: 2},
		{name: "a field that is no place", chain: 2, forged: map[string]string{"x": `{}`, "3a": `{}`}, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			var head store.AuditHead
			for i := range tc.chain {
				body := []byte(`{"n":` + string(rune('0'+i)) + `}`)
				sum := sha256.Sum256(append([]byte(head.Hash), body...))
				rec := store.AuditRecord{Seq: head.Seq + 1, PrevHash: head.Hash, Hash: hex.EncodeToString(sum[:]), Body: body}
				if err := s.AppendAudit(ctx, rec); err != nil {
					t.Fatalf("AppendAudit %d: %v", rec.Seq, err)
				}
				head = store.AuditHead{Seq: rec.Seq, Hash: rec.Hash}
			}
			for f, v := range tc.forged {
				if err := s.Client().HSet(ctx, s.k.audit("rec"), f, v).Err(); err != nil {
					t.Fatalf("forge field %s: %v", f, err)
				}
			}
			got, err := s.AuditStrayAfterHead(ctx)
			if err != nil {
				t.Fatalf("AuditStrayAfterHead: %v", err)
			}
			if got != tc.want {
				t.Errorf("AuditStrayAfterHead: %d; want %d", got, tc.want)
			}
		})
	}
}
