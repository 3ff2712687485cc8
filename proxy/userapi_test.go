package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wechatpay"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

const otherClientKey = "sk-other-bot-key-0123456789"

// noWeChatPay is a payments.Backend for tests whose orders never need
// WeChat Pay (paid, closed, refunded): every call fails.
type noWeChatPay struct{}

var errNoWeChatPay = errors.New("test: WeChat Pay is not reachable")

func (noWeChatPay) Prepay(context.Context, wechatpay.PrepayRequest) (*wechatpay.PrepayResult, error) {
	return nil, errNoWeChatPay
}
func (noWeChatPay) RequestPayment(context.Context, string, string) (*wechatpay.RequestPayment, error) {
	return nil, errNoWeChatPay
}
func (noWeChatPay) QueryOrder(context.Context, string) (*wechatpay.Transaction, error) {
	return nil, errNoWeChatPay
}
func (noWeChatPay) CloseOrder(context.Context, string) error { return errNoWeChatPay }
func (noWeChatPay) CreateRefund(context.Context, wechatpay.RefundRequest) (*wechatpay.Refund, error) {
	return nil, errNoWeChatPay
}
func (noWeChatPay) QueryRefund(context.Context, string) (*wechatpay.Refund, error) {
	return nil, errNoWeChatPay
}

// userAPIServer serves the user API of a proxy whose payments.Service runs
// over st, for the clients shop-bot (testClientKey) and other-bot
// (otherClientKey), and returns its URL.
func userAPIServer(t *testing.T, st payments.Store) string {
	t.Helper()
	url, _ := userAPIServerLog(t, st)
	return url
}

// userAPIServerLog is userAPIServer, with the log it writes.
func userAPIServerLog(t *testing.T, st payments.Store) (string, *logtest.Buffer) {
	t.Helper()
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{Name: "other-bot", Key: otherClientKey})
	})
	logs := &logtest.Buffer{}
	log := logging.New(logs, slog.LevelDebug, cfg.Secrets())
	reg := prometheus.NewRegistry()
	catalog, err := payments.NewCatalog([]payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99"}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := payments.New(payments.Options{Store: st, Backend: noWeChatPay{}, Catalog: catalog, MchID: "1900000001", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, Registry: reg,
		HashKey: []byte(cfg.Privacy.HashKey), UserPayments: svc})
	if err != nil {
		t.Fatal(err)
	}
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

// listOrders is GET /v1/paygate/orders?query as user of the client with key.
func listOrders(t *testing.T, base, key, user, query string) (int, gjson.Result) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/paygate/orders?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set(headerOpenID, user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, gjson.Parse(readAll(t, resp.Body))
}

// seedOrders stores n paid orders of (client, user), three per instant (so a
// page can end inside a run of orders created at the same time), from
// created on, and returns their numbers newest first, as the list shows them.
func seedOrders(t *testing.T, st store.Store, client, user, prefix string, n int, created time.Time) []string {
	t.Helper()
	want := make([]string, n)
	for i := range n {
		no := fmt.Sprintf("%s%04d", prefix, i)
		o := storetest.NewOrder(no, client, user, created.Add(time.Duration(i/3)*time.Second))
		o.Status, o.PaidAt = store.StatusPaid, o.CreatedAt
		if err := st.CreateOrder(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		want[n-1-i] = no
	}
	return want
}

// TestUserOrdersPages: a user with more orders than fit on a page reaches
// every one of them by following after=<last_id> while has_more is true:
// each exactly once, newest first, and never another user's or another
// client's order of the same OpenID. A user may create 20 orders a day; with
// 100 at most on a page and no cursor, the older ones (those a refund may
// concern) were out of the bot's reach.
func TestUserOrdersPages(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			st := testdrivers.Open(t, driver, nil)
			base := time.Now().Add(-7 * 24 * time.Hour).Truncate(time.Second)
			want := seedOrders(t, st, "shop-bot", "o-walker", "PGW", 150, base)
			// Interleaved in time: the same OpenID at another client, and
			// another user at the same client.
			seedOrders(t, st, "other-bot", "o-walker", "PGX", 30, base)
			seedOrders(t, st, "shop-bot", "o-neighbour", "PGN", 30, base)
			srv := userAPIServer(t, st)

			for _, limit := range []int{7, 50, 100} {
				t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
					var got []string
					seen := map[string]bool{}
					after := ""
					for page := 0; ; page++ {
						if page > len(want) {
							t.Fatalf("still paging after %d pages; has_more never became false", page)
						}
						q := url.Values{"limit": {fmt.Sprint(limit)}}
						if after != "" {
							q.Set("after", after)
						}
						status, list := listOrders(t, srv, testClientKey, "o-walker", q.Encode())
						if status != http.StatusOK || list.Get("object").Str != "list" {
							t.Fatalf("page %d (after=%q): %d %s", page, after, status, list.Raw)
						}
						data := list.Get("data").Array()
						more := list.Get("has_more")
						if more.Type != gjson.True && more.Type != gjson.False {
							t.Fatalf("page %d: no has_more boolean in %.300s", page, list.Raw)
						}
						if len(data) == 0 || len(data) > limit {
							t.Fatalf("page %d: %d orders; want 1 to %d", page, len(data), limit)
						}
						for _, o := range data {
							no := o.Get("order_no").Str
							if seen[no] {
								t.Fatalf("page %d: %s listed twice", page, no)
							}
							seen[no] = true
							got = append(got, no)
						}
						first, last := data[0].Get("order_no").Str, data[len(data)-1].Get("order_no").Str
						if list.Get("first_id").Str != first || list.Get("last_id").Str != last {
							t.Errorf("page %d: first_id %s, last_id %s; want %s, %s", page, list.Get("first_id").Raw, list.Get("last_id").Raw, first, last)
						}
						if !more.Bool() {
							break
						}
						if len(data) != limit {
							t.Errorf("page %d: has_more with a page of %d, not full (%d)", page, len(data), limit)
						}
						after = list.Get("last_id").Str
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("walked %d orders:\n%v\nwant the user's %d, newest first:\n%v", len(got), got, len(want), want)
					}
				})
			}
		})
	}
}

// TestUserOrdersCursorIsTheUsers: after= must name one of the user's own
// orders at this client. Another user's order number, or the same OpenID's
// at another client, is refused exactly as an unknown number is (400, param
// "after"): the answer neither lists their orders nor tells whether the
// number exists. Any other paging parameter than after, or an ascending
// order, is refused rather than ignored: ignoring it served the first page
// again, forever, to a bot that paged that way.
func TestUserOrdersCursorIsTheUsers(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			st := testdrivers.Open(t, driver, nil)
			base := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
			mine := seedOrders(t, st, "shop-bot", "o-me", "PGM", 5, base)
			theirs := seedOrders(t, st, "shop-bot", "o-them", "PGT", 5, base.Add(time.Hour))
			elsewhere := seedOrders(t, st, "other-bot", "o-me", "PGE", 5, base.Add(time.Hour))
			srv := userAPIServer(t, st)

			if status, list := listOrders(t, srv, testClientKey, "o-me", "after="+mine[1]); status != http.StatusOK ||
				fmt.Sprint(list.Get("data.#.order_no").Value()) != fmt.Sprint(mine[2:]) || list.Get("has_more").Bool() {
				t.Errorf("after my own order %s: %d %s; want %v and no more", mine[1], status, list.Raw, mine[2:])
			}

			_, unknown := listOrders(t, srv, testClientKey, "o-me", "after=PG0000nosuchorder")
			for _, tc := range []struct{ name, after string }{
				{"another user's order", theirs[0]},
				{"another user's oldest order", theirs[len(theirs)-1]},
				{"my OpenID's order at another client", elsewhere[0]},
				{"unknown", "PG0000nosuchorder"},
				{"empty after the name", "%20"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					status, e := listOrders(t, srv, testClientKey, "o-me", "after="+tc.after)
					if status != http.StatusBadRequest || e.Get("error.param").Str != "after" ||
						e.Get("error.type").Str != "invalid_request_error" || e.Get("error.message").Str == "" {
						t.Fatalf("after=%s: %d %s; want a 400 OpenAI error with param after", tc.after, status, e.Raw)
					}
					if e.Get("data").Exists() || e.Get("error.message").Str != unknown.Get("error.message").Str || e.Get("error.code").Raw != unknown.Get("error.code").Raw {
						t.Errorf("after=%s: %s; want the answer to an unknown number, %s", tc.after, e.Raw, unknown.Raw)
					}
				})
			}
			// The owner pages by the same number as ever.
			if status, list := listOrders(t, srv, otherClientKey, "o-me", "after="+elsewhere[0]); status != http.StatusOK || list.Get("data.#").Int() != 4 {
				t.Errorf("other-bot's own cursor: %d %s; want its 4 older orders", status, list.Raw)
			}

			for _, tc := range []struct{ query, param string }{
				{"before=" + mine[3], "before"},
				{"starting_after=" + mine[1], "starting_after"},
				{"ending_before=" + mine[3], "ending_before"},
				{"order=asc", "order"},
				{"order=sideways", "order"},
				{"limit=0", "limit"},
				{"limit=101", "limit"},
			} {
				status, e := listOrders(t, srv, testClientKey, "o-me", tc.query)
				if status != http.StatusBadRequest || e.Get("error.param").Str != tc.param || e.Get("error.message").Str == "" {
					t.Errorf("%s: %d %s; want a 400 OpenAI error with param %s", tc.query, status, e.Raw, tc.param)
				}
			}
			if status, list := listOrders(t, srv, testClientKey, "o-me", "order=desc&limit=2"); status != http.StatusOK ||
				fmt.Sprint(list.Get("data.#.order_no").Value()) != fmt.Sprint(mine[:2]) || !list.Get("has_more").Bool() {
				t.Errorf("order=desc (the order it lists in): %d %s; want %v and more", status, list.Raw, mine[:2])
			}
			// A user without orders: an empty page, nothing more, no ids.
			if status, list := listOrders(t, srv, testClientKey, "o-nobody", ""); status != http.StatusOK || list.Get("data.#").Int() != 0 ||
				list.Get("has_more").Type != gjson.False || list.Get("first_id").Type != gjson.Null || list.Get("last_id").Type != gjson.Null {
				t.Errorf("no orders: %d %s; want an empty list, has_more false, first_id and last_id null", status, list.Raw)
			}
		})
	}
}

// seedPaidOrder stores order no of shop-bot's user, paid an hour ago, as
// change leaves it.
func seedPaidOrder(t *testing.T, st store.Store, no, user string, change func(*store.Order)) {
	t.Helper()
	now := time.Now().Add(-time.Hour).Truncate(time.Second)
	o := storetest.NewOrder(no, "shop-bot", user, now)
	o.Status, o.PaidAt = store.StatusPaid, now
	change(o)
	if err := st.CreateOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

// seedProposal stores refund proposal id of fen of order no for shop-bot's
// user, open for an hour.
func seedProposal(t *testing.T, st store.Store, id, no, user string, fen int64) {
	t.Helper()
	p := &store.RefundProposal{RefundID: id, OrderNo: no, Client: "shop-bot", User: user, AmountFen: fen, OutRefundNo: payments.OutRefundNo(id)}
	if err := st.PutRefundProposal(context.Background(), p, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// TestRefundConfirmConflictsAreNotRetried: a confirmation answered 409
// (another refund of the order in flight, or none possible) says
// x-should-retry: false. The OpenAI SDKs retry a 409 on their own (the
// Node SDK's shouldRetry), so the confirmation ran again seconds later,
// after the bot had told the user to try again, behind the user's back.
// So does a cancel of a proposal already confirmed (409
// refund_already_confirmed): every retry is told the same.
func TestRefundConfirmConflictsAreNotRetried(t *testing.T) {
	ctx := context.Background()
	st := testdrivers.Open(t, "embedded", nil)
	order := func(no string, change func(*store.Order)) { seedPaidOrder(t, st, no, "o-conflict", change) }
	propose := func(id, no string, fen int64) { seedProposal(t, st, id, no, "o-conflict", fen) }
	order("PGC-busy", func(o *store.Order) { o.Status, o.RefundReservedBy = store.StatusRefunding, "rf_other" })
	order("PGC-closed", func(o *store.Order) { o.Status, o.PaidAt = store.StatusClosed, time.Time{} })
	order("PGC-part", func(o *store.Order) { o.Status, o.RefundedFen = store.StatusPartiallyRefunded, 4000 })
	propose("rf_busy", "PGC-busy", 4999)
	propose("rf_closed", "PGC-closed", 4999)
	propose("rf_toomuch", "PGC-part", 4999)
	// Confirmed: the order refunding for it, the proposal used.
	order("PGC-taken", func(o *store.Order) { o.Status, o.RefundReservedBy = store.StatusRefunding, "rf_taken" })
	propose("rf_taken", "PGC-taken", 4999)
	if _, err := st.ConsumeRefundProposal(ctx, "rf_taken", "o-conflict"); err != nil {
		t.Fatal(err)
	}
	srv := userAPIServer(t, st)
	// status: the refund's, which a cancel of a confirmed one names as the
	// confirm's answer does (its refund object), for a bot to branch on.
	for _, tc := range []struct{ id, verb, code, status string }{
		{"rf_busy", "confirm", "refund_in_progress", ""},
		{"rf_closed", "confirm", "refund_not_possible", ""},
		{"rf_toomuch", "confirm", "refund_not_possible", ""},
		{"rf_taken", "cancel", "refund_already_confirmed", "pending"},
	} {
		t.Run(tc.code+" "+tc.id, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv+"/v1/paygate/refunds/"+tc.id+"/"+tc.verb, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set(headerOpenID, "o-conflict")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusConflict || gjson.Get(body, "error.code").Str != tc.code {
				t.Fatalf("%s: %d %s; want 409 %s", tc.verb, resp.StatusCode, body, tc.code)
			}
			if got := resp.Header.Get("X-Should-Retry"); got != "false" {
				t.Errorf("%s: x-should-retry %q; want false: an SDK's retry would %s again, behind the user's back or for the same answer", tc.verb, got, tc.verb)
			}
			if r := gjson.Get(body, "error.refund"); r.Exists() != (tc.status != "") || r.Get("status").Str != tc.status || (r.Exists() && r.Get("refund_id").Str != tc.id) {
				t.Errorf("%s: error.refund %s; want the refund object, status %q (none when empty)", tc.verb, r.Raw, tc.status)
			}
		})
	}
}

// TestUserAPIBodyTooLarge: a user-API POST that names its user in the body
// but sends more than the endpoint reads (maxUserBody) is told so, 413. It
// was told 400 user_required, "name the end user with the header", of a
// body that did name one.
func TestUserAPIBodyTooLarge(t *testing.T) {
	srv := userAPIServer(t, testdrivers.Open(t, "embedded", nil))
	body := `{"user":"o-big","note":"` + strings.Repeat("x", maxUserBody) + `"}`
	req, err := http.NewRequest(http.MethodPost, srv+"/v1/paygate/refunds/rf_any/confirm", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || gjson.Get(got, "error.code").Str == "user_required" {
		t.Errorf("confirm with a %d-byte body: %d %s; want 413 saying the body is too large", len(body), resp.StatusCode, got)
	}
}

// TestUserRequiredSaysWhereTheUserGoes: a user API call that names no user
// is told where to name one, as the endpoint reads it: a POST (a refund's
// confirm or cancel) from the X-WeChat-OpenID header or a JSON body
// {"user": …}, a GET from the header alone, and a POST whose header was sent
// empty that the header decides: its body is not read. The POSTs were told
// of the header alone, and a bot without it looked for no other way. A GET
// whose header was sent empty is told of the header alone too: told a
// body's "user" is not read while the header is sent, a bot dropped the
// header for a body no GET reads.
func TestUserRequiredSaysWhereTheUserGoes(t *testing.T) {
	srv := userAPIServer(t, testdrivers.Open(t, "embedded", nil))
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		want, not                []string
	}{
		{"confirm without a user", http.MethodPost, "/v1/paygate/refunds/rf_any/confirm", "", nil,
			[]string{headerOpenID, `{"user": …}`}, nil},
		{"cancel with an empty body user", http.MethodPost, "/v1/paygate/refunds/rf_any/cancel", `{"user":""}`, nil,
			[]string{headerOpenID, `{"user": …}`}, nil},
		{"cancel with the header sent empty", http.MethodPost, "/v1/paygate/refunds/rf_any/cancel", `{"user":"o-body"}`,
			map[string]string{headerOpenID: ""}, []string{headerOpenID, "empty", "not read"}, nil},
		{"orders without a user", http.MethodGet, "/v1/paygate/orders", "", nil,
			[]string{headerOpenID}, []string{`"user"`}},
		{"orders with the header sent empty", http.MethodGet, "/v1/paygate/orders", "", map[string]string{headerOpenID: ""},
			[]string{headerOpenID, "empty"}, []string{`"user"`, "body"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			for k, v := range tc.hdr {
				req.Header[k] = []string{v}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp.Body)
			resp.Body.Close()
			msg := gjson.Get(body, "error.message").Str
			if resp.StatusCode != http.StatusBadRequest || gjson.Get(body, "error.code").Str != "user_required" {
				t.Fatalf("%d %s; want 400 user_required", resp.StatusCode, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(msg, n) {
					t.Errorf("message %q says %q, which this endpoint does not read", msg, n)
				}
			}
		})
	}
}

// TestRefundCancelGoneIsWordedForACancel: a cancel of a proposal that ended
// without a refund (expired, or confirmed and its refund refused or undone)
// is a 410 that says nothing is refunded under it, not the confirm's "ask
// again in the chat", which told a user who had said no to ask for the
// refund they had just declined. A confirm of it keeps its own words.
func TestRefundCancelGoneIsWordedForACancel(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	seedPaidOrder(t, st, "PGG-undone", "o-gone", func(*store.Order) {})
	seedProposal(t, st, "rf_undone", "PGG-undone", "o-gone", 4999)
	// Taken, and its refund undone: the order is paid, reserved for nothing.
	if _, err := st.ConsumeRefundProposal(context.Background(), "rf_undone", "o-gone"); err != nil {
		t.Fatal(err)
	}
	srv := userAPIServer(t, st)
	answer := func(verb string) string {
		resp := send(t, http.MethodPost, srv, "/v1/paygate/refunds/rf_undone/"+verb, "", map[string]string{headerOpenID: "o-gone"})
		body := readAll(t, resp.Body)
		if resp.StatusCode != http.StatusGone || gjson.Get(body, "error.code").Str != "refund_gone" {
			t.Fatalf("%s: %d %s; want 410 refund_gone", verb, resp.StatusCode, body)
		}
		return gjson.Get(body, "error.message").Str
	}
	if msg := answer("cancel"); strings.Contains(msg, "ask again") || !strings.Contains(msg, "nothing") {
		t.Errorf("cancel: %q; want it to say nothing is refunded, not to ask again", msg)
	}
	if msg := answer("confirm"); !strings.Contains(msg, "ask again in the chat") {
		t.Errorf("confirm: %q; want the confirm's own words", msg)
	}
}
