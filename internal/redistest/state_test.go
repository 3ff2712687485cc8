package redistest

import (
	"context"
	"strconv"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// TestPrefixStateSeesEveryNode: the state of a prefix read through a
// cluster client holds the keys of every master, not those of the one node
// a SCAN reached, so that a command that wrote a key on another node is
// not read as having left Redis as it found it.
func TestPrefixStateSeesEveryNode(t *testing.T) {
	srvs := StartCluster(t, 3)
	var addrs []string
	for _, s := range srvs {
		addrs = append(addrs, s.Addr())
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	const keys = 30 // spread over the three masters' slots
	for i := range keys {
		if err := c.Set(ctx, "pgstate:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := PrefixState(t, c, "pgstate:"); len(got) != keys {
		t.Errorf("PrefixState through a cluster client: %d keys; want the %d written", len(got), keys)
	}
	before := PrefixState(t, c, "pgstate:")
	if err := c.Set(ctx, "pgstate:"+strconv.Itoa(keys), "late", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if d := DiffState(before, PrefixState(t, c, "pgstate:")); len(d) != 1 || d[0] != "added pgstate:"+strconv.Itoa(keys) {
		t.Errorf("DiffState after one key added: %q; want it named", d)
	}
}
