package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// Secrets a merchant may put in its webhook URL: an endpoint that
// authenticates paygate by a token in the query string (serverless
// functions, webhook gateways), or by user info.
const (
	urlToken    = "merchant-token-8c7b6a5d"
	urlPassword = "merchant-pw-1f2e3d4c"
)

// TestFailedDeliveryKeepsURLSecretsOut: net/http's error for a failed POST
// (a *url.Error) quotes the whole URL. The relay logs that error, keeps it
// in the outbox (last_error) and serves it, with the URL, at
// GET /admin/api/webhooks, so a token in the URL would reach all three.
// The error keeps the operation and its cause only, and the admin API's
// url shows the URL with query values and password masked, keys kept.
func TestFailedDeliveryKeepsURLSecretsOut(t *testing.T) {
	tests := []struct {
		name    string
		addr    func(t *testing.T) string // host:port of the endpoint
		timeout time.Duration
		wantErr string // in every last_error
	}{
		{"connection refused", func(t *testing.T) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln.Close() // nothing listens: every POST fails to connect
			return ln.Addr().String()
		}, 0, "post: dial tcp "},
		{"no answer in time", func(t *testing.T) string {
			stop := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stop }))
			t.Cleanup(func() { close(stop); srv.Close() })
			return srv.Listener.Addr().String()
		}, 100 * time.Millisecond, "post: context deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			raw := "http://merchant:" + urlPassword + "@" + addr + "/paygate-hook?token=" + urlToken + "&v=2"
			clk := newClock()
			st := testdrivers.Open(t, "embedded", nil)
			ob := orders{t, st}
			ob.move(ob.create("PURLSECRET1", store.StatusAwaitingPayment), store.StatusPaid, "notification")
			logs := &logtest.Buffer{}
			var mu sync.Mutex
			var results []string
			r := newRelay(t, st, raw, clk.Now, func(o *webhook.Options) {
				shortWindow(o)
				o.Timeout = tc.timeout
				o.Logger = logging.New(logs, slog.LevelDebug, []string{testSecret})
				o.Observe = func(res webhook.Result) {
					mu.Lock()
					defer mu.Unlock()
					if res.Err != nil {
						results = append(results, res.Err.Error())
					}
				}
			})
			drain(t, r) // one failure: the event is a head with its last error
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/api/webhooks", nil))
			retrying := rec.Body.String()
			runFor(t, r, clk, 10*time.Second) // given up: a dead letter
			v := getAdminView(t, r)
			if len(v.DeadLetters) != 1 {
				t.Fatalf("dead letters %+v; want the given-up event", v.DeadLetters)
			}
			s, err := r.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			stats, _ := json.Marshal(s)
			mu.Lock()
			observed := strings.Join(results, "\n")
			mu.Unlock()

			for what, text := range map[string]string{
				"the log": logs.String(), "GET /admin/api/webhooks while retrying": retrying,
				"GET /admin/api/webhooks once given up": string(stats), "Observe's errors": observed,
			} {
				for _, secret := range []string{urlToken, urlPassword} {
					if strings.Contains(text, secret) {
						t.Errorf("%s holds the URL's secret %q:\n%s", what, secret, text)
					}
				}
			}
			var head struct {
				URL   string `json:"url"`
				Heads []webhook.Head
			}
			if err := json.Unmarshal([]byte(retrying), &head); err != nil || len(head.Heads) != 1 {
				t.Fatalf("GET /admin/api/webhooks while retrying: %s (%v)", retrying, err)
			}
			for _, got := range []string{head.Heads[0].LastError, v.DeadLetters[0].LastError} {
				if !strings.HasPrefix(got, tc.wantErr) {
					t.Errorf("last_error %q; want it to start with %q", got, tc.wantErr)
				}
			}
			if want := "http://merchant:xxxxx@" + addr + "/paygate-hook?token=xxxxx&v=xxxxx"; head.URL != want || s.URL != want {
				t.Errorf("url %q and %q; want %q", head.URL, s.URL, want)
			}
		})
	}
}

// TestStatsRedactURLInOlderErrors: an event whose last_error was recorded
// before errors left the URL out still quotes it whole; the admin API shows
// that URL redacted.
func TestStatsRedactURLInOlderErrors(t *testing.T) {
	raw := "http://127.0.0.1:1/paygate-hook?token=" + urlToken
	clk := newClock()
	st := testdrivers.Open(t, "embedded", nil)
	ob := orders{t, st}
	ob.move(ob.create("PURLSECRET2", store.StatusAwaitingPayment), store.StatusPaid, "notification")
	r := newRelay(t, st, raw, clk.Now, nil)
	drain(t, r)
	h, ok := head(t, st, webhook.QueuePrefix+"PURLSECRET2")
	if !ok {
		t.Fatal("no queued event")
	}
	old := `post: Post "` + raw + `": dial tcp 127.0.0.1:1: connect: connection refused`
	if err := st.RetryEvent(context.Background(), h.Key, h.ID, clk.Now().Add(time.Hour), h.Attempts, old); err != nil {
		t.Fatal(err)
	}
	s, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Heads) != 1 {
		t.Fatalf("heads %+v", s.Heads)
	}
	want := `post: Post "http://127.0.0.1:1/paygate-hook?token=xxxxx": dial tcp 127.0.0.1:1: connect: connection refused`
	if got := s.Heads[0].LastError; got != want {
		t.Errorf("last_error %q; want %q", got, want)
	}
}

// TestRedactURL: what of the webhook URL logs, errors and the admin API
// show. Query values are masked, as a merchant's token is often one, with
// their keys kept, so an operator still sees which parameter the endpoint
// reads; a password is masked, and a user name that is the whole
// credential (no password) too.
func TestRedactURL(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"plain", "https://m.example/hook", "https://m.example/hook"},
		{"query values", "https://m.example/hook?token=" + urlToken + "&v=2", "https://m.example/hook?token=xxxxx&v=xxxxx"},
		{"empty value and bare part", "https://m.example/hook?k=&" + urlToken + "&a=b%20c", "https://m.example/hook?k=&xxxxx&a=xxxxx"},
		{"password", "https://merchant:" + urlPassword + "@m.example/hook", "https://merchant:xxxxx@m.example/hook"},
		{"user name alone", "https://" + urlToken + "@m.example/hook", "https://xxxxx@m.example/hook"},
		{"user name with an empty password", "https://" + urlToken + ":@m.example/hook", "https://xxxxx@m.example/hook"},
		{"fragment", "https://m.example/hook#" + urlToken, "https://m.example/hook#xxxxx"},
		{"unparsable", "http://m.example/%zz?token=" + urlToken, "(unparsable URL)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := webhook.RedactURL(tc.raw); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

// TestNewRefusesURLWithoutPrintingItsSecrets: New's error for a URL it
// cannot use (cmd/ prints it at start) names the URL redacted.
func TestNewRefusesURLWithoutPrintingItsSecrets(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	_, err := webhook.New(webhook.Options{Store: st, URL: "ftp://m.example/hook?token=" + urlToken, Secret: testSecret})
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), urlToken) || !strings.Contains(err.Error(), "token=xxxxx") {
		t.Errorf("got %v; want the URL redacted", err)
	}
}

// TestMerchantEchoOfURLTokenMasked: a merchant endpoint that refuses a
// delivery and quotes the request URL in its answer (a framework's debug
// 404, a gateway's "no route for …") echoes the URL's token. The answer
// kept as the error (logged, last_error, GET /admin/api/webhooks) is
// masked before it is cut to its 256 bytes: neither the token nor the
// first bytes of one straddling the cut appear anywhere. The log is
// serve's, whose redactor knows the token (cfg.Secrets()): it cannot mask
// a token already cut.
func TestMerchantEchoOfURLTokenMasked(t *testing.T) {
	const prefix = "GET /paygate-hook?token="
	tests := []struct {
		name string
		page func(r *http.Request) string
	}{
		{"whole within the answer", func(r *http.Request) string { return "Page not found: " + r.URL.RequestURI() }},
		{"straddling the cut", func(*http.Request) string {
			// The token's first 12 bytes end the first 256.
			return strings.Repeat("p", 256-len(prefix)-12) + prefix + urlToken + " not found"
		}},
		{"the password, from the user info", func(r *http.Request) string {
			user, pw, _ := r.BasicAuth()
			return "no such login " + user + ":" + pw + " for " + r.URL.RequestURI()
		}},
		{"the user info, as the Authorization header sent it", func(r *http.Request) string {
			return "refused Authorization: " + r.Header.Get("Authorization") + " for " + r.URL.RequestURI()
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(tc.page(r)))
			}))
			t.Cleanup(srv.Close)
			st := testdrivers.Open(t, "embedded", nil)
			ob := orders{t, st}
			ob.move(ob.create("PURLECHO"+string(rune('1'+i)), store.StatusAwaitingPayment), store.StatusPaid, "notification")
			logs := &logtest.Buffer{}
			raw := strings.Replace(srv.URL, "//", "//merchant:"+urlPassword+"@", 1) + "/paygate-hook?token=" + urlToken
			r := newRelay(t, st, raw, newClock().Now, func(o *webhook.Options) {
				o.Logger = logging.New(logs, slog.LevelDebug, []string{testSecret, urlToken, urlPassword})
			})
			drain(t, r)
			part := urlToken[:12]
			basic := base64.StdEncoding.EncodeToString([]byte("merchant:" + urlPassword))
			for _, secret := range []string{part, urlPassword[:12], basic[:16]} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("the log holds a URL's secret (its first bytes %q):\n%s", secret, logs.String())
				}
			}
			v := getAdminView(t, r)
			if len(v.Heads) != 1 {
				t.Fatalf("heads %+v; want the failed event", v.Heads)
			}
			got := v.Heads[0].LastError
			if strings.Contains(got, part) || strings.Contains(got, urlPassword[:12]) || strings.Contains(got, basic[:16]) {
				t.Errorf("GET /admin/api/webhooks last_error holds the URL's token: %q", got)
			}
			if !strings.HasPrefix(got, "status 404: ") || !strings.Contains(got, "token="+logging.Mask) {
				t.Errorf("last_error %q; want the merchant's answer, the token masked", got)
			}
			if len(got) > len("status 404: ")+256 {
				t.Errorf("last_error is %d bytes; want the answer cut to 256", len(got))
			}
		})
	}
}

// TestMerchantEchoRepeatedPastTheRead: the relay reads more of a refusing
// answer than it keeps, masks it and then cuts it; an answer that echoes a
// long URL secret many times shrinks so much under the mask that the part
// of one split by the end of the read would come within the kept bytes.
// The read is cut before that secret, so none of it is kept.
func TestMerchantEchoRepeatedPastTheRead(t *testing.T) {
	sig := "sigv-" + strings.Repeat("0123456789", 6) // 65 bytes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(strings.Repeat(r.URL.Query().Get("sig"), 40)))
	}))
	t.Cleanup(srv.Close)
	st := testdrivers.Open(t, "embedded", nil)
	ob := orders{t, st}
	ob.move(ob.create("PURLECHO9", store.StatusAwaitingPayment), store.StatusPaid, "notification")
	r := newRelay(t, st, srv.URL+"/paygate-hook?sig="+sig, newClock().Now, nil)
	drain(t, r)
	v := getAdminView(t, r)
	if len(v.Heads) != 1 {
		t.Fatalf("heads %+v; want the failed event", v.Heads)
	}
	got := v.Heads[0].LastError
	if strings.Contains(got, sig[:4]) || !strings.HasPrefix(got, "status 403: "+logging.Mask) {
		t.Errorf("last_error %q; want the answer's echoes masked, none in part", got)
	}
}
