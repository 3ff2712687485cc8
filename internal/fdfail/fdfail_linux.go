// Package fdfail makes an open file's writes fail, for tests of what a
// full disk or a filesystem gone read-only does to a process that holds the
// file open: the descriptor the process writes through is replaced by one
// opened read-only, so every write to it fails in the kernel (EBADF), while
// reads through a mapping of the file go on.
package fdfail

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// FailWrites makes the descriptors of this process open on path read-only
// ones; restore puts the writable ones back (the disk was fixed). It errs
// when no descriptor is open on path.
func FailWrites(path string) (restore func() error, err error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("fdfail: %w", err)
	}
	var fds []int
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == path {
			if fd, err := strconv.Atoi(e.Name()); err == nil {
				fds = append(fds, fd)
			}
		}
	}
	if len(fds) == 0 {
		return nil, fmt.Errorf("fdfail: no descriptor open on %s", path)
	}
	ro, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fdfail: %w", err)
	}
	defer ro.Close()
	saved := make(map[int]int, len(fds))
	for _, fd := range fds {
		s, err := syscall.Dup(fd) // keeps the writable description (and its lock) alive
		if err != nil {
			return nil, fmt.Errorf("fdfail: dup %d: %w", fd, err)
		}
		saved[fd] = s
		if err := syscall.Dup3(int(ro.Fd()), fd, syscall.O_CLOEXEC); err != nil {
			return nil, fmt.Errorf("fdfail: dup3 onto %d: %w", fd, err)
		}
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			for fd, s := range saved {
				if e := syscall.Dup3(s, fd, syscall.O_CLOEXEC); e != nil && err == nil {
					err = fmt.Errorf("fdfail: restore %d: %w", fd, e)
				}
				_ = syscall.Close(s)
			}
		})
		return err
	}, nil
}
