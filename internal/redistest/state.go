package redistest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// PrefixState is every key under prefix (on every master of a cluster)
// with its type, its contents and its absolute expiry (PEXPIRETIME), so
// that two reads of unchanged keys are equal however far apart: the tests
// that prove a command (paygate audit, a read-only Store) left Redis as it
// found it compare two of them with DiffState.
func PrefixState(t testing.TB, c goredis.UniversalClient, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, k := range Keys(t, c, prefix) {
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		v := keyValue(t, c, typ, k)
		at, err := c.PExpireTime(ctx, k).Result()
		if err != nil {
			t.Fatalf("PEXPIRETIME %s: %v", k, err)
		}
		out[k] = fmt.Sprintf("%s %v expires %d", typ, v, at.Milliseconds())
	}
	return out
}

// Keys lists the keys under prefix: on every master of a cluster, where a
// SCAN through the cluster client reads one node's alone.
func Keys(t testing.TB, c goredis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var keys []string
	node := func(ctx context.Context, n goredis.Cmdable) error {
		iter := n.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return node(ctx, n) })
	} else {
		err = node(ctx, c)
	}
	if err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// keyValue is key's contents as a comparable value: DUMP's serialisation is
// not, as a read may move a large hash's incremental rehash on, and with
// it the order DUMP writes the fields in.
func keyValue(t testing.TB, c goredis.UniversalClient, typ, key string) any {
	t.Helper()
	ctx := context.Background()
	var v any
	var err error
	switch typ {
	case "string":
		v, err = c.Get(ctx, key).Result()
	case "hash":
		v, err = c.HGetAll(ctx, key).Result() // a map: printed in key order
	case "list":
		v, err = c.LRange(ctx, key, 0, -1).Result()
	case "set":
		var m []string
		m, err = c.SMembers(ctx, key).Result()
		slices.Sort(m)
		v = m
	case "zset":
		v, err = c.ZRangeWithScores(ctx, key, 0, -1).Result()
	default:
		t.Fatalf("%s: a key of type %s", key, typ)
	}
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return v
}

// DiffState names the keys added, removed or changed from a to b.
func DiffState(a, b map[string]string) []string {
	var d []string
	for k, v := range b {
		if w, ok := a[k]; !ok {
			d = append(d, "added "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			d = append(d, "removed "+k)
		}
	}
	slices.Sort(d)
	return d
}
