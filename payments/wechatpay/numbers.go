package wechatpay

import (
	"fmt"
)

// WeChat Pay's limits on merchant numbers. out_trade_no: 6–32 characters of
// [0-9A-Za-z_-|*]; out_refund_no: 1–64 characters of [0-9A-Za-z_-|*@].
const (
	MinOutTradeNoLen  = 6
	MaxOutTradeNoLen  = 32
	MaxOutRefundNoLen = 64
)

// ValidOutTradeNo reports whether no is acceptable to WeChat Pay as an
// out_trade_no. It is checked before any request so a bad number fails clearly
// here rather than as a PARAM_ERROR after a round trip.
func ValidOutTradeNo(no string) error {
	if len(no) < MinOutTradeNoLen || len(no) > MaxOutTradeNoLen {
		return fmt.Errorf("%w: out_trade_no %q must be %d-%d characters", ErrInvalidNumber, no, MinOutTradeNoLen, MaxOutTradeNoLen)
	}
	for i := 0; i < len(no); i++ {
		if !numberChar(no[i], false) {
			return fmt.Errorf("%w: out_trade_no %q has %q outside [0-9A-Za-z_-|*]", ErrInvalidNumber, no, no[i])
		}
	}
	return nil
}

// ValidOutRefundNo reports whether no is acceptable to WeChat Pay as an
// out_refund_no.
func ValidOutRefundNo(no string) error {
	if len(no) < 1 || len(no) > MaxOutRefundNoLen {
		return fmt.Errorf("%w: out_refund_no %q must be 1-%d characters", ErrInvalidNumber, no, MaxOutRefundNoLen)
	}
	for i := 0; i < len(no); i++ {
		if !numberChar(no[i], true) {
			return fmt.Errorf("%w: out_refund_no %q has %q outside [0-9A-Za-z_-|*@]", ErrInvalidNumber, no, no[i])
		}
	}
	return nil
}

func numberChar(c byte, at bool) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return true
	case c == '_', c == '-', c == '|', c == '*':
		return true
	case c == '@':
		return at
	}
	return false
}
