//go:build unix

package main

import (
	"os"
	"syscall"
)

// keepOwner gives f the owner and group of fi, the file f replaces, where
// they differ from f's own.
func keepOwner(f *os.File, fi os.FileInfo) error {
	was, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	now, err := f.Stat()
	if err != nil {
		return err
	}
	if is, ok := now.Sys().(*syscall.Stat_t); ok && is.Uid == was.Uid && is.Gid == was.Gid {
		return nil
	}
	return f.Chown(int(was.Uid), int(was.Gid))
}
