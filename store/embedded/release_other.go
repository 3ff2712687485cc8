//go:build !unix

package embedded

import "os"

// releaseFile closes f, which releases bbolt's lock on it on these systems.
func releaseFile(f *os.File) { _ = f.Close() }
