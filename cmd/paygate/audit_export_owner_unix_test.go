//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestAuditExportKeepsTheFilesGroup: an export over an earlier one keeps
// FILE's group, and its owner is the exporting user. Run as root (a cron
// job, a container's default user), the temporary file renamed over FILE
// was root's: an export of mode 0640 whose group was the auditors' was the
// root group's after the next export, its mode kept, its readers gone all
// the same. Another user's FILE is not handed back to that user: one made
// in a shared directory would have handed its maker the conversations.
func TestAuditExportKeepsTheFilesGroup(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	// Each owner:group FILE is given: another user's, and the runner's own
	// of another group (root:auditors), whose group alone is to be kept.
	var owners [][2]int
	if uid == 0 {
		owners = [][2]int{{4242, 4243}, {0, 4243}}
	} else if groups, _ := os.Getgroups(); slices.ContainsFunc(groups, func(g int) bool { return g != gid }) {
		// Not root: a file of another group of this user's is all it
		// can make.
		gid = groups[slices.IndexFunc(groups, func(g int) bool { return g != gid })]
		owners = [][2]int{{uid, gid}}
	} else {
		const why = "neither root nor in a second group: no file of another owner or group can be made here"
		if os.Getenv("CI") != "" {
			t.Fatal(why + " (CI is set: run it as root or as a user in a second group)")
		}
		t.Skip(why + " (set CI=true to make this fatal)")
	}
	for _, driver := range testdrivers.Names(t) {
		for _, owner := range owners {
			uid, gid := owner[0], owner[1]
			t.Run(fmt.Sprintf("%s/%d:%d", driver, uid, gid), func(t *testing.T) {
				f := newAuditFixture(t, driver)
				out := filepath.Join(t.TempDir(), "audit.jsonl")
				writeFile(t, out, "{\"seq\":1,\"an\":\"earlier export\"}\n")
				if err := os.Chmod(out, 0o640); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(out, uid, gid); err != nil {
					t.Fatal(err)
				}
				fi := exportTo(t, f.cfgPath, out)
				st := fi.Sys().(*syscall.Stat_t)
				if me := os.Getuid(); int(st.Uid) != me || int(st.Gid) != gid || fi.Mode().Perm() != 0o640 {
					t.Errorf("%s is %d:%d %v after the export; want %d:%d %v", out, st.Uid, st.Gid, fi.Mode().Perm(), me, gid, os.FileMode(0o640))
				}
				if b, _ := os.ReadFile(out); strings.Contains(string(b), "earlier export") {
					t.Errorf("%s still holds the earlier export", out)
				}
			})
		}
	}
}
