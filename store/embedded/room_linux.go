package embedded

import (
	"os"
	"syscall"
)

// freeBytes reports the bytes free to this process (statfs: f_bavail, or
// f_bfree for root, whom the filesystem's reserve serves) on the
// filesystem holding the file at path, and whether it could tell: a
// filesystem of 0 blocks (a tmpfs mounted with size=0, no limit; some
// FUSE and network filesystems) tells nothing of its room.
func freeBytes(path string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil || st.Blocks == 0 {
		return 0, false
	}
	free := st.Bavail
	if os.Geteuid() == 0 {
		free = st.Bfree
	}
	// The counts are in fragment units (f_frsize), which FUSE may report
	// apart from the block size; 0 on kernels that leave it unset.
	unit := uint64(st.Frsize)
	if unit == 0 {
		unit = uint64(st.Bsize)
	}
	return free * unit, true
}
