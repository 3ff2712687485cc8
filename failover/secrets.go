package failover

import (
	"strings"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
)

// errorText cuts the text of a non-JSON error body (an HTML error page, a
// WAF's or proxy's text) to the client's message, the configured secrets
// masked first. A provider, or a WAF in front of it, may quote the
// request's key anywhere in such a page; masking replaces whole values
// only, so a page cut first and masked after (by the proxy, by the log)
// handed the bot and the log the part of a key before the cut (the first
// 40 of 55 bytes when it straddled byte 512).
type errorText struct {
	// client masks what a client reads: the proxy's threshold
	// (logging.ClientMinSecret), so a placeholder key ("none") does not
	// mangle the page's words.
	client *logging.Redactor
	// all is every configured secret, the log's too: the cut splits none
	// of them, so that the log's redactor, which masks shorter ones, sees
	// each one whole.
	all *logging.Redactor
}

func newErrorText(cfg *config.Config) errorText {
	secrets := cfg.Secrets()
	return errorText{client: logging.NewRedactorMin(secrets, logging.ClientMinSecret), all: logging.NewRedactor(secrets)}
}

// cut returns text with its secrets masked, then at most n bytes of it,
// cut at a rune boundary (cutAtRune) and before any secret the cut would
// split, trimmed of spaces.
func (et errorText) cut(text string, n int) string {
	if et.client != nil {
		text = et.client.String(text)
	}
	b := []byte(text)
	c := len(cutAtRune(b, n))
	if et.all != nil {
		c = et.all.Cut(b, c)
	}
	return strings.TrimSpace(text[:c])
}
