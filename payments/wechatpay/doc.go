// Package wechatpay is paygate's WeChat Pay APIv3 backend: a thin layer over the
// official github.com/wechatpay-apiv3/wechatpay-go SDK that adds what the SDK
// leaves to its caller and what moving real money needs:
//
//   - key material loaded from files (merchant key, certificate serial, WeChat Pay
//     public key and/or platform certificates) and checked at construction, the
//     APIv3 key length included;
//   - a Verifier that accepts either the WeChat Pay public-key ID or a platform
//     certificate serial, so a migration between the two modes loses nothing;
//   - an api_base override through a host-rewriting http.RoundTripper (the SDK
//     hard-codes https://api.mch.weixin.qq.com), which is how tests and the
//     simulator stand in for the real API;
//   - errors classified by meaning (ORDERPAID, ORDER_CLOSED, retryable, rejected)
//     with bounded retries that always reuse the same out_trade_no/out_refund_no;
//   - NotifyVerifier: signature (on the raw bytes), serial, timestamp window and
//     AEAD_AES_256_GCM decryption of notifications, with a distinct error for each
//     way a notification can be wrong.
//
// The SDK's auto-download cipher is never used: it ignores the custom HTTP client
// and calls the real API.
//
// This package knows nothing of orders, stores or the proxy: it must not import
// any other paygate package.
package wechatpay
