package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/paygate/paygate/store"
)

// Entry is one record as the export and the admin API present it: the chain
// fields, the body exactly as hashed (canonical JSON, so Hash(Body) == Hash
// can be checked from the export alone) and, when asked for and still kept,
// the conversation text.
type Entry struct {
	Seq      uint64          `json:"seq"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
	Body     json.RawMessage `json:"body"`
	// Text is the conversation text as kept (its SHA-256 is the body's
	// text_sha256); TextBase64 is used instead when it is not UTF-8.
	// TextErased says the record had a text that is no longer kept.
	Text       *string `json:"text,omitempty"`
	TextBase64 string  `json:"text_base64,omitempty"`
	TextErased bool    `json:"text_erased,omitempty"`
}

// NewEntry presents r; with texts it also reads r's conversation text.
func NewEntry(ctx context.Context, st store.Audit, r store.AuditRecord, texts bool) (Entry, error) {
	e := Entry{Seq: r.Seq, PrevHash: r.PrevHash, Hash: r.Hash, Body: r.Body}
	if !json.Valid(r.Body) {
		b, _ := json.Marshal(string(r.Body)) // a broken record still exports
		e.Body = b
	}
	if !texts {
		return e, nil
	}
	body, err := Decode(r.Body)
	if err != nil || body.TextSHA256 == "" {
		return e, nil
	}
	text, err := st.GetAuditText(ctx, r.Seq)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e.TextErased = true
	case err != nil:
		return e, fmt.Errorf("read audit text %d: %w", r.Seq, err)
	case utf8.Valid(text):
		s := string(text)
		e.Text = &s
	default:
		e.TextBase64 = base64.StdEncoding.EncodeToString(text)
	}
	return e, nil
}

// ExportOptions tunes Export.
type ExportOptions struct {
	From  uint64 // first record (default 1)
	Texts bool   // include the conversation texts still kept
}

// Export writes the chain from o.From on as JSON Lines, one Entry per line,
// and reports how many it wrote. Bodies are written byte for byte as hashed.
// A record missing before the store's head, or one stored beyond it, ends
// it with an error wrapping ErrBroken, after the records before it.
func Export(ctx context.Context, st store.Audit, w io.Writer, o ExportOptions) (int, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep the hashed bytes exact
	next, n := max(o.From, 1), 0
	// The head read first: the export reaches at least it, or says which
	// record is missing (a store's read stops at, or seeks past, a hole).
	sh, err := st.AuditHead(ctx)
	if err != nil {
		return n, fmt.Errorf("read audit head: %w", err)
	}
	for {
		recs, err := st.ReadAudit(ctx, next, readPage)
		var corrupt *store.CorruptAuditRecordError
		if err != nil && !errors.As(err, &corrupt) {
			return n, fmt.Errorf("read audit records from %d: %w", next, err)
		}
		if len(recs) == 0 && corrupt == nil {
			if next <= sh.Seq {
				return n, fmt.Errorf("record %d is missing: the export ends at record %d, the store's head is record %d: %w (run paygate audit verify)",
					next, next-1, sh.Seq, ErrBroken)
			}
			// Nothing at the place after the chain, but Redis reads a
			// place only when asked for it: a record stored further on,
			// past an empty place, is found only by asking the store
			// (read with its head, so a record appended since is none).
			if sa, ok := st.(store.AuditStrays); ok {
				at, err := sa.AuditStrayAfterHead(ctx)
				if err != nil {
					return n, fmt.Errorf("look for audit records beyond the head: %w", err)
				}
				if at != 0 {
					return n, fmt.Errorf("record %d is stored beyond the store's head, past an empty place, outside the chain's append: %w (run paygate audit verify)",
						at, ErrBroken)
				}
			}
			return n, nil
		}
		for _, r := range recs {
			if next > sh.Seq {
				// Past the head read first: an append since (Redis, live)
				// moved the head with its record, so the head read now
				// reaches it; a record it does not reach is not in the
				// chain, however well it links, whatever seq it claims.
				if sh, err = st.AuditHead(ctx); err != nil {
					return n, fmt.Errorf("read audit head: %w", err)
				}
				if next > sh.Seq {
					return n, beyondHeadErr(ctx, st, sh, r.Seq)
				}
			}
			if r.Seq < next {
				return n, fmt.Errorf("record %d is stored after record %d: %w (run paygate audit verify)", r.Seq, next-1, ErrBroken)
			}
			if r.Seq > next {
				return n, fmt.Errorf("record %d is missing: record %d is stored after record %d: %w (run paygate audit verify)", next, r.Seq, next-1, ErrBroken)
			}
			e, err := NewEntry(ctx, st, r, o.Texts)
			if err != nil {
				return n, err
			}
			if err := enc.Encode(e); err != nil {
				return n, fmt.Errorf("write audit record %d: %w", r.Seq, err)
			}
			n++
			next = r.Seq + 1
		}
		if corrupt != nil {
			// The records before it are written; an auditor's copy ends
			// at the first value that is not a record.
			return n, fmt.Errorf("%w: %w (run paygate audit verify)", corrupt, ErrBroken)
		}
	}
}

// beyondHeadErr is Export's error for a record read past head sh, claiming
// seq claims: named by the place it is stored at where the store can say
// (store.AuditStrays; the embedded store's read seeks past empty places,
// and the seq is the record's own claim), else by its claim.
func beyondHeadErr(ctx context.Context, st store.Audit, sh store.AuditHead, claims uint64) error {
	at := claims
	if sa, ok := st.(store.AuditStrays); ok {
		p, err := sa.AuditStrayAfterHead(ctx)
		if err != nil {
			return fmt.Errorf("look for audit records beyond the head: %w", err)
		}
		if p != 0 {
			at = p
		}
	}
	if at != claims {
		return fmt.Errorf("record %d is stored beyond the store's head (record %d), a record saying it is record %d, outside the chain's append: %w (run paygate audit verify)",
			at, sh.Seq, claims, ErrBroken)
	}
	return fmt.Errorf("record %d is stored beyond the store's head (record %d), outside the chain's append: %w (run paygate audit verify)",
		at, sh.Seq, ErrBroken)
}
