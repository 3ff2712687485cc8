// Package wxsim is an in-process stand-in for WeChat Pay APIv3, speaking the
// real wire format over HTTP so the official wechatpay-go client (and
// paygate's notify route) run unchanged against it. It is paygate's default
// backend (`payments.backend: simulator`): a new user sees the whole payment
// flow without a merchant account.
//
// Like the real service it verifies the merchant's request signatures
// (WECHATPAY2-SHA256-RSA2048), signs every response (public-key mode by
// default, platform-certificate mode on request), keeps orders and refunds with
// WeChat's idempotency rules (same out_trade_no + same parameters = same
// order; ORDERPAID, ORDER_CLOSED, OUT_TRADE_NO_USED), and delivers signed,
// AEAD_AES_256_GCM-encrypted TRANSACTION.SUCCESS and REFUND.SUCCESS
// notifications to the order's notify_url, automatically after a delay or on
// an explicit Pay/CompleteRefund call (REFUND.CLOSED and REFUND.ABNORMAL on
// CloseRefund/AbnormalRefund; a closed refund's amount can be refunded
// again; with Options.RefundInterval, a new refund of an order sooner than
// that after its last one is answered 429 FREQUENCY_LIMITED, as WeChat Pay
// takes an order's refund requests a minute apart). It generates its own
// keys.
//
// For tests it records every request, counts prepays per number, builds
// arbitrary (also deliberately wrong) notifications, and injects faults: a
// request that is processed but never answered (a timeout), 500s,
// SYSTEM_ERROR, FREQUENCY_LIMITED, ORDERPAID, OUT_TRADE_NO_USED for a paid order.
//
// It imports only payments/wechatpay (for the client Config it hands out) and
// nothing else of paygate.
package wxsim
