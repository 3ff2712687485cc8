package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/redistest"
)

// BenchmarkEpochCheck is the background check, once per EpochInterval: the
// marker and, on every primary, the generation counter. Both benchmarks run
// on servers of their own, so other tests on the shared Redis do not blur
// them.
func BenchmarkEpochCheck(b *testing.B) {
	ctx := context.Background()
	bench := func(b *testing.B, s *Store) {
		if err := s.checkEpoch(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := s.checkEpoch(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("single", func(b *testing.B) {
		bench(b, openOn(b, nil, Options{Addrs: []string{redistest.StartServer(b).Addr()}, EpochInterval: -1}))
	})
	b.Run("cluster", func(b *testing.B) {
		bench(b, openOn(b, nil, Options{Addrs: startCluster(b), EpochInterval: -1}))
	})
}

// BenchmarkMoneyWrite is a claim, the money write of every purchase, which
// raises its primary's generation counter in the same round trip.
func BenchmarkMoneyWrite(b *testing.B) {
	ctx := context.Background()
	bench := func(b *testing.B, s *Store) {
		b.ResetTimer()
		for i := range b.N {
			if _, _, err := s.ClaimPurchase(ctx, "bench|"+strconv.Itoa(i), "ORD-"+strconv.Itoa(i), time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("single", func(b *testing.B) {
		bench(b, openOn(b, nil, Options{Addrs: []string{redistest.StartServer(b).Addr()}, EpochInterval: -1}))
	})
	b.Run("cluster", func(b *testing.B) {
		bench(b, openOn(b, nil, Options{Addrs: startCluster(b), EpochInterval: -1}))
	})
}
