package redis

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/logging/logtest"
)

// deniedACL is a table's setup: the Options of a user whose ACL denies
// rules (aclUser).
func deniedACL(rules ...string) func(t *testing.T, srv *redistest.Server) Options {
	return func(t *testing.T, srv *redistest.Server) Options { return aclUser(t, srv, rules...) }
}

// openedLog opens a store on the Redis at addr with opts, its Addrs and
// Logger set here, pings it, and returns what Open and Ping logged.
func openedLog(t *testing.T, addr string, opts Options) string {
	t.Helper()
	var buf logtest.Buffer
	opts.Addrs = []string{addr}
	opts.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	s := openOn(t, nil, opts)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	return buf.String()
}

// wantWarning checks the log out: a warning, one with any of the members
// keys, when attr is not "", and then at level WARN carrying attr and the
// server addr; none when attr is "".
func wantWarning(t *testing.T, out, attr, addr string, keys ...string) {
	t.Helper()
	warned := false
	for _, k := range keys {
		warned = warned || strings.Contains(out, k)
	}
	if warned != (attr != "") {
		t.Fatalf("warned %v; want %v. The log:\n%s", warned, attr != "", out)
	}
	if attr != "" && (!strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, attr) || !strings.Contains(out, addr)) {
		t.Errorf("the warning does not carry %s and the server %s at level WARN:\n%s", attr, addr, out)
	}
}
