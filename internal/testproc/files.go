package testproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Bin is the server name on PATH, else in /usr/sbin (not on a non-root
// PATH on Debian, where apt puts nginx and squid). Without it the test
// fails, saying what needs it and how to install it (install): a test
// that skipped would read as passed in CI.
func Bin(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	t.Fatalf("%s not found: %s", name, install)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// SharedDir is a new directory named from prefix, with mode, removed at
// t's cleanup. Not t.TempDir: a server started as root drops its
// privileges (nginx's workers, squid as user proxy) and must reach the
// files it writes or runs there, and t.TempDir's parent is private to
// root.
func SharedDir(t testing.TB, prefix string, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// StartLogged is Start with cmd's output in dir/stderr, which it and the
// files of dir named in logs (a server's own logs) are shown from when t
// failed, each under name's: what a server said is what tells why a test
// of paygate behind it failed. The log cleanup runs once cmd has ended.
func StartLogged(t testing.TB, cmd *exec.Cmd, dir, name string, logs ...string) (exited <-chan struct{}) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Registered before Start's, so run once cmd has ended.
	t.Cleanup(func() {
		_ = out.Close()
		if t.Failed() {
			for _, f := range append([]string{"stderr"}, logs...) {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				t.Logf("%s's %s:\n%s", name, f, b)
			}
		}
	})
	return Start(t, cmd)
}
