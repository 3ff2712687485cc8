package store

import "testing"

func TestOrderStatusValid(t *testing.T) {
	cases := []struct {
		name   string
		status OrderStatus
		want   bool
	}{
		{"known", StatusAwaitingPayment, true},
		{"last", StatusNeedsReview, true},
		{"empty", "", false},
		{"unknown", "approved", false},
		{"case matters", "PAID", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.status.Valid(); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
	if n := len(Statuses()); n != 11 {
		t.Errorf("Statuses: got %d; want the 11 of SPEC 2.3", n)
	}
}
