package accounting

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/fdfail"
	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
	redisstore "github.com/paygate/paygate/store/redis"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestPaidWhileWritesFailTakesTheConversationOnce: a payment the writer
// carries out while the store refuses writes (a full disk, a filesystem
// gone read-only, a Redis short of memory or of replicas) cannot take its
// conversation's cost: the take is not made, and the cost stays for the
// conversation's next paid order. Counted in this order too, from the sum
// the embedded store reported beside its error, the same turns counted
// in two transactions once writes worked again.
func TestPaidWhileWritesFailTakesTheConversationOnce(t *testing.T) {
	ctx := context.Background()
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var st store.Store
			var failWrites func() (restore func())
			switch driver {
			case "embedded":
				place := testdrivers.NewPlace(t, driver, nil)
				st = place.Open()
				failWrites = func() func() {
					restore, err := fdfail.FailWrites(place.Path)
					if err != nil {
						t.Fatal(err)
					}
					return func() {
						if err := restore(); err != nil {
							t.Fatal(err)
						}
					}
				}
			case "redis":
				srv := redistest.StartServer(t)
				s, err := redisstore.Open(redisstore.Options{Addrs: []string{srv.Addr()}, RepairInterval: -1, EpochInterval: -1})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				st = s
				admin := srv.Client()
				failWrites = func() func() {
					if err := admin.ConfigSet(ctx, "min-replicas-to-write", "1").Err(); err != nil {
						t.Fatal(err)
					}
					return func() {
						if err := admin.ConfigSet(ctx, "min-replicas-to-write", "0").Err(); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			l := testLedger(t, st)
			defer l.Close()
			a := l.Round(ctx, "p", "m", Usage{1000, 200, 0, 0}) // 0.004500
			l.Turn(ctx, "bot", "u", "s", a)
			l.Flush() // in the store
			restore := failWrites()
			if _, err := st.TakeTally(ctx, "pgtest:probe"); err == nil {
				restore()
				t.Fatal("a take succeeded with the store's writes failing; the test fails none")
			}
			l.Paid(ctx, "bot", "u", "s", "ORD-1", time.Time{})
			l.Flush()
			restore()
			l.Paid(ctx, "bot", "u", "s", "ORD-2", time.Time{})
			l.Flush()
			s := l.Stats()
			if s.PaidOrders != 2 || s.TransactionCost != a.String() {
				t.Errorf("%d paid orders costing %s in all; want 2 costing %s: the conversation's one turn, counted once", s.PaidOrders, s.TransactionCost, a)
			}
		})
	}
}
