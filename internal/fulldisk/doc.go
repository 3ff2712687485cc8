// Package fulldisk gives a test a real full disk: a small tmpfs it
// mounts (as root, as CI runs) and a filler file that takes every free
// block of it, removed to give the space back. It is for tests only, and
// Linux only (fulldisk_linux.go): a test using it is named *_linux_test.go.
package fulldisk
