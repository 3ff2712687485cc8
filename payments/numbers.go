package payments

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewOrderNo makes an out_trade_no within WeChat's limits (6–32 characters of
// [0-9A-Za-z_-|*]): "PG", the UTC time to the second, and 14 random base62
// characters (83 bits), 28 characters in all. It sorts by time and is never
// reused: a closed number is dead at WeChat Pay.
func NewOrderNo(now time.Time) string {
	b := make([]byte, 14)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return "PG" + now.UTC().Format("060102150405") + string(b)
}

// OrderNoTime is the UTC time, to the second, an order number NewOrderNo
// made carries; ok is false for a number of another shape (one WeChat Pay
// reports that paygate did not make).
func OrderNoTime(no string) (t time.Time, ok bool) {
	if len(no) != 28 || no[:2] != "PG" {
		return time.Time{}, false
	}
	for i := 14; i < len(no); i++ {
		if !strings.ContainsRune(base62, rune(no[i])) {
			return time.Time{}, false
		}
	}
	t, err := time.Parse("060102150405", no[2:14])
	return t, err == nil
}

// ClaimKey identifies a purchase for idempotency (SPEC 4): the same client,
// user, sku and quantity are the same purchase, however it is paid. The pay
// method is how, not what: with it in the key, a user who asked for a QR
// code after a JSAPI order got a second payable order for the same goods,
// and one who had just paid got a new order rather than already_paid
// (CreateOrder closes the open order of the other method instead). Hashed
// so user ids and SKUs of any shape make a short, delimiter-safe key.
func ClaimKey(client, user, sku string, quantity int) string {
	h := sha256.New()
	for _, p := range []string{client, user, sku, strconv.Itoa(quantity)} {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return "purchase:" + hex.EncodeToString(h.Sum(nil)[:16])
}
