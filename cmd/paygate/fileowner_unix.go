//go:build unix

package main

import (
	"os"
	"syscall"
)

// keepOwner gives f the group of fi, the file f replaces, where it differs
// from f's own. The owner stays the exporting user's: run as root over a
// FILE another user made in a shared directory (/tmp), handing that user
// the export handed them the conversations it holds, where a shell's `>`
// would be refused there (fs.protected_regular) and install(1) makes the
// file root's. An auditors' group, the case this is for, keeps its readers.
func keepOwner(f *os.File, fi os.FileInfo) error {
	was, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	now, err := f.Stat()
	if err != nil {
		return err
	}
	if is, ok := now.Sys().(*syscall.Stat_t); ok && is.Gid == was.Gid {
		return nil
	}
	return f.Chown(-1, int(was.Gid))
}
