package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the event's signature: "t=<unix>,v1=<hex>", where
// v1 is HMAC-SHA256(webhooks.secret, "<t>.<body>") over the raw body bytes.
// Signing the timestamp with the body lets a receiver refuse a replay of an
// old delivery without keeping every id forever.
const SignatureHeader = "X-Paygate-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify; a receiver answers 400 (or 401) to all of them and the
// event is retried.
var (
	// ErrNoSignature: the header is missing, has no t= part or no v1=
	// part of 64 hex digits (others are skipped), has two t= parts, or
	// its t= is not a number.
	ErrNoSignature = errors.New("webhook signature missing or malformed")
	// ErrTimestamp: the signed timestamp is outside the tolerance (a replay
	// of an old delivery, or a clock far off).
	ErrTimestamp = errors.New("webhook signature timestamp outside tolerance")
	// ErrSignature: no v1 signature matches the body under the secret, or
	// the secret is empty.
	ErrSignature = errors.New("webhook signature does not match")
)

// Sign returns the X-Paygate-Signature value of body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks an X-Paygate-Signature header against the raw request body:
// the timestamp must be within tolerance of now (DefaultTolerance when
// tolerance <= 0) and one of the v1 signatures must equal
// HMAC-SHA256(secret, "<t>.<body>"), compared in constant time. Several v1
// parts are accepted, as a sender may sign with more than one secret;
// paygate signs with one (webhooks.secret), so while it is rotated a
// receiver calls Verify with the old and the new secret in turn (README:
// "Rotating the secret"). Pass the body exactly as received: re-encoded JSON
// does not verify. An empty secret verifies nothing (ErrSignature): anyone
// can sign under it, so a receiver whose secret did not load would take a
// forged order.paid, and paygate never signs with one.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return fmt.Errorf("%w: the secret is empty (webhooks.secret not loaded?); no signature can be trusted", ErrSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	seenT := false
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if seenT {
				// Two timestamps: which was signed is anyone's guess
				// (the README's Node recipe refuses it too).
				return fmt.Errorf("%w: more than one t", ErrNoSignature)
			}
			ts, seenT = v, true
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrNoSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrTimestamp, d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	ok := 0
	for _, s := range sigs {
		ok |= boolInt(hmac.Equal(s, want))
	}
	if ok == 0 {
		return ErrSignature
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
