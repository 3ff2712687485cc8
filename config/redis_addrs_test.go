package config

import (
	"strings"
	"testing"
)

// TestRedisAddrs: store.redis.addrs are dialled as they are written
// (go-redis takes host:port), so each is checked as host:port with a
// numeric port. A redis:// URL used to pass check-config; serve then failed
// to dial it and printed it, password included, in its log and on stderr.
// The errors never print the value.
func TestRedisAddrs(t *testing.T) {
	tests := []struct {
		addr string
		want string // the error after "c.yaml:1: store.redis.addrs[1]: "; "" when it loads
	}{
		{"127.0.0.1:6379", ""},
		{"redis-0.redis.default.svc:6379", ""},
		{"[::1]:6379", ""},
		{"localhost:6380", ""},
		{"redis://:hunter2-secret@127.0.0.1:6379/0", "not host:port: a URL is not taken (value not shown: it may hold a password; give the password in store.redis.password)"},
		{"rediss://default:hunter2-secret@cache.example.com:6380", "not host:port: a URL is not taken (value not shown: it may hold a password; give the password in store.redis.password)"},
		{"hunter2-secret@127.0.0.1:6379", "not host:port: the host holds '@' (value not shown: it may hold a password; give the password in store.redis.password)"},
		{":hunter2-secret@127.0.0.1:6379", "not host:port: too many colons in address (value not shown)"},
		{"127.0.0.1", "not host:port: missing port in address (value not shown)"},
		{"127.0.0.1:redis", "the port must be a number from 1 to 65535"},
		{"127.0.0.1:0", "the port must be a number from 1 to 65535"},
		{"127.0.0.1:65536", "the port must be a number from 1 to 65535"},
		{":6379", "not host:port: no host"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			src := "store: {driver: redis, redis: {addrs: [\"127.0.0.1:6379\", \"" + tc.addr + "\"]}}\n"
			_, err := Parse([]byte(src), "c.yaml", envMap(nil))
			want := "c.yaml:1: store.redis.addrs[1]: " + tc.want
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("accepted; want %s", want)
			case err.Error() != want:
				t.Errorf("got %q; want %q", err, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error prints the password: %v", err)
			}
		})
	}
}

// TestRedisStoreOptions: store.redis values that serve's Redis driver
// refuses, or go-redis ignores, are refused at their line by check-config
// too. A key prefix with a brace passed check-config, and serve then exited
// with an error naming no line (store/redis.Open: the keys' own hash tags
// pick their cluster slots, and a brace in the prefix would change them).
// go-redis sends no SELECT for a negative db (database 0 in effect) and
// none in cluster mode (several addresses without master_name: a cluster
// has database 0 only), so a db written there was quietly not the one used.
// cluster forces cluster mode with one seed address; with master_name go-redis
// would quietly take sentinels, and with a db quietly database 0.
func TestRedisStoreOptions(t *testing.T) {
	const cluster = "2, and store.redis.addrs lists 2 servers with no master_name: a Redis Cluster, which has database 0 only (one address, or sentinels with master_name, select a database)"
	tests := []struct {
		name, redis string // the store.redis mapping's keys, one a line
		want        string // the error; "" when it loads
	}{
		{"a prefix with a hash tag", `key_prefix: "pg:{tenant}:"`,
			"c.yaml:4: store.redis.key_prefix: must not contain { or }: paygate's keys carry hash tags of their own, which pick their Redis Cluster slots"},
		{"a prefix with a closing brace", `key_prefix: "pg}"`,
			"c.yaml:4: store.redis.key_prefix: must not contain { or }: paygate's keys carry hash tags of their own, which pick their Redis Cluster slots"},
		{"a prefix of its own", `key_prefix: "pg:tenant1:"`, ""},
		{"a negative db", "db: -1", "c.yaml:4: store.redis.db: must not be negative"},
		{"db on a single server", "db: 2", ""},
		{"db in cluster mode", "addrs: [\"a:6379\", \"b:6379\"]\n    db: 2", "c.yaml:5: store.redis.db: " + cluster},
		{"db 0 in cluster mode", "addrs: [\"a:6379\", \"b:6379\"]\n    db: 0", ""},
		{"db with sentinels", "addrs: [\"a:26379\", \"b:26379\"]\n    master_name: mymaster\n    db: 2", ""},
		// A managed cluster reached through one endpoint: one address is a
		// single server unless cluster says otherwise.
		{"cluster through one seed", "cluster: true", ""},
		{"cluster with sentinels", "addrs: [\"a:26379\"]\n    master_name: mymaster\n    cluster: true",
			"c.yaml:6: store.redis.cluster: true, and store.redis.master_name is set: sentinels serve one master, not a cluster; set one of the two"},
		{"db in forced cluster mode", "cluster: true\n    db: 2",
			"c.yaml:5: store.redis.db: 2, and store.redis.cluster is true: a Redis Cluster, which has database 0 only"},
		{"a TLS server name with tls", "tls: true\n    tls_server_name: redis.internal", ""},
		{"a TLS server name without tls", "tls_server_name: redis.internal",
			"c.yaml:4: store.redis.tls_server_name: set, and store.redis.tls is false: the connections are not TLS, and no certificate is verified; set tls: true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "store:\n  driver: redis\n  redis:\n    " + tc.redis + "\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded (key_prefix %q, db %d, addrs %q); want %s", cfg.Store.Redis.KeyPrefix, cfg.Store.Redis.DB, cfg.Store.Redis.Addrs, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Errorf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestWrittenEmptyRedisAddrs: store.redis.addrs unset is 127.0.0.1:6379.
// A written empty list (what a template renders when the addresses were not
// filled in) read as unset too: with the redis driver each replica quietly
// used a Redis on its own host, if one answered there, and replicas that
// must share one store did not (the check "at least one address" came
// after the default and never fired). It is an error at its line with the
// redis driver; a key with no value is unset, as everywhere, and the
// embedded driver does not read the key.
func TestWrittenEmptyRedisAddrs(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the error; "" when it loads
	}{
		{"an empty list", "store:\n  driver: redis\n  redis:\n    addrs: []\n", "c.yaml:4: store.redis.addrs: at least one address"},
		{"an empty list, flow", "store: {driver: redis, redis: {addrs: []}}\n", "c.yaml:1: store.redis.addrs: at least one address"},
		{"no value", "store:\n  driver: redis\n  redis:\n    addrs:\n", ""},
		{"left out", "store:\n  driver: redis\n", ""},
		{"embedded", "store:\n  driver: embedded\n  redis:\n    addrs: []\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loadsOrRefused(t, tc.src, tc.want, func(c *Config) string { return "store.redis.addrs " + strings.Join(c.Store.Redis.Addrs, ",") })
		})
	}
}

// TestRedisAddrsOfEmptyValues: a store.redis.addrs element with no value
// (a ${VAR} that expanded to empty, quoted or not) is dropped when the list
// is decoded, so a list whose every element is empty ("addrs:
// [\"${REDIS_ADDR}\"]", REDIS_ADDR set to "" or not exported) was empty,
// and SetDefaults filled it with 127.0.0.1:6379: each replica used a Redis
// on its own host instead of the one store they must share, as a written
// "addrs: []" did. It is an error at the key's line; one element with a
// value is enough.
func TestRedisAddrsOfEmptyValues(t *testing.T) {
	const want = "c.yaml:4: store.redis.addrs: at least one address: every element has no value (a ${VAR} that expanded to empty?)"
	tests := []struct {
		name, addrs string
		want        string   // the error; "" when it loads
		loaded      []string // with want "": the addresses
	}{
		{"a quoted variable set to empty", `["${EMPTY}"]`, want, nil},
		{"a variable not set", `["${REDIS_ADDR}"]`, want, nil},
		{"a block list of one", "\n      - ${EMPTY}", want, nil},
		{"two, both empty", `["${EMPTY}", "${EMPTY:-}"]`, want, nil},
		{"a null", `[~]`, want, nil},
		{"one of two set", `["${EMPTY}", "redis-0:6379"]`, "", []string{"redis-0:6379"}},
		{"a variable set", `["${ADDR}"]`, "", []string{"redis-0:6379"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "store:\n  driver: redis\n  redis:\n    addrs: " + tc.addrs + "\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(map[string]string{"EMPTY": "", "ADDR": "redis-0:6379"}))
			switch {
			case tc.want != "" && err == nil:
				t.Fatalf("loaded with store.redis.addrs %q; want %s", cfg.Store.Redis.Addrs, tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Fatalf("got:\n%v\nwant:\n%s", err, tc.want)
			case tc.want != "":
				return
			case err != nil:
				t.Fatalf("got %v; want it to load", err)
			}
			if got := strings.Join(cfg.Store.Redis.Addrs, ","); got != strings.Join(tc.loaded, ",") {
				t.Errorf("store.redis.addrs %q; want %q", cfg.Store.Redis.Addrs, tc.loaded)
			}
		})
	}
}
