package payments_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/paygate/paygate/payments"
)

// TestLongNameIsCutBetweenCharactersAsSeen: a name past WeChat Pay's 127
// bytes of description is cut on a rune boundary, which can still fall
// inside one character as the payer sees it: a family emoji (👨‍👩‍👧, five
// runes joined by U+200D) went out as a lone 👨, a flag (🇨🇳, two regional
// indicators) as a boxed letter C, 👍🏽 without its skin tone, and é
// (e and U+0301) as e, a Hangul syllable written in jamo as its first
// jamo. The whole character is dropped instead, and no space is left
// before the count.
func TestLongNameIsCutBetweenCharactersAsSeen(t *testing.T) {
	base := strings.Repeat("会", 40) // 120 bytes; the name may take 124 beside " x2"
	tests := []struct{ sku, name, want string }{
		{"family", base + "👨\u200d👩\u200d👧", base},
		{"after-joiner", base[:117] + "ab" + "👨\u200d👩\u200d👧", base[:117] + "ab"},
		{"flag", base + "🇨🇳", base},
		{"flags", base[:111] + "a🇨🇳🇯🇵🇰🇷", base[:111] + "a🇨🇳"},
		{"skin-tone", base + "👍🏽", base},
		{"accent", strings.Repeat("a", 123) + "e\u0301", strings.Repeat("a", 123)},
		{"space", base + "ab 豆子", base + "ab"},
		{"whole", base + "😀", base + "😀"},
		// Characters whose later runes are no mark, joiner or selector
		// (Unicode's grapheme clusters, UAX #29): a Hangul syllable in
		// jamo (ᄒ ᅡ ᆫ) was described as ᄒ, Thai กำ (sara am) as ก,
		// half-width ｶﾞ as ｶ. A keycap (1, U+FE0F, U+20E3) goes whole.
		{"hangul-jamo", base + "\u1112\u1161\u11ab", base},
		{"thai-sara-am", base + "\u0e01\u0e33", base},
		{"half-width-kana", base + "\uff76\uff9e", base},
		{"keycap", base + "1\ufe0f\u20e3", base},
		// One character longer than the description takes (e and 70
		// combining accents, 141 bytes): cut on a rune boundary rather
		// than left empty, which WeChat Pay refuses.
		{"one-long-character", "e" + strings.Repeat("\u0301", 70), "e" + strings.Repeat("\u0301", 61)},
	}
	var items []payments.CatalogItem
	for _, tc := range tests {
		items = append(items, payments.CatalogItem{SKU: tc.sku, Name: tc.name, Price: "1.00", MaxQuantity: 2})
	}
	cat, err := payments.NewCatalog(items)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{service: func(o *payments.Options) { o.Catalog = cat }})
	tools := newTools(e)
	for _, tc := range tests {
		t.Run(tc.sku, func(t *testing.T) {
			got := call(t, tools, caller("oUser-cut-"+tc.sku), "create_order", `{"sku":"`+tc.sku+`","quantity":2}`)
			if got.result["status"] != "awaiting_payment" {
				t.Fatalf("result %s; want an order awaiting payment", got.out.Result)
			}
			d, _ := got.result["description"].(string)
			if want := tc.want + " x2"; d != want || len(d) > 127 || !utf8.ValidString(d) {
				tail := func(s string) string { r := []rune(s); return "…" + string(r[len(r)-min(len(r), 8):]) }
				t.Errorf("description %q (%d bytes); want %q", tail(d), len(d), tail(want))
			}
		})
	}
}
