// Package sse reads and writes Server-Sent Events (the text/event-stream
// format of the WHATWG HTML standard, §9.2) on paygate's hot path.
//
// Every chunk of every streamed answer passes through here twice (read from the
// provider, written to the bot), so the Reader reuses one buffer for event data
// and allocates nothing per event once warm (but for an event whose line grew
// a buffer past 128 KiB, an image model's picture: that buffer is let go once
// the event is consumed, not held to the stream's end), and the Writer
// flushes so that a token reaches the bot as soon as the provider sent it:
// after every event (Data), or, for a relay, once per burst (Queue, then
// Flush when the Reader has no whole event Buffered), so events that arrived
// in one read leave in one write and none waits for the provider's next
// bytes. Neither side decodes JSON: callers look into event data with gjson
// where they must.
//
// The package imports nothing of paygate.
package sse
