package payments

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrAmount: a decimal amount string is not a valid CNY amount.
var ErrAmount = errors.New("invalid amount")

// maxFen bounds amounts far below int64 overflow (10^13 fen = 100 billion CNY),
// so sums and products of catalog prices cannot wrap.
const maxFen = 10_000_000_000_000

// ParseFen converts a decimal CNY string such as "49.99", "49.9" or "49" into
// integer fen. It never goes through a float: "0.1"+"0.2" must be 30 fen, not
// 30.000000000000004. Signs, exponents, separators, spaces and more than two
// decimals are refused with an error naming the input.
func ParseFen(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrAmount)
	}
	whole, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			whole, frac = s[:i], s[i+1:]
			break
		}
	}
	if whole == "" || !digits(whole) || (len(frac) == 0 && len(whole) < len(s)) || !digits(frac) {
		return 0, fmt.Errorf("%w: %q is not a decimal like 49.99", ErrAmount, s)
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("%w: %q has more than 2 decimals (1 fen is 0.01)", ErrAmount, s)
	}
	if len(whole) > 1 && whole[0] == '0' {
		return 0, fmt.Errorf("%w: %q has a leading zero", ErrAmount, s)
	}
	if len(whole) > 11 {
		return 0, fmt.Errorf("%w: %q is too large", ErrAmount, s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrAmount, s, err)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	fen := w*100 + f
	if fen > maxFen {
		return 0, fmt.Errorf("%w: %q is too large", ErrAmount, s)
	}
	return fen, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatFen renders fen as a decimal string with two decimals: 4999 → "49.99".
func FormatFen(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// FormatAmount renders fen with its currency, as tool results show it:
// "49.99 CNY".
func FormatAmount(fen int64, currency string) string {
	if currency == "" {
		currency = "CNY"
	}
	return FormatFen(fen) + " " + currency
}
