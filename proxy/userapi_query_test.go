package proxy

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestUserOrdersQueryThatDoesNotParseIsRefused: a list query that does not
// parse (a bad % escape, a ";" separator) is a 400 OpenAI error, as every
// admin route's is (AdminQuery). URL.Query drops the pair it cannot read,
// so ?after=<a mangled cursor> served the first page again with has_more
// true, for ever, to a bot that paged on, and ?limit=5;x a page of 20.
func TestUserOrdersQueryThatDoesNotParseIsRefused(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			st := testdrivers.Open(t, driver, nil)
			mine := seedOrders(t, st, "shop-bot", "o-q", "PGQ", 3, time.Now().Add(-time.Hour).Truncate(time.Second))
			srv := userAPIServer(t, st)
			for _, q := range []string{"after=%zz", "after=" + mine[0] + "%", "limit=%zz", "limit=1;x=1", "limit=1&after=" + mine[0] + ";"} {
				status, e := listOrders(t, srv, testClientKey, "o-q", q)
				if status != http.StatusBadRequest || e.Get("error.type").Str != "invalid_request_error" || e.Get("error.message").Str == "" || e.Get("data").Exists() {
					t.Errorf("?%s: %d %.300s; want a 400 OpenAI error and no orders", q, status, e.Raw)
				}
			}
			// A query that parses is read as before.
			if status, list := listOrders(t, srv, testClientKey, "o-q", "limit=1&after="+mine[0]); status != http.StatusOK ||
				fmt.Sprint(list.Get("data.#.order_no").Value()) != fmt.Sprint(mine[1:2]) {
				t.Errorf("limit=1&after=%s: %d %.300s; want [%s]", mine[0], status, list.Raw, mine[1])
			}
		})
	}
}

// TestUserOrdersParameterGivenTwiceIsRefused: limit, after or order given
// twice is a 400 naming it, as an admin list's is. The first was read and
// the second ignored: a bot that appended &after=<last_id> to the URL it
// fetched last got the second page again, with has_more true, for ever.
func TestUserOrdersParameterGivenTwiceIsRefused(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			st := testdrivers.Open(t, driver, nil)
			mine := seedOrders(t, st, "shop-bot", "o-q", "PGQ", 6, time.Now().Add(-time.Hour).Truncate(time.Second))
			srv := userAPIServer(t, st)
			for _, tc := range []struct{ query, param string }{
				{"limit=2&after=" + mine[1] + "&after=" + mine[3], "after"},
				{"limit=2&limit=5", "limit"},
				{"order=desc&order=desc", "order"},
			} {
				status, e := listOrders(t, srv, testClientKey, "o-q", tc.query)
				if status != http.StatusBadRequest || e.Get("error.param").Str != tc.param || e.Get("error.type").Str != "invalid_request_error" ||
					e.Get("error.message").Str == "" || e.Get("data").Exists() {
					t.Errorf("?%s: %d %.300s; want a 400 OpenAI error with param %s", tc.query, status, e.Raw, tc.param)
				}
			}
		})
	}
}
