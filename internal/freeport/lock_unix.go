//go:build unix

package freeport

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// locks are the port locks this process holds, open until it exits.
var locks = map[int]*os.File{}

// lockRoot holds the directory of the port locks: /tmp, whatever TMPDIR
// says, as the ports are the host's. Under os.TempDir, a test binary run
// with a TMPDIR of its own (testproc.EndWithTheTestBinary's children) locked
// its ports where no other test binary looked, and was handed one of theirs.
const lockRoot = "/tmp"

// lockPort reports whether this process holds port p's lock: an exclusive
// flock on a file named after p in a directory the user's test binaries
// share (under lockRoot), taken here unless another process holds it, and
// held until this process exits (the kernel lets it go then, however it
// ended). A test binary's server binds its port any time before then.
func lockPort(t testing.TB, p int) bool {
	t.Helper()
	if locks[p] != nil {
		return true
	}
	dir := filepath.Join(lockRoot, "paygate-freeport-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("freeport: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("freeport: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false // another test binary's
		}
		t.Fatalf("freeport: lock %d: %v", p, err)
	}
	locks[p] = f
	return true
}
