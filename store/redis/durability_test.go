package redis

import (
	"strconv"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/redistest"
)

// TestNotDurableWarned: a Redis that can lose writes it acknowledged, with
// no replica waited for (store.redis.wait_replicas 0), is warned of at
// Open: without an append-only file a restart loses every write since the
// last snapshot, and with appendfsync everysec a crash loses the last
// second's, a purchase's claim among them, so the same purchase gets a
// second payable order. Redis's defaults (appendonly no) did so without a
// word; paygate only found out after the loss. appendonly yes with
// appendfsync always says nothing; so does a server that answers neither
// INFO nor CONFIG (a user's ACL). With a replica waited for, see
// TestNotDurableWithReplicasWaitedFor.
func TestNotDurableWarned(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		setup func(t *testing.T, srv *redistest.Server) Options
		want  string // the attribute the warning carries; "" for none
	}{
		{"appendonly no", []string{"--appendonly", "no"}, nil, `"appendonly":"no"`},
		{"appendfsync everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, nil, `"appendfsync":"everysec"`},
		{"appendfsync no", []string{"--appendonly", "yes", "--appendfsync", "no"}, nil, `"appendfsync":"no"`},
		{"appendfsync always", []string{"--appendonly", "yes", "--appendfsync", "always"}, nil, ""},
		{"appendonly no, CONFIG refused", []string{"--appendonly", "no"}, deniedACL("-config"), `"appendonly":"no"`},
		{"INFO and CONFIG refused", []string{"--appendonly", "no"}, deniedACL("-config", "-info"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.StartServer(t, tc.args...)
			var opts Options
			if tc.setup != nil {
				opts = tc.setup(t, srv)
			}
			out := openedLog(t, srv.Addr(), opts)
			wantWarning(t, out, tc.want, srv.Addr(), `"appendonly":`, `"appendfsync":`)
			// No append-only file: wait_replicas alone is no way out (it
			// has the primary warned of again, TestNotDurableWithReplicasWaitedFor),
			// so it is advised only beside appendonly yes.
			if tc.want == `"appendonly":"no"` && (strings.Contains(out, "or set store.redis.wait_replicas") ||
				!strings.Contains(out, "appendonly yes and store.redis.wait_replicas")) {
				t.Errorf("the warning advises store.redis.wait_replicas without appendonly yes:\n%s", out)
			}
		})
	}
}

// TestNotDurableWithReplicasWaitedFor: with wait_replicas a money write
// counts only once a replica has it, but that keeps it only while the
// primary never comes back empty. A primary without an append-only file
// (appendonly no) that restarts on its own (a container's restart policy,
// before any failover) comes back with no data, and its replicas copy that
// empty data set: every acknowledged write is gone, so wait_replicas alone
// protects nothing and the primary is warned of, saying why. An append-only
// file fsynced every second (appendfsync everysec) loses at most about a
// second at such a restart and, like always, says nothing.
func TestNotDurableWithReplicasWaitedFor(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // the attribute the warning carries; "" for none
	}{
		{"appendonly no", []string{"--appendonly", "no"}, `"appendonly":"no"`},
		{"appendfsync everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, ""},
		{"appendfsync always", []string{"--appendonly", "yes", "--appendfsync", "always"}, ""},
		// appendfsync no leaves the flush to the kernel, about 30 s: a
		// primary that crashes and restarts on its own loses that much,
		// and its replicas copy the loss.
		{"appendfsync no", []string{"--appendonly", "yes", "--appendfsync", "no"}, `"appendfsync":"no"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			primary := redistest.StartServer(t, append([]string{"--repl-diskless-sync-delay", "0"}, tc.args...)...)
			redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
			primary.WaitReplicas(1)
			out := openedLog(t, primary.Addr(), Options{WaitReplicas: 1})
			wantWarning(t, out, tc.want, primary.Addr(), `"appendonly":`, `"appendfsync":`)
			if tc.want == "" {
				return
			}
			// Why wait_replicas does not cover it, and what does.
			say := []string{"restart", "replicas", "empty", "appendonly yes"}
			if strings.Contains(tc.want, "appendfsync") {
				say = []string{"restart", "replicas", "copy", "appendfsync everysec"}
			}
			for _, words := range say {
				if !strings.Contains(out, words) {
					t.Errorf("the warning does not say %q (why waiting for replicas does not keep the writes):\n%s", words, out)
				}
			}
		})
	}
}
