package payments_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/store"
)

func TestParseFen(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{name: "two decimals", in: "49.99", want: 4999, ok: true},
		{name: "one decimal", in: "49.9", want: 4990, ok: true},
		{name: "integer", in: "49", want: 4900, ok: true},
		{name: "one fen", in: "0.01", want: 1, ok: true},
		{name: "zero", in: "0", want: 0, ok: true},
		{name: "float trap", in: "0.29", want: 29, ok: true},
		{name: "large", in: "99999999999.99", want: 9999999999999, ok: true},
		{name: "empty", in: ""},
		{name: "three decimals", in: "1.234"},
		{name: "negative", in: "-1.00"},
		{name: "plus", in: "+1.00"},
		{name: "exponent", in: "1e3"},
		{name: "thousands separator", in: "1,000.00"},
		{name: "space", in: " 1.00"},
		{name: "trailing dot", in: "1."},
		{name: "leading dot", in: ".5"},
		{name: "leading zero", in: "01.00"},
		{name: "two dots", in: "1.0.0"},
		{name: "too large", in: "100000000000.00"},
		{name: "NaN", in: "NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := payments.ParseFen(tt.in)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Errorf("ParseFen(%q): got %d, %v; want %d", tt.in, got, err, tt.want)
				}
				if back, _ := payments.ParseFen(payments.FormatFen(got)); back != got {
					t.Errorf("round trip of %d: got %d", got, back)
				}
				return
			}
			if !errors.Is(err, payments.ErrAmount) || !strings.Contains(err.Error(), "invalid amount") {
				t.Errorf("ParseFen(%q): got %d, %v; want ErrAmount", tt.in, got, err)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		fen  int64
		want string
	}{
		{name: "price", fen: 4999, want: "49.99 CNY"},
		{name: "one fen", fen: 1, want: "0.01 CNY"},
		{name: "round", fen: 50000, want: "500.00 CNY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := payments.FormatAmount(tt.fen, ""); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	good := []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium", Price: "49.99", MaxQuantity: 12}, {SKU: "tip", Name: "Tip", Price: "0.10"}}
	tests := []struct {
		name    string
		items   []payments.CatalogItem
		wantErr string
	}{
		{name: "valid", items: good},
		{name: "bad price names the sku", items: []payments.CatalogItem{{SKU: "x", Name: "X", Price: "4.999"}}, wantErr: `"x": price`},
		{name: "float-looking price", items: []payments.CatalogItem{{SKU: "x", Name: "X", Price: "1e2"}}, wantErr: "not a decimal"},
		{name: "zero price", items: []payments.CatalogItem{{SKU: "x", Name: "X", Price: "0.00"}}, wantErr: "above 0.00"},
		{name: "duplicate sku", items: []payments.CatalogItem{{SKU: "x", Name: "X", Price: "1"}, {SKU: "x", Name: "Y", Price: "2"}}, wantErr: "twice"},
		{name: "empty sku", items: []payments.CatalogItem{{Name: "X", Price: "1"}}, wantErr: "empty sku"},
		{name: "no name", items: []payments.CatalogItem{{SKU: "x", Price: "1"}}, wantErr: "empty name"},
		{name: "negative max", items: []payments.CatalogItem{{SKU: "x", Name: "X", Price: "1", MaxQuantity: -1}}, wantErr: "negative"},
		{name: "price × max over the bound", items: []payments.CatalogItem{{SKU: "x", Name: "X", Price: "99999999999.00", MaxQuantity: 1000}}, wantErr: "too large"},
		// 100 fen × (2^62+1024) wraps int64 to 102400: the bound must not
		// be checked on the wrapped product.
		{name: "price × max wraps int64", items: []payments.CatalogItem{{SKU: "x", Name: "X", Price: "1.00", MaxQuantity: 1<<62 + 1024}}, wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := payments.NewCatalog(tt.items)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, amount, err := c.Price("premium-monthly", 3); err != nil || amount != 14997 {
				t.Errorf("3 × 49.99: got %d, %v; want 14997", amount, err)
			}
			if _, _, err := c.Price("premium-monthly", 13); !errors.Is(err, payments.ErrQuantity) {
				t.Errorf("13 of max 12: got %v; want ErrQuantity", err)
			}
			if _, _, err := c.Price("tip", 2); !errors.Is(err, payments.ErrQuantity) {
				t.Errorf("default max is 1: got %v; want ErrQuantity", err)
			}
			if _, _, err := c.Price("nope", 1); !errors.Is(err, payments.ErrUnknownSKU) {
				t.Errorf("unknown sku: got %v", err)
			}
			if got := strings.Join(c.SKUs(), ","); got != "premium-monthly,tip" {
				t.Errorf("SKUs: got %s", got)
			}
		})
	}
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		name     string
		from, to store.OrderStatus
		ok       bool
	}{
		{name: "prepay done", from: store.StatusCreating, to: store.StatusAwaitingPayment, ok: true},
		{name: "paid", from: store.StatusAwaitingPayment, to: store.StatusPaid, ok: true},
		{name: "paid from creating (ORDERPAID)", from: store.StatusCreating, to: store.StatusPaid, ok: true},
		{name: "expire", from: store.StatusAwaitingPayment, to: store.StatusExpired, ok: true},
		{name: "approval prepays", from: store.StatusApprovalRequired, to: store.StatusCreating, ok: true},
		{name: "refund", from: store.StatusPaid, to: store.StatusRefunding, ok: true},
		{name: "refund done", from: store.StatusRefunding, to: store.StatusRefunded, ok: true},
		{name: "review", from: store.StatusClosed, to: store.StatusNeedsReview, ok: true},
		{name: "held order paid anyway", from: store.StatusApprovalRequired, to: store.StatusNeedsReview, ok: true},
		{name: "rejected order paid anyway", from: store.StatusRejected, to: store.StatusNeedsReview, ok: true},
		{name: "closed cannot be paid", from: store.StatusClosed, to: store.StatusPaid},
		{name: "paid cannot close", from: store.StatusPaid, to: store.StatusClosed},
		{name: "paid cannot refund without refunding", from: store.StatusPaid, to: store.StatusRefunded},
		{name: "no way back to creating", from: store.StatusAwaitingPayment, to: store.StatusCreating},
		{name: "rejected is final", from: store.StatusRejected, to: store.StatusAwaitingPayment},
		{name: "refunded cannot be refunded again", from: store.StatusRefunded, to: store.StatusRefunding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := payments.CanTransition(tt.from, tt.to); got != tt.ok {
				t.Errorf("%s -> %s: got %v; want %v", tt.from, tt.to, got, tt.ok)
			}
		})
	}
}

// TestEveryStatusCanGoToReview: WeChat Pay's verified word about money can
// contradict an order in any status, and such an order must go to
// needs_review (SPEC 2.4); a missing edge made the notification fail with
// 500 until WeChat Pay gave up.
func TestEveryStatusCanGoToReview(t *testing.T) {
	for _, s := range store.Statuses() {
		if s != store.StatusNeedsReview && !payments.CanTransition(s, store.StatusNeedsReview) {
			t.Errorf("%s -> needs_review is not allowed; want every status to reach review", s)
		}
	}
}

func TestOrderNumbers(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		no := payments.NewOrderNo(testNow())
		if err := wechatpayValid(no); err != nil {
			t.Fatalf("%q: %v", no, err)
		}
		if seen[no] {
			t.Fatalf("duplicate number %q", no)
		}
		seen[no] = true
	}
	a := payments.ClaimKey("c", "u", "sku", 1)
	tests := []struct {
		name string
		key  string
		same bool
	}{
		{name: "same purchase", key: payments.ClaimKey("c", "u", "sku", 1), same: true},
		{name: "other quantity", key: payments.ClaimKey("c", "u", "sku", 2)},

		{name: "other user", key: payments.ClaimKey("c", "u2", "sku", 1)},
		{name: "other client", key: payments.ClaimKey("c2", "u", "sku", 1)},
		{name: "shifted boundary", key: payments.ClaimKey("cu", "", "sku", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.key == a) != tt.same {
				t.Errorf("key %s vs %s: same=%v; want %v", tt.key, a, tt.key == a, tt.same)
			}
		})
	}
}
