package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/store"
)

// NotifyPath is where WeChat Pay posts notifications.
const NotifyPath = "/wechatpay/notify"

// maxNotifyBody bounds a notification body; real ones are about 1 KiB.
const maxNotifyBody = 64 << 10

// NotifyHandler serves POST /wechatpay/notify (SPEC 2.4). Mount it on the main
// listener or on server.notify_listen.
func (s *Service) NotifyHandler() http.Handler { return s.notify }

type notifyHandler struct {
	s *Service
	// refusals paces the lines of notifications refused unverified, by
	// reason (a fixed few, the handler's own).
	refusals logging.Paced
}

func newNotifyHandler(s *Service) *notifyHandler {
	return &notifyHandler{s: s, refusals: logging.Paced{Every: refusalLogEvery}}
}

// refusalLogEvery is how often a notification refused before its signature
// is verified (a reason of notifyHandler.refusedEarly or rejected's) is
// logged at most, per reason. The route is open to the internet and such a
// refusal costs a sender nothing: logged each, a flood of 2,000 forgeries a
// second wrote 780 KB of log a second (67 GB a day) from one sender. The
// metric counts every one; the first of a reason is logged at once, and the
// next line of it past the interval says how many were left out since
// (suppressed, logging.Paced), as the Redis driver's lines do.
const refusalLogEvery = 10 * time.Second

// logRefusal logs a notification refused unverified, at most once per
// refusalLogEvery for its reason.
func (h *notifyHandler) logRefusal(ctx context.Context, level slog.Level, msg, reason string, attrs []any) {
	h.refusals.Log(ctx, h.s.log, level, reason, h.s.now(), msg, append(attrs, "reason", reason)...)
}

// verdict is how one notification ended: HTTP status, metric labels, log.
type verdict struct {
	status  int
	event   string
	outcome string
	reason  string
	msg     string
	// unread: refused before the body was read. The answer to a request
	// with a body closes the connection: kept alive, net/http reads what a
	// handler left of a body under 256 KiB before it answers, so a sender
	// that declared 100 KB and stopped got its refusal only at the read
	// deadline.
	unread bool
}

// ServeHTTP verifies the raw bytes, decrypts, applies the transition exactly
// once, records the notification id, then acknowledges with 204. Nothing here
// waits on WeChat Pay or an LLM.
func (h *notifyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s := h.s
	// The whole body within NotifyReadTimeout: a notification is sent at
	// once, and a sender that trickles one must not hold its connection
	// for as long as it keeps sending. The error (a server that cannot set
	// deadlines) leaves the server's own bounds, as before.
	_ = http.NewResponseController(w).SetReadDeadline(start.Add(s.opts.NotifyReadTimeout))
	// The route is served outside the proxy's middleware (nothing may touch
	// its body or headers), so it makes its own request id: every line of
	// one delivery, down to the order's transition, carries it, as every
	// other request's lines do.
	v := h.handle(r.WithContext(logging.WithRequestID(r.Context(), logging.NewRequestID())))
	s.m.notifications.WithLabelValues(v.event, v.outcome, v.reason).Inc()
	s.m.notifyDuration.Observe(time.Since(start).Seconds())
	if v.status >= 300 {
		if v.unread && r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
		if v.status == http.StatusMethodNotAllowed {
			// The route serves every method (the proxy mounts it so), so
			// this 405 names the one it takes, as ServeMux's did.
			w.Header().Set("Allow", http.MethodPost)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(v.status)
		b, _ := json.Marshal(map[string]string{"code": "FAIL", "message": v.msg})
		_, _ = w.Write(b)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *notifyHandler) handle(r *http.Request) verdict {
	s := h.s
	ctx := r.Context()
	if r.Method != http.MethodPost {
		h.refusedEarly(r, "method", nil)
		return verdict{status: http.StatusMethodNotAllowed, event: "", outcome: "rejected", reason: "method", msg: "POST only", unread: true}
	}
	if s.opts.Notify == nil {
		s.log.ErrorContext(ctx, "ALERT: notification received but no notify verifier is configured", "alert", true)
		return verdict{status: http.StatusInternalServerError, outcome: "error", reason: "not_configured", msg: "notifications not configured", unread: true}
	}
	if r.ContentLength > maxNotifyBody {
		// Declared too large: refused before a byte is read, as the bots'
		// API refuses one, rather than held until the read deadline and
		// then told the body could not be read (unread: nor held by the
		// server's own drain of it).
		h.refusedEarly(r, "too_large", fmt.Errorf("declared body of %d bytes above %d", r.ContentLength, maxNotifyBody))
		return verdict{status: http.StatusRequestEntityTooLarge, outcome: "rejected", reason: "too_large", msg: "body too large", unread: true}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxNotifyBody+1))
	if err != nil {
		h.refusedEarly(r, "read_body", err)
		return verdict{status: http.StatusBadRequest, outcome: "rejected", reason: "read_body", msg: "cannot read body"}
	}
	if len(body) > maxNotifyBody {
		h.refusedEarly(r, "too_large", fmt.Errorf("body above %d bytes", maxNotifyBody))
		return verdict{status: http.StatusRequestEntityTooLarge, outcome: "rejected", reason: "too_large", msg: "body too large"}
	}
	note, err := s.opts.Notify.Verify(ctx, r.Header, body, s.now())
	if note != nil && note.ID != "" {
		// WeChat Pay's id of the notification, which its audit record
		// keeps (notification_id), on every line from here down, so an
		// operator ties them to the order's audit.
		ctx = logging.WithAttrs(ctx, slog.String("notification_id", note.ID))
	}
	if err != nil {
		return h.rejected(ctx, r, note, err)
	}
	var v verdict
	switch note.EventType {
	case wechatpay.EventTransactionSuccess:
		v = h.payment(ctx, note)
	case wechatpay.EventRefundSuccess, wechatpay.EventRefundAbnormal, wechatpay.EventRefundClosed:
		v = h.refund(ctx, note)
	default:
		s.log.WarnContext(ctx, "notification of an event paygate does not handle; acknowledged", "notification_id", note.ID, "event", note.EventType)
		v = verdict{status: http.StatusNoContent, outcome: "ignored", reason: "event_type"}
	}
	v.event = note.EventType
	if v.status >= 300 {
		return v
	}
	// Committed: remember the id. Recording after the transition (which is
	// itself idempotent) means a crash in between cannot lose a payment.
	first, serr := s.store.SeenNotification(ctx, note.ID, s.opts.NotificationTTL)
	if serr != nil {
		s.log.WarnContext(ctx, "notification applied but its id was not recorded", "notification_id", note.ID, "err", serr)
	} else if !first && v.outcome == OutcomeDuplicate {
		v.reason = "replay"
	}
	return v
}

// refusedEarly logs a notification refused before its signature was
// checked (reason, as the metric's label; err may be nil), as rejected
// does a verification's refusal: every reason of refusal has its log line
// (paced by logRefusal), so an operator can tell why WeChat Pay's
// notifications are refused.
func (h *notifyHandler) refusedEarly(r *http.Request, reason string, err error) {
	attrs := []any{"method", wechatpay.LogValue(r.Method), "serial", wechatpay.LogValue(r.Header.Get(wechatpay.HeaderSerial)), "remote_addr", r.RemoteAddr}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	h.logRefusal(r.Context(), slog.LevelWarn, "notification rejected", reason, attrs)
}

func (h *notifyHandler) rejected(ctx context.Context, r *http.Request, note *wechatpay.Notification, err error) verdict {
	s := h.s
	attrs := []any{"serial", wechatpay.LogValue(r.Header.Get(wechatpay.HeaderSerial)), "timestamp", wechatpay.LogValue(r.Header.Get(wechatpay.HeaderTimestamp)), "remote_addr", r.RemoteAddr, "err", err}
	switch {
	case errors.Is(err, wechatpay.ErrDecrypt):
		// Signed by WeChat Pay but not readable: WeChat Pay's word about
		// money, never acknowledged unread. 500 makes WeChat retry while an
		// operator acts, and the alert names the cause: only a resource the
		// key does not open points at the APIv3 key, not an algorithm
		// paygate does not support or a resource not well formed.
		event, id := "", ""
		if note != nil {
			event, id = note.EventType, note.ID
		}
		msg, reason := "ALERT: signed notification does not decrypt; check payments.wechatpay.apiv3_key", "decrypt_failed"
		switch {
		case errors.Is(err, wechatpay.ErrDecryptPreviousKey):
			// A key's change under way: the outgoing key, mistyped or
			// swapped with the new one, is as likely the wrong one.
			msg = "ALERT: signed notification does not decrypt with either key; check payments.wechatpay.apiv3_key and apiv3_previous_key (the key set on the merchant platform, and the one before it)"
		case errors.Is(err, wechatpay.ErrDecryptAlgorithm):
			msg, reason = "ALERT: signed notification's resource uses an algorithm paygate does not support", "unsupported_algorithm"
		case errors.Is(err, wechatpay.ErrDecryptFormat):
			msg, reason = "ALERT: signed notification's resource is not well formed (nonce or ciphertext)", "malformed_resource"
		}
		s.log.ErrorContext(ctx, msg, append(attrs, "alert", true, "reason", reason, "notification_id", id, "event", event)...)
		return verdict{status: http.StatusInternalServerError, event: event, outcome: "error", reason: reason, msg: "cannot decrypt resource"}
	case errors.Is(err, wechatpay.ErrMalformed):
		// Signed by WeChat Pay, so its word, perhaps about money, yet not
		// a notification paygate can read (no id or event_type, not JSON):
		// as a resource not well formed, 500 and an alert. Refused as a
		// forgery (400, "rejected", no alert), it was retried for a day
		// past every alert rule, and a payment of an order paygate does
		// not know, which no sweep asks about, was lost unseen.
		s.log.ErrorContext(ctx, "ALERT: signed notification is not one paygate can read (not JSON, or no id or event_type)",
			append(attrs, "alert", true, "reason", "malformed")...)
		return verdict{status: http.StatusInternalServerError, outcome: "error", reason: "malformed", msg: "malformed notification"}
	}
	reason := "bad_signature"
	switch {
	case errors.Is(err, wechatpay.ErrSignatureProbe):
		// WeChat Pay checking that paygate verifies signatures: refused,
		// as it expects, and no sign of a forgery or a changed key.
		h.logRefusal(ctx, slog.LevelInfo, "notification rejected: wechat pay's signature probe, refused as it expects", "signature_probe", attrs)
		return verdict{status: http.StatusUnauthorized, outcome: "rejected", reason: "signature_probe", msg: "bad_signature"}
	case errors.Is(err, wechatpay.ErrMissingHeaders):
		reason = "missing_headers"
	case errors.Is(err, wechatpay.ErrUnknownSerial):
		reason = "unknown_serial"
	case errors.Is(err, wechatpay.ErrStaleTimestamp):
		reason = "stale_timestamp"
	}
	h.logRefusal(ctx, slog.LevelWarn, "notification rejected", reason, attrs)
	return verdict{status: http.StatusUnauthorized, outcome: "rejected", reason: reason, msg: reason}
}

func (h *notifyHandler) payment(ctx context.Context, note *wechatpay.Notification) verdict {
	s := h.s
	var res wechatpay.TransactionResource
	if err := json.Unmarshal(note.Plaintext, &res); err != nil || res.OutTradeNo == "" {
		s.log.ErrorContext(ctx, "ALERT: decrypted payment resource is not a transaction", "alert", true, "notification_id", note.ID, "err", err)
		return verdict{status: http.StatusInternalServerError, outcome: "error", reason: "bad_resource", msg: "bad resource"}
	}
	if res.TradeState != wechatpay.TradeSuccess {
		s.log.WarnContext(ctx, "payment notification without SUCCESS; acknowledged", "notification_id", note.ID, "order_no", res.OutTradeNo, "trade_state", res.TradeState)
		return verdict{status: http.StatusNoContent, outcome: "ignored", reason: "trade_state"}
	}
	_, outcome, reason, err := s.applyPayment(ctx, res.OutTradeNo, factFromResource(&res), "notification", note.ID)
	if err == nil && outcome == OutcomeDuplicate {
		err = s.confirmReplicated(ctx, res.OutTradeNo)
	}
	if err != nil {
		return h.notApplied(ctx, note, "notification not applied; WeChat Pay will retry", err, "order_no", res.OutTradeNo,
			"transaction_id", res.TransactionID, "total_fen", res.Amount.Total, "currency", res.Amount.Currency)
	}
	if reason == "" {
		reason = "ok"
	}
	return verdict{status: http.StatusNoContent, outcome: outcome, reason: reason}
}

// notApplied answers a verified notification that was not committed: 500
// FAIL, so WeChat Pay retries. Any other failure than a refused transition
// (the store did not answer, or failed) is logged under msg, its metric
// reason store_unavailable or store_error (storeReason). A transition the
// state machine refuses would refuse every retry too, WeChat Pay's word
// about money going unrecorded for good (every status has an edge to
// needs_review, so only a bug gets here): it raises an alert naming the
// order and the fact (attrs), for a person to record it by hand.
func (h *notifyHandler) notApplied(ctx context.Context, note *wechatpay.Notification, msg string, err error, attrs ...any) verdict {
	attrs = append([]any{"notification_id", note.ID, "event", note.EventType}, attrs...)
	if errors.Is(err, ErrTransition) {
		h.s.log.ErrorContext(ctx, "ALERT: verified notification not recorded: the order's state machine refuses it; record it by hand",
			append(attrs, "alert", true, "err", err)...)
		return verdict{status: http.StatusInternalServerError, outcome: "error", reason: "transition_refused", msg: "unable to record"}
	}
	h.s.log.ErrorContext(ctx, msg, append(attrs, "err", err)...)
	return verdict{status: http.StatusInternalServerError, outcome: "error", reason: storeReason(err), msg: "temporarily unable to record"}
}

// confirmReplicated is nil once order no, as the store holds it, is on
// as many replicas as a money write must reach (store.Replicated; at once
// on a store without replicas to wait for). A notification found already
// applied is answered success only then: its first copy's write may have
// been answered FAIL because no replica acknowledged it in time
// (store.redis.wait_replicas), and a retry answered success while the
// write is on the primary alone is WeChat Pay's word gone for good if a
// failover loses it: acknowledged, it is never sent again. The retry is
// answered as the first copy was, and the next one asks again. So too a
// refund confirmation that finds the order already reserved for it
// (confirmRefund) sends the refund only then.
func (s *Service) confirmReplicated(ctx context.Context, no string) error {
	r, ok := s.store.(store.Replicated)
	if !ok {
		return nil
	}
	if err := r.ConfirmOrder(ctx, no); err != nil {
		return fmt.Errorf("order %s found applied, not confirmed on the store's replicas: %w", no, err)
	}
	return nil
}

func storeReason(err error) string {
	if errors.Is(err, store.ErrUnavailable) {
		return "store_unavailable"
	}
	return "store_error"
}

// refund applies REFUND.* notifications through applyRefundNote: only the
// refund in flight of a `refunding` order moves it; late copies change
// nothing; anything else that disagrees with the record goes to
// needs_review, and a refund of an unknown order to an orphan's record.
func (h *notifyHandler) refund(ctx context.Context, note *wechatpay.Notification) verdict {
	s := h.s
	var res wechatpay.RefundResource
	if err := json.Unmarshal(note.Plaintext, &res); err != nil || res.OutTradeNo == "" || res.OutRefundNo == "" {
		s.log.ErrorContext(ctx, "ALERT: decrypted refund resource is not a refund", "alert", true, "notification_id", note.ID, "err", err)
		return verdict{status: http.StatusInternalServerError, outcome: "error", reason: "bad_resource", msg: "bad resource"}
	}
	fact := refundFact{
		OutTradeNo: res.OutTradeNo, OutRefundNo: res.OutRefundNo, Status: res.RefundStatus, MchID: res.MchID,
		RefundFen: res.Amount.Refund, TotalFen: res.Amount.Total, TransactionID: res.TransactionID,
	}
	outcome, reason, orphan, err := s.applyRefundNote(ctx, fact, note.ID)
	if err == nil && outcome == OutcomeDuplicate {
		err = s.confirmReplicated(ctx, res.OutTradeNo)
	}
	switch {
	case err != nil: // an orphan not recorded too (errOrphanNotRecorded): logged with the store's error
		return h.notApplied(ctx, note, "refund notification not applied; WeChat Pay will retry", err, "order_no", res.OutTradeNo,
			"out_refund_no", res.OutRefundNo, "refund_status", res.RefundStatus, "refund_fen", res.Amount.Refund)
	case reason == "" && !orphan: // an orphan's reason is passed on as it is
		reason = "ok"
	}
	return verdict{status: http.StatusNoContent, outcome: outcome, reason: reason}
}
