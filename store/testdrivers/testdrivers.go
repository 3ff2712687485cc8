// Package testdrivers gives the tests of the packages above the store the
// store drivers to run against, and a place (a bbolt file, a Redis key
// prefix) where a test can open a store, close it and open it again, as a
// restarted process would. It is for tests only; production code opens
// stores from the config.
package testdrivers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
	goredis "github.com/redis/go-redis/v9"
)

// RedisAddr is the Redis the tests use: $PAYGATE_TEST_REDIS, else
// 127.0.0.1:6379.
func RedisAddr() string {
	if a := os.Getenv("PAYGATE_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Names lists the drivers to test: "embedded", and "redis" when RedisAddr
// answers. Under CI (set to any value) Redis must answer: a missing Redis fails the test
// rather than leaving half the matrix untested.
func Names(t testing.TB) []string {
	t.Helper()
	// A bare PING: opening a store here would write its epoch marker
	// ({meta:epoch}, under no prefix) into a Redis the tests share, and
	// the tests keep to keys under pgtest:.
	c := goredis.NewClient(&goredis.Options{Addr: RedisAddr(), MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := c.Ping(ctx).Err()
	cancel()
	_ = c.Close()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis at %s is required under CI: %v", RedisAddr(), err)
		}
		t.Logf("redis at %s not available, testing the embedded driver only: %v", RedisAddr(), err)
		return []string{"embedded"}
	}
	return []string{"embedded", "redis"}
}

// Place is where a test's store lives: a file in the test's temporary
// directory, or a key prefix of its own on RedisAddr, whose keys are deleted
// when the test ends.
type Place struct {
	t      testing.TB
	Driver string
	Path   string // embedded
	Prefix string // redis
	now    func() time.Time
}

var seq atomic.Int64

// NewPlace makes a place for driver. now, when not nil, is the clock the
// stores opened there judge expiries by.
func NewPlace(t testing.TB, driver string, now func() time.Time) *Place {
	t.Helper()
	p := &Place{t: t, Driver: driver, now: now}
	switch driver {
	case "embedded":
		p.Path = filepath.Join(t.TempDir(), "paygate.db")
	case "redis":
		p.Prefix = fmt.Sprintf("pgtest:%d:%d:", time.Now().UnixNano(), seq.Add(1))
		// Registered before any store's Close, so it runs after them.
		t.Cleanup(func() { p.deleteKeys() })
	default:
		t.Fatalf("testdrivers: unknown driver %q", driver)
	}
	return p
}

// deleteKeys deletes the place's keys from Redis. A machine loaded by a
// parallel test run makes single commands time out now and then, and a
// deletion that gave up on the first error left thousands of keys behind
// a test that passed: a pass that failed is tried again, a few times,
// then logged.
func (p *Place) deleteKeys() {
	st, err := redisstore.Open(redisstore.Options{Addrs: []string{RedisAddr()}, KeyPrefix: p.Prefix, RepairInterval: -1})
	if err != nil {
		p.t.Logf("testdrivers: keys under %s not deleted: %v", p.Prefix, err)
		return
	}
	defer st.Close()
	ctx := context.Background()
	c := st.Client()
	for try := 1; ; try++ {
		var keys []string
		iter := c.Scan(ctx, 0, p.Prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		err := iter.Err()
		for len(keys) > 0 && err == nil {
			n := min(len(keys), 500)
			err = c.Unlink(ctx, keys[:n]...).Err()
			keys = keys[n:]
		}
		if err == nil {
			return
		}
		if try == 5 {
			p.t.Logf("testdrivers: keys under %s not all deleted: %v", p.Prefix, err)
			return
		}
	}
}

// Open opens a store at the place, without background sweeps or repairs (a
// test drives time itself); it is closed when the test ends, and may be
// closed earlier to open the place again.
func (p *Place) Open() store.Store {
	p.t.Helper()
	var st store.Store
	var err error
	switch p.Driver {
	case "embedded":
		st, err = embedded.Open(p.Path, embedded.Options{SweepInterval: -1, Now: p.now})
	case "redis":
		st, err = redisstore.Open(redisstore.Options{Addrs: []string{RedisAddr()}, KeyPrefix: p.Prefix, RepairInterval: -1, Now: p.now})
	}
	if err != nil {
		p.t.Fatalf("open %s store: %v", p.Driver, err)
	}
	p.t.Cleanup(func() { _ = st.Close() })
	return st
}

// Open opens a store of driver at a new place.
func Open(t testing.TB, driver string, now func() time.Time) store.Store {
	t.Helper()
	return NewPlace(t, driver, now).Open()
}
