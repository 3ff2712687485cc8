package fulldisk

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Disk is a tmpfs the test mounted, unmounted when the test ends.
type Disk struct {
	t   testing.TB
	Dir string // the mount point
}

// Mount mounts a tmpfs of size (mount's size=, "1m") in a new directory.
// A refused mount fails the test saying why: a full disk is what it
// tests, and skipped it would pass untested.
func Mount(t testing.TB, size string) *Disk {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a %s tmpfs for a full disk (the test needs root, as CI has): %v: %s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return &Disk{t: t, Dir: dir}
}

func (d *Disk) filler() string { return filepath.Join(d.Dir, "filler") }

// Fill takes every free block of the disk.
func (d *Disk) Fill() {
	t := d.t
	t.Helper()
	f, err := os.OpenFile(d.filler(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("filling the disk: %v", err)
		}
	}
}

// Free gives the space Fill took back.
func (d *Disk) Free() {
	d.t.Helper()
	if err := os.Remove(d.filler()); err != nil {
		d.t.Fatal(err)
	}
}
