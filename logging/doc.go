// Package logging builds paygate's log/slog handler: JSON lines that can never
// carry a secret.
//
// Redaction happens in the handler, not at call sites, so a secret that reaches
// a log call by accident (an error message that quotes a header, a config dump)
// is still masked. It imports nothing of paygate.
package logging
