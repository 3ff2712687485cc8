// Package proxy serves paygate's HTTP surfaces: the OpenAI-compatible client
// API the bots call, the operators' endpoints (health, readiness, metrics),
// the admin JSON API, the user's orders and refund-confirmation API, and the
// mounting of the WeChat Pay notify route. It owns the turn: one client
// request, which may take several upstream rounds.
//
// The turn is not built on httputil.ReverseProxy: a turn is a loop of upstream
// rounds with stream rewriting, which does not fit a single round trip. It
// keeps ReverseProxy's discipline instead: the client's request is read-only,
// the upstream request is paygate's own (built by failover from an allow-list
// of headers), and no SSE event waits in a buffer: the relay flushes before
// every wait for the provider, so the events of one upstream read leave in
// one write, and the first token leaves at once.
//
// Only this package writes OpenAI-shaped error JSON. It may import
// interceptors, failover, payments (with payments/audit and
// payments/wechatpay), accounting, store, sse, config and internal packages.
package proxy
