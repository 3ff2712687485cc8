package main

import (
	"fmt"
	"strconv"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/proxy"
)

// maxToolDefsBytes is the size of payment tool definitions, sent as
// prompt tokens with every signed-in turn, past which check-config and
// serve warn: 32 KB, some 8,000 tokens a turn.
const maxToolDefsBytes = 32 << 10

// warnCatalogSize warns at payments.catalog when a client is offered
// payment tool definitions past maxToolDefsBytes: they go to the provider
// with every signed-in turn, a catalog of 1,000 items some 78 KB (about
// 19,500 tokens) of them, 5,000 items more than many models' context. The
// bytes are those serve sends, rendered by the one function that renders
// them for serve (proxy.PaymentToolDefs): a client limited by
// allowed_skus is offered its SKUs only, its pay methods (its own or
// payments.pay_methods) shape create_order, and with max_payment_calls 0
// create_order, which carries the catalog, is not offered. It is here,
// where the wiring is, because config may import nothing of paygate
// (SPEC 10).
func warnCatalogSize(cfg *config.Config) {
	if len(cfg.Payments.Catalog) == 0 {
		return
	}
	defs, byClient := proxy.PaymentToolDefs(cfg)
	largest, who := 0, ""
	if len(cfg.Clients) == 0 {
		largest = len(defs) // the built-in development client's
	}
	for _, cl := range cfg.Clients {
		d, ok := byClient[cl.Name]
		if !ok {
			d = defs
		}
		if len(d) > largest {
			largest, who = len(d), cl.Name
		}
	}
	if largest <= maxToolDefsBytes {
		return
	}
	to := "each bot"
	if who != "" {
		to = fmt.Sprintf("client %q", who)
	}
	cfg.Warn("payments.catalog", "%d items: the payment tool definitions offered to %s are %s bytes (about %s tokens), sent to the provider as prompt tokens with every signed-in turn, past %d KB; a model whose context is smaller refuses every such turn; list fewer items, or give each bot its own through clients[].allowed_skus",
		len(cfg.Payments.Catalog), to, thousands(largest), thousands(largest/4), maxToolDefsBytes>>10)
}

// thousands writes n with a comma between thousands: 91203 → "91,203".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
