package redis

import (
	"context"
	"reflect"
	"testing"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store/storetest"
)

// TestOpenPreloadsEveryScript: Open loads the scripts (scripts.all) so
// that the first call of each is one EVALSHA, not EVALSHA, NOSCRIPT and
// EVAL: a script left out of all() is sent whole on its first call after
// every start. Every script field of the Store's scripts is in all(), and
// each of those is in the cache of a Redis of the test's own once Open
// returns.
func TestOpenPreloadsEveryScript(t *testing.T) {
	srv := redistest.StartServer(t)
	s := openOn(t, storetest.NewClock(), Options{Addrs: []string{srv.Addr()}, EpochInterval: -1})
	all := s.sc.all()
	listed := map[uintptr]bool{}
	var hashes []string
	for _, sc := range all {
		listed[reflect.ValueOf(sc).Pointer()] = true
		hashes = append(hashes, sc.Hash())
	}
	v := reflect.ValueOf(s.sc).Elem()
	for i := range v.NumField() {
		if !listed[v.Field(i).Pointer()] {
			t.Errorf("script %s is not in scripts.all(): not loaded at Open", v.Type().Field(i).Name)
		}
	}
	loaded, err := srv.Client().ScriptExists(context.Background(), hashes...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range loaded {
		if !ok {
			t.Errorf("script %d of scripts.all() is not in Redis's cache after Open", i)
		}
	}
}
