package proxy

import (
	"testing"

	"github.com/paygate/paygate/logging"
)

// TestSSEErrorMaskByteOrderMark: the mark is dropped at the stream's start
// only, wherever the reads split it; bytes that begin like it and differ
// are relayed as sent, and so is a mark anywhere else.
func TestSSEErrorMaskByteOrderMark(t *testing.T) {
	redact := logging.NewRedactorMin([]string{"sk-provider-secret-key-123"}, logging.ClientMinSecret)
	for _, tc := range []struct {
		reads []string
		want  string
	}{
		{[]string{"\ufeff: c\n\ndata: x\n\n"}, "\ndata: x\n\n"},
		{[]string{"\xef", "\xbb", "\xbf", ":c\n", "\n"}, "\n"},
		{[]string{"\ufeffevent: error\ndata: {\"message\":\"sk-provider-secret-key-123\"}\n\n"}, "event: error\ndata: {\"message\":\"" + logging.Mask + "\"}\n\n"},
		{[]string{"\xef\xbb", ":c\n\n"}, "\xef\xbb:c\n\n"},
		{[]string{"\xef", "\xbb"}, "\xef\xbb"},
		{[]string{"data: x\n\n\ufeff: c\n\n"}, "data: x\n\n\ufeff: c\n\n"},
		{[]string{": c\n\n"}, "\n"},
	} {
		if got := maskReads(redact, tc.reads); got != tc.want {
			t.Errorf("reads %q relayed as %q; want %q", tc.reads, got, tc.want)
		}
	}
}
