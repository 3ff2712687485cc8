package main

import (
	"fmt"
	"strconv"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/interceptors"
)

// maxToolDefsBytes is the size of payment tool definitions, sent as
// prompt tokens with every signed-in turn, past which check-config and
// serve warn: 32 KB, some 8,000 tokens a turn.
const maxToolDefsBytes = 32 << 10

// warnCatalogSize warns at payments.catalog when a client is offered
// payment tool definitions past maxToolDefsBytes: they go to the provider
// with every signed-in turn, a catalog of 1,000 items some 78 KB (about
// 19,500 tokens) of them, 5,000 items more than many models' context. The
// bytes are those serve sends (interceptors.PaymentTools); a client
// limited by allowed_skus is offered its SKUs only, and with
// max_payment_calls 0 create_order, which carries the catalog, is not
// offered. It is here, where the wiring is, because config may import
// nothing of paygate (SPEC 10).
func warnCatalogSize(cfg *config.Config) {
	p := cfg.Payments
	if p.Budget.MaxPaymentCalls == 0 || p.Tools.CreateOrder == "" || len(p.Catalog) == 0 {
		return
	}
	spec := interceptors.ToolSpec{CreateOrder: p.Tools.CreateOrder, QueryOrder: p.Tools.QueryOrder, RequestRefund: p.Tools.RequestRefund}
	largest, who := 0, ""
	offer := func(client string, allowed []string) {
		s := spec
		only := make(map[string]bool, len(allowed))
		for _, sku := range allowed {
			only[sku] = true
		}
		for _, it := range p.Catalog {
			if len(only) > 0 && !only[it.SKU] {
				continue
			}
			fen, _ := it.Price.Fen()
			s.SKUs = append(s.SKUs, interceptors.SKU{ID: it.SKU, Name: it.Name, PriceFen: fen, MaxQuantity: it.MaxQuantity})
		}
		if n := len(interceptors.PaymentTools(s)); n > largest {
			largest, who = n, client
		}
	}
	if len(cfg.Clients) == 0 {
		offer("", nil) // the built-in development client
	}
	for _, cl := range cfg.Clients {
		offer(cl.Name, cl.AllowedSKUs)
	}
	if largest <= maxToolDefsBytes {
		return
	}
	to := "each bot"
	if who != "" {
		to = fmt.Sprintf("client %q", who)
	}
	cfg.Warn("payments.catalog", "%d items: the payment tool definitions offered to %s are %s bytes (about %s tokens), sent to the provider as prompt tokens with every signed-in turn, past %d KB; a model whose context is smaller refuses every such turn; list fewer items, or give each bot its own through clients[].allowed_skus",
		len(p.Catalog), to, thousands(largest), thousands(largest/4), maxToolDefsBytes>>10)
}

// thousands writes n with a comma between thousands: 91203 → "91,203".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
