package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestAlways: under log.level error an info line is dropped unless its
// context is marked Always, which passes it at its own level; the mark
// reaches the lines of a logger made With attributes too.
func TestAlways(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelError, nil).With("component", "audit")
	log.InfoContext(context.Background(), "dropped")
	log.InfoContext(Always(context.Background()), "kept")
	out := buf.String()
	if strings.Contains(out, "dropped") {
		t.Errorf("an unmarked info line passed level error:\n%s", out)
	}
	if !strings.Contains(out, `"level":"INFO","msg":"kept","component":"audit"`) {
		t.Errorf("the Always line is missing or not at INFO:\n%s", out)
	}
}
