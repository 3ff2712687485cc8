package payments

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Catalog errors.
var (
	ErrUnknownSKU = errors.New("unknown sku")
	ErrQuantity   = errors.New("quantity out of range")
)

// CatalogItem is one catalog entry as configured: the price is a decimal
// string ("49.99"), never a float.
type CatalogItem struct {
	SKU         string
	Name        string
	Price       string
	MaxQuantity int // 0 means 1
}

// Item is a catalog entry with its price in fen.
type Item struct {
	SKU         string
	Name        string
	PriceFen    int64
	MaxQuantity int
}

// Catalog is the fixed price list: the only source of prices (the model can set
// none). It is immutable after NewCatalog and safe for concurrent use.
type Catalog struct {
	items map[string]Item
	skus  []string
}

// NewCatalog validates items: each SKU once, a name (one line of UTF-8
// text: descriptionText), a positive price in at most
// two decimals, a non-negative max quantity. Errors name the SKU.
func NewCatalog(items []CatalogItem) (*Catalog, error) {
	c := &Catalog{items: map[string]Item{}}
	for i, it := range items {
		if it.SKU == "" {
			return nil, fmt.Errorf("catalog[%d]: empty sku", i)
		}
		if _, dup := c.items[it.SKU]; dup {
			return nil, fmt.Errorf("catalog[%d]: sku %q listed twice", i, it.SKU)
		}
		if strings.TrimSpace(it.Name) == "" {
			return nil, fmt.Errorf("catalog[%d] %q: empty name", i, it.SKU)
		}
		if why := descriptionText(it.Name); why != "" {
			return nil, fmt.Errorf("catalog[%d] %q: name %s", i, it.SKU, why)
		}
		fen, err := ParseFen(it.Price)
		if err != nil {
			return nil, fmt.Errorf("catalog[%d] %q: price: %w", i, it.SKU, err)
		}
		if fen <= 0 {
			return nil, fmt.Errorf("catalog[%d] %q: price must be above 0.00", i, it.SKU)
		}
		if it.MaxQuantity < 0 {
			return nil, fmt.Errorf("catalog[%d] %q: max_quantity %d is negative", i, it.SKU, it.MaxQuantity)
		}
		mq := it.MaxQuantity
		if mq == 0 {
			mq = 1
		}
		// Divide rather than multiply: the product of a large max_quantity
		// could wrap past int64 and pass the bound.
		if int64(mq) > maxFen/fen {
			return nil, fmt.Errorf("catalog[%d] %q: price × max_quantity is too large", i, it.SKU)
		}
		c.items[it.SKU] = Item{SKU: it.SKU, Name: it.Name, PriceFen: fen, MaxQuantity: mq}
		c.skus = append(c.skus, it.SKU)
	}
	sort.Strings(c.skus)
	return c, nil
}

// Lookup returns the item for sku.
func (c *Catalog) Lookup(sku string) (Item, error) {
	it, ok := c.items[sku]
	if !ok {
		return Item{}, fmt.Errorf("%w: %q", ErrUnknownSKU, sku)
	}
	return it, nil
}

// SKUs lists the catalog's SKUs, sorted (the create_order tool's enum).
func (c *Catalog) SKUs() []string { return append([]string(nil), c.skus...) }

// Price returns the amount of quantity units of sku, in fen.
func (c *Catalog) Price(sku string, quantity int) (Item, int64, error) {
	it, err := c.Lookup(sku)
	if err != nil {
		return Item{}, 0, err
	}
	if quantity < 1 || quantity > it.MaxQuantity {
		return Item{}, 0, fmt.Errorf("%w: %d of %q (1..%d)", ErrQuantity, quantity, sku, it.MaxQuantity)
	}
	if int64(quantity) > maxFen/it.PriceFen { // unreachable past NewCatalog's bound; never wrap
		return Item{}, 0, fmt.Errorf("%w: %d of %q is too large an amount", ErrQuantity, quantity, sku)
	}
	return it, it.PriceFen * int64(quantity), nil
}

// descriptionText says why name cannot be an order's description, or ""
// (config refuses the same names at their file:line). Bytes that are not
// UTF-8 (a ${VAR} set in a GBK shell) reached WeChat Pay as U+FFFD, three
// bytes each: describe's cut counts bytes as they are, so a name of 127
// such bytes went out as 381 and every order of it was refused
// (PARAM_ERROR). A line break (a YAML ">" or "|" block ends in one) or
// another control character is no part of a name the payer reads on one
// line: "咖啡\n x2".
func descriptionText(name string) string {
	if !utf8.ValidString(name) {
		return "is not UTF-8 text"
	}
	for _, r := range name {
		switch {
		case r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029':
			return "holds a line break"
		case unicode.IsControl(r):
			return fmt.Sprintf("holds the control character U+%04X", r)
		}
	}
	return ""
}
