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
