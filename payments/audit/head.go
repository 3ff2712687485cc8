package audit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/store"
)

// DefaultHeadEvery is how often the head is published (audit.head_every).
const DefaultHeadEvery = time.Minute

// PublishHead logs the chain head and sets paygate_audit_head_seq and
// paygate_audit_head_info{seq,hash} at once and then every every (default
// DefaultHeadEvery) until ctx ends. The log line ("audit head", seq, hash)
// and the scraped info metric are outside records a later
// `paygate audit verify --head SEQ:HASH` checks a cut from the end against.
func PublishHead(ctx context.Context, st store.Audit, every time.Duration, m *Metrics, log *slog.Logger) {
	if every <= 0 {
		every = DefaultHeadEvery
	}
	if m == nil {
		m = newMetrics()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := PublishHeadNow(ctx, st, m, log); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "audit head unavailable", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PublishHeadNow logs the chain head and sets the head metrics once, as
// PublishHead does every interval, and returns the store's error when it
// cannot read the head. serve calls it as it stops, once the audit worker
// has made its last append: the records appended since the last interval's
// publication were otherwise in no outside record, so a chain cut from the
// end while paygate was stopped (when the embedded file can be changed)
// was published whole by the next start. What it publishes and logs is
// the newest head published in the process: the worker may have appended
// (and published) a record after the read (Metrics.setHead).
func PublishHeadNow(ctx context.Context, st store.Audit, m *Metrics, log *slog.Logger) error {
	if m == nil {
		m = newMetrics()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h, err := st.AuditHead(ctx)
	if err != nil {
		return err
	}
	// The head published: a record the worker appended since the read
	// is newer than h (Metrics.setHead).
	h = m.setHead(h)
	// At info, but whatever log.level: the line is an outside record of
	// the head, not chatter (logging.Always). Digests: a short configured
	// secret of hex digits would otherwise be masked inside the hash
	// (logging.Digest).
	log.InfoContext(logging.Always(ctx), "audit head", "seq", h.Seq,
		"hash", logging.Digest(h.Hash), "head", logging.Digest(FormatHead(h)))
	return nil
}

// FormatHead writes a head as SEQ:HASH, the form --head takes.
func FormatHead(h store.AuditHead) string {
	return strconv.FormatUint(h.Seq, 10) + ":" + h.Hash
}

// ParseHead parses SEQ:HASH (the published head).
func ParseHead(s string) (store.AuditHead, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return store.AuditHead{}, fmt.Errorf("head %q: want SEQ:HASH", s)
	}
	if n == 0 && hash == "" {
		return store.AuditHead{}, nil
	}
	if n == 0 {
		// Verify compares a head's hash with its record's, and there is
		// no record 0: any hash passed as on the chain.
		return store.AuditHead{}, fmt.Errorf("head %q: record 0 is the empty chain's head, which has no hash (0:)", s)
	}
	if len(hash) != 64 || strings.Trim(strings.ToLower(hash), "0123456789abcdef") != "" {
		return store.AuditHead{}, fmt.Errorf("head %q: the hash must be 64 hex digits", s)
	}
	return store.AuditHead{Seq: n, Hash: strings.ToLower(hash)}, nil
}
