//go:build unix

package embedded

import (
	"os"
	"syscall"
)

// releaseFile drops bbolt's flock on f and closes it. The unlock is explicit
// because closing the descriptor alone does not release a flock while a
// mapping of the file (which bbolt leaves behind when it panics) still
// references the open file.
func releaseFile(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	_ = f.Close()
}
