package config

import "testing"

// TestSentinelsNeedTheirAddresses: with store.redis.master_name, addrs are
// the sentinels, which go-redis asks for the master (SENTINEL
// get-master-addr-by-name). Left out, they were the default,
// 127.0.0.1:6379, a Redis server's address, not a sentinel's (26379): the
// config loaded, and serve started with every store call failing, payments
// closed and /readyz "store unreachable", with no line to point at. The
// reference says the default will not do; the loader now says so too.
func TestSentinelsNeedTheirAddresses(t *testing.T) {
	tests := []struct{ name, redis, want string }{
		{"master_name without addrs", "redis:\n    master_name: mymaster\n",
			"c.yaml:4: store.redis.master_name: set, and store.redis.addrs is not"},
		{"master_name with addrs of no value", "redis:\n    master_name: mymaster\n    addrs:\n",
			"c.yaml:4: store.redis.master_name: set, and store.redis.addrs is not"},
		{"master_name with the sentinels", "redis:\n    master_name: mymaster\n    addrs: [\"s1:26379\", \"s2:26379\"]\n", ""},
		{"master_name with one sentinel on 6379, written", "redis:\n    master_name: mymaster\n    addrs: [\"127.0.0.1:6379\"]\n", ""},
		{"a single server by default", "redis: {}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, "store:\n  driver: redis\n  "+tc.redis, tc.want, func(c *Config) string {
				return "addrs " + c.Store.Redis.Addrs[0] + ", master_name " + c.Store.Redis.MasterName
			})
		})
	}
}
