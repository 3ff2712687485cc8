package failover

import "io"

// DecodeStream returns a reader of the content of an event stream sent
// with the Content-Encoding values ce, decoded as a chat stream is
// (decoder, streamDecoder): nil when they are all identity. A piped
// answer's caller reads a compressed event stream through it, so that what
// it reads as events (comment lines, error events, the usage) are the
// events, not their compressed bytes. A coding paygate does not decode, or
// a header that is not what the coding says, is an error; the coding's
// header is read from body at once.
func DecodeStream(body io.Reader, ce []string) (io.Reader, error) {
	d, err := decoder(body, ce)
	if err != nil || d == nil {
		return nil, err
	}
	return streamDecoder{d.(decodeReader)}, nil
}
