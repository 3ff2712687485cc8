// Package heaptest measures the live heap, for tests that bound what a
// long event (an image model's picture, tens of MiB in one event) holds
// while it is read and relayed, and after.
package heaptest

import (
	"io"
	"runtime"
)

// Live is the bytes of live heap objects, after a collection.
func Live() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// PeakReader reads R, and samples the live heap every 64 reads (512 KiB
// read through an 8 KiB buffer) into Peak.
type PeakReader struct {
	R     io.Reader
	Peak  uint64
	reads int
}

func (p *PeakReader) Read(b []byte) (int, error) {
	if p.reads++; p.reads%64 == 0 {
		p.Peak = max(p.Peak, Live())
	}
	return p.R.Read(b)
}
