package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestHandlerMasksSecrets(t *testing.T) {
	secrets := []string{"sk-live-provider-1234", "apiv3-key-0123456789abcdef012345"}
	tests := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"message", func(l *slog.Logger) { l.Info("calling with sk-live-provider-1234") }},
		{"string attr", func(l *slog.Logger) { l.Info("x", "detail", "key=apiv3-key-0123456789abcdef012345") }},
		{"error attr", func(l *slog.Logger) { l.Error("x", "err", errors.New("401 for sk-live-provider-1234")) }},
		{"group attr", func(l *slog.Logger) { l.Info("x", slog.Group("req", "h", "sk-live-provider-1234")) }},
		{"with attrs", func(l *slog.Logger) { l.With("k", "sk-live-provider-1234").Info("x") }},
		{"sensitive key", func(l *slog.Logger) { l.Info("x", "authorization", "anything at all") }},
		{"bearer text", func(l *slog.Logger) { l.Info("header was Bearer unknown-token-xyz") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(New(&buf, slog.LevelInfo, secrets))
			out := buf.String()
			for _, s := range append(secrets, "anything at all", "unknown-token-xyz") {
				if strings.Contains(out, s) {
					t.Errorf("log line %q contains secret %q", out, s)
				}
			}
			if !strings.Contains(out, Mask) {
				t.Errorf("log line %q has no mask", out)
			}
		})
	}
}

// TestRedactorPrefixSecrets: a secret that begins with another is masked
// whole, whichever order the secrets come in.
func TestRedactorPrefixSecrets(t *testing.T) {
	for _, secrets := range [][]string{
		{"sk-paygate-dev", "sk-paygate-dev-admin-token-9f8e"},
		{"sk-paygate-dev-admin-token-9f8e", "sk-paygate-dev"},
	} {
		got := NewRedactor(secrets).String("token sk-paygate-dev-admin-token-9f8e and key sk-paygate-dev")
		if want := "token " + Mask + " and key " + Mask; got != want {
			t.Errorf("secrets %q: got %q; want %q", secrets, got, want)
		}
	}
}
