package webhook_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestRedirectNamedNotFollowed: a merchant endpoint that redirects (http to
// https, a framework adding a trailing slash, a moved route) gets no
// delivery through the redirect: the target, another host here, never sees
// the signed body. The failure the merchant's developer reads (last_error,
// GET /admin/api/webhooks) says it was a redirect, that paygate does not
// follow one, and where it pointed, so that webhooks.url can be set to it;
// with the target's query values masked, as a token may sit there. A bare
// "status 308:" (a redirect's body is often empty) said none of that.
// A 307 or 308 answered after the endpoint held the POST past a second
// says the same: the client asks the POST's body again for the redirect
// it does not follow, which is no replay of a POST hung up on.
func TestRedirectNamedNotFollowed(t *testing.T) {
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhereHits.Add(1) }))
	defer elsewhere.Close()
	const token = "redirect-token-5e4d3c2b1a"
	for _, tc := range []struct {
		name, location, want string
		code                 int
		held                 time.Duration // before the answer, on the relay's clock
	}{
		{"308 to another host", elsewhere.URL + "/hook?code=" + token, elsewhere.URL + "/hook?code=xxxxx", http.StatusPermanentRedirect, 0},
		{"301 adding a slash", "/paygate/events/", "/paygate/events/", http.StatusMovedPermanently, 0},
		{"308 to an escaped slash", "/paygate/a%2Fb", "/paygate/a%2Fb", http.StatusPermanentRedirect, 0},
		{"307 without Location", "", "no Location", http.StatusTemporaryRedirect, 0},
		{"308 after the POST was held", "/paygate/events/", "/paygate/events/", http.StatusPermanentRedirect, 6 * time.Second},
		{"307 after the POST was held", elsewhere.URL + "/hook", elsewhere.URL + "/hook", http.StatusTemporaryRedirect, 6 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				clk.Advance(tc.held)
				if tc.location != "" {
					w.Header().Set("Location", tc.location)
				}
				w.WriteHeader(tc.code) // no body, as many servers send
			}))
			defer srv.Close()
			h := redirectedHead(t, srv.URL+"/paygate/events", clk.Now)
			want := tc.want
			if strings.HasPrefix(want, "/") {
				want = srv.URL + want
			}
			for _, part := range []string{"status " + strconv.Itoa(tc.code), "redirect", "not followed", want} {
				if !strings.Contains(h.LastError, part) {
					t.Errorf("last_error %q does not name %q", h.LastError, part)
				}
			}
			if strings.Contains(h.LastError, token) {
				t.Errorf("last_error %q shows the redirect's token", h.LastError)
			}
			if n := elsewhereHits.Load(); n != 0 {
				t.Errorf("the redirect's target got %d POSTs; want none", n)
			}
		})
	}
}

// TestRedirectToURLTokenMasked: a redirect whose target carries the
// webhook URL's token where redactURL keeps text (its path: a gateway
// moving ?token=T to /hooks/T) shows it masked in last_error, as the
// merchant's answer is (TestMerchantEchoOfURLTokenMasked): last_error is
// served by GET /admin/api/webhooks and outlives any log redaction. So
// does a path that percent-encodes the token's every byte (url.URL keeps
// such a path as written), and a Location net/http cannot parse, whose
// error quotes it whole.
func TestRedirectToURLTokenMasked(t *testing.T) {
	var every strings.Builder
	for _, c := range []byte(urlToken) {
		fmt.Fprintf(&every, "%%%02x", c)
	}
	for _, tc := range []struct{ name, loc, want string }{
		{"path", "/hooks/" + urlToken, "redirect to %s/hooks/"},
		{"path percent-encoded", "/hooks/" + every.String(), "redirect to %s/hooks/"},
		{"unparsable", "/hooks/" + urlToken + "/%zz", `failed to parse Location header "/hooks/`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Location", tc.loc)
				w.WriteHeader(http.StatusPermanentRedirect)
			}))
			defer srv.Close()
			h := redirectedHead(t, srv.URL+"/hook?token="+urlToken, time.Now)
			if want := strings.ReplaceAll(tc.want, "%s", srv.URL); !strings.Contains(h.LastError, want) {
				t.Fatalf("last_error %q; want it to name the redirect (%q)", h.LastError, want)
			}
			if dec, _ := url.PathUnescape(h.LastError); strings.Contains(h.LastError, urlToken) || strings.Contains(dec, urlToken) {
				t.Errorf("last_error %q shows the URL's token", h.LastError)
			}
		})
	}
}

// redirectedHead is the order.paid of a paid order after one attempt to
// deliver it to url, which redirects: still queued, one failed attempt.
func redirectedHead(t *testing.T, url string, now func() time.Time) store.Event {
	t.Helper()
	st := testdrivers.Open(t, "embedded", nil)
	ob := orders{t, st}
	o := ob.create("PREDIRECT", store.StatusAwaitingPayment)
	ob.move(o, store.StatusPaid, "notification")
	drain(t, newRelay(t, st, url, now, nil))
	h, pending := head(t, st, webhook.QueuePrefix+o.OrderNo)
	if !pending || h.Attempts != 1 {
		t.Fatalf("head %+v (pending %v); want one failed attempt", h, pending)
	}
	return h
}
