package config

import (
	"fmt"
	"testing"
)

// BenchmarkValidateLongAllowList checks the clients of a config whose one
// client may sell all of a catalog's 5,000 SKUs.
func BenchmarkValidateLongAllowList(b *testing.B) {
	c := &Config{}
	cl := Client{Name: "kiosk", Key: "sk-paygate-kiosk-key-0123456789"}
	for i := range 5000 {
		sku := fmt.Sprintf("tee-%05d", i)
		c.Payments.Catalog = append(c.Payments.Catalog, CatalogItem{SKU: sku, Name: sku, MaxQuantity: 5})
		cl.AllowedSKUs = append(cl.AllowedSKUs, sku)
	}
	c.Clients = []Client{cl}
	for b.Loop() {
		l := &loader{file: "c.yaml"}
		l.validateClients(c)
		if len(l.errs) > 0 {
			b.Fatal(l.errs)
		}
	}
}
