package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as Go duration text ("500ms", "10m",
// "4320h"). A bare 0 is allowed; other bare numbers are refused because "30"
// could mean seconds or nanoseconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses duration text. A bad value is a *yaml.TypeError, so
// decoding goes on and the loader reports every bad value in one go.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "want a duration such as \"30s\"")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return typeError(n, err.Error())
	}
	*d = Duration(v)
	return nil
}

// typeError is how a custom UnmarshalYAML reports a bad value: yaml.v3 keeps
// decoding after a *yaml.TypeError, collecting it with its own type errors,
// but aborts the whole decode on any other error. The "line N: " prefix is
// the shape of yaml's own messages, which the loader reads back.
func typeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{"line " + strconv.Itoa(n.Line) + ": " + msg}}
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MaxDuration is the longest duration a config may give: 10 years, far
// above any TTL, timeout or retention paygate reads, and far below
// time.Duration's largest (about 292 years), so a deadline or an expiry
// made of one plus a margin (the Redis store's TTL plus its grace) cannot
// wrap round to a negative sum: near the largest it did, and an order's
// or a claim's key expired at once.
const MaxDuration = 10 * 365 * 24 * time.Hour

var (
	durationInDays = regexp.MustCompile(`^([0-9]{1,6}) ?(d|days?|w|weeks?)$`)
	bareNumber     = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	// durationText is what time.ParseDuration reads, bar its range.
	durationText = regexp.MustCompile(`^[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$`)
)

// ParseDuration parses Go duration text, accepting a bare "0"; empty text
// (a quoted "", which a key with no value is not: yaml hands over no
// text for that), a negative duration, or one above MaxDuration, is an
// error. Read as 0, retain_text: "" kept no conversation text.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New(`empty: write a duration such as "30s", or leave the key out for its default`)
	}
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		// Retentions and TTLs are thought of in days, which Go's
		// durations do not have; the generic hint did not give the
		// hours to write.
		if m := durationInDays.FindStringSubmatch(s); m != nil {
			n, _ := strconv.Atoi(m[1])
			unit, hours := "days", 24*n
			if strings.HasPrefix(m[2], "w") {
				unit, hours = "weeks", 24*7*n
			}
			return 0, fmt.Errorf("%q: a duration has no %s: write hours (%s is %dh)", s, unit, s, hours)
		}
		if durationText.MatchString(s) {
			// Written as a duration, but longer than time.Duration
			// holds (about 292 years): above the ceiling as well, or
			// negative as any other below zero.
			if strings.HasPrefix(s, "-") {
				return 0, negativeDuration(s)
			}
			return 0, aboveMaxDuration(s)
		}
		if bareNumber.MatchString(s) {
			return 0, fmt.Errorf("%q has no unit: write one, e.g. \"%ss\", \"%sm\" or \"%sh\"", s, s, s, s)
		}
		return 0, fmt.Errorf("%q is not a duration (use e.g. \"500ms\", \"30s\", \"10m\")", s)
	}
	if v < 0 {
		return 0, negativeDuration(s)
	}
	if v > MaxDuration {
		return 0, aboveMaxDuration(s)
	}
	return v, nil
}

// negativeDuration is the error for s, a duration below zero.
func negativeDuration(s string) error {
	return fmt.Errorf("duration %q is negative", s)
}

// aboveMaxDuration is the error for s, a duration above MaxDuration.
func aboveMaxDuration(s string) error {
	return fmt.Errorf("%q is above the longest duration paygate takes, %s (10 years)", s, strings.TrimSuffix(MaxDuration.String(), "0m0s"))
}

// microsPerUnit is Decimal's fixed-point scale: six decimal places, enough for
// per-million-token prices such as "0.075".
const microsPerUnit = 1_000_000

// Decimal is a non-negative decimal amount written as a string ("49.99"),
// held in millionths so money is never a float.
type Decimal struct {
	Text   string
	Micros int64
}

// ErrDecimal reports a malformed decimal amount.
var ErrDecimal = errors.New("not a decimal amount")

// decimalError is an ErrDecimal that says itself what is wrong.
type decimalError string

func (e decimalError) Error() string        { return string(e) }
func (e decimalError) Is(target error) bool { return target == ErrDecimal }

// ParseDecimal parses "49.99", "500", "0.075" (at most six decimal places).
func ParseDecimal(s string) (Decimal, error) {
	t := strings.TrimSpace(s)
	whole, frac, hasDot := strings.Cut(t, ".")
	if whole == "" || (hasDot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return Decimal{}, fmt.Errorf("%q: %w (use e.g. \"49.99\")", s, ErrDecimal)
	}
	// A number, but one Decimal cannot hold: said so, not "use e.g.
	// 49.99" of what is written like it.
	if len(frac) > 6 {
		return Decimal{}, decimalError(fmt.Sprintf("%q has more than six decimals", s))
	}
	if len(whole) > 12 {
		return Decimal{}, decimalError(fmt.Sprintf("%q has more than 12 digits before the point", s))
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return Decimal{Text: t, Micros: w*microsPerUnit + f}, nil
}

// Fen returns the amount in fen (hundredths) and whether it is exact.
func (d Decimal) Fen() (int64, bool) {
	return d.Micros / 10_000, d.Micros%10_000 == 0
}

// IsZero reports whether the decimal was not set.
func (d Decimal) IsZero() bool { return d.Text == "" }

// UnmarshalYAML parses a decimal written as a string or a plain number; a bad
// value is a *yaml.TypeError, as for Duration.
func (d *Decimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "want a decimal amount such as \"49.99\"")
	}
	v, err := ParseDecimal(n.Value)
	if err != nil {
		return typeError(n, err.Error())
	}
	*d = v
	return nil
}

// MarshalYAML writes the decimal's text.
func (d Decimal) MarshalYAML() (any, error) { return d.Text, nil }

// maxFen is the largest amount, in fen, a catalog price or an order may
// have: 10^13 fen (100 billion CNY), far below int64 overflow, so sums and
// products of prices cannot wrap. It is payments' bound (payments.ParseFen,
// payments.NewCatalog), which serve applies to the catalog.
const maxFen = 10_000_000_000_000

// priceFen parses a catalog price into fen by the rules serve's catalog
// applies (payments.ParseFen), so check-config refuses what serve would:
// digits with at most two decimals ("49.99", "49.9", "49"), no leading zero
// ("049.99"), no trailing decimals beyond fen ("49.990"), at most 11 digits
// before the point. The errors name the value, as the config wrote it.
func priceFen(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("%q is not a price like \"49.99\"", s)
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("%q has more than two decimals (1 fen is 0.01)", s)
	}
	if len(whole) > 1 && whole[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", s)
	}
	if len(whole) > 11 {
		return 0, fmt.Errorf("%q is above the largest amount, %s", s, formatFen(maxFen))
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac+strings.Repeat("0", 2-len(frac)), 10, 64)
	fen := w*100 + f
	if fen > maxFen {
		return 0, fmt.Errorf("%q is above the largest amount, %s", s, formatFen(maxFen))
	}
	return fen, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// formatFen writes fen as "49.99".
func formatFen(fen int64) string {
	return fmt.Sprintf("%d.%02d", fen/100, fen%100)
}
