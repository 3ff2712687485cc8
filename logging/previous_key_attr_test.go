package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRotationKeyAttrsMasked: the keys a rotation keeps beside the current
// ones (clients[].previous_key, payments.wechatpay.apiv3_previous_key) are
// masked by attribute name as their current keys are, also when the value
// is not among the configured secrets (a key already removed from the
// config, logged by a tool that read an older file).
func TestRotationKeyAttrsMasked(t *testing.T) {
	for _, attr := range []string{"previous_key", "apiv3_previous_key", "Previous_Key"} {
		var buf bytes.Buffer
		New(&buf, slog.LevelInfo, nil).Info("x", attr, "an-unlisted-old-key-0123456789")
		if out := buf.String(); strings.Contains(out, "an-unlisted-old-key") {
			t.Errorf("%s: logged as %q", attr, out)
		}
	}
}
