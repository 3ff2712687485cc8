package failover

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/config"
)

// tlsProvider is an https provider speaking h2 and HTTP/1.1, as real ones
// do, that counts the requests it gets; its certificate is httptest's,
// which no system trusts.
func tlsProvider(t *testing.T, asked *atomic.Int32) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from tls"},"finish_reason":"stop"}]}`))
	}))
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// TestHTTPSProviderBehindHTTPBaseURL: a provider's base_url says http://
// where the provider serves https on that port. Go's TLS server (and so
// every Go provider, Caddy) answers the plain request with a 400 "Client
// sent an HTTP request to an HTTPS server.", nginx (and the load
// balancers built on it) with a 400 page "The plain HTTP request was sent
// to HTTPS port". Taken for the bot's bad request, it ended the round with
// the next target unasked and handed the bot a 400 invalid_request_error
// about a scheme it never chose. It is the provider's base_url: the next
// target answers, the provider cools down as misconfigured, and with no
// target left the bot's 502 says to check the base_url.
func TestHTTPSProviderBehindHTTPBaseURL(t *testing.T) {
	var asked atomic.Int32
	up := tlsProvider(t, &asked)
	goTLS := func(c *config.Config) {
		c.Providers[0].BaseURL = "http://" + strings.TrimPrefix(up.URL, "https://") + "/v1"
	}
	nginxPage := always(statusFn(400, "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n"+
		"<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
		"Content-Type: text/html"))
	for name, set := range map[string]struct {
		scripts map[string]func(*fconn, int)
		mutate  func(*config.Config)
	}{
		"go":    {nil, goTLS},
		"nginx": {map[string]func(*fconn, int){"a": nginxPage}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, set.scripts, []string{"a", "b"}, set.mutate)
			got := e.open(t.Context(), false)
			if got.provider != "b" {
				t.Fatalf("a is https behind an http:// base_url: round ended with %v; want b's answer", got.openErr)
			}
			if st := statusOf(e.r, "a"); st.CoolingCause != CauseMisconfigured {
				t.Errorf("a cooling cause %q; want %q", st.CoolingCause, CauseMisconfigured)
			}

			only := newEnv(t, set.scripts, []string{"a"}, set.mutate)
			got = only.open(t.Context(), false)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("only target: %v; want an *UpstreamError", got.openErr)
			}
			want := "provider a answered that it serves https on that port (HTTP 400): check its base_url (https://, not http://)"
			if ue.Status != 502 || ue.Code != CauseMisconfigured || !strings.Contains(ue.Message, want) {
				t.Errorf("only target: %d %s %q; want 502 %s saying %q", ue.Status, ue.Code, ue.Message, CauseMisconfigured, want)
			}
		})
	}
	if asked.Load() != 0 {
		t.Errorf("the https provider answered %d requests over plain http", asked.Load())
	}
}

// TestTLSFailureNamedForBot: a provider whose TLS fails (a certificate
// no root paygate trusts signed; a plain http server behind an https://
// base_url) is retried once and the next target answers, as SPEC 5 has
// it for a TLS error. With no target left, the bot's 502 said only
// "no provider answered: a: upstream_connect_error x2", the same as for a
// refused port: what to fix (the certificate, SSL_CERT_FILE, the
// base_url's scheme) was in the log alone. It now names the cause.
func TestTLSFailureNamedForBot(t *testing.T) {
	var asked atomic.Int32
	up := tlsProvider(t, &asked)
	// A plain server answers a ClientHello with a 400, as Go's and
	// nginx's do.
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	for name, c := range map[string]struct{ url, want string }{
		"unknown CA": {up.URL + "/v1", "provider a's TLS certificate was not accepted: x509: certificate signed by unknown authority"},
		"plain http": {"https://" + strings.TrimPrefix(plain.URL, "http://"),
			"provider a did not answer in TLS at its https:// base_url: check its base_url (http or https)"},
	} {
		t.Run(name, func(t *testing.T) {
			set := func(cfg *config.Config) { cfg.Providers[0].BaseURL = c.url }
			e := newEnv(t, nil, []string{"a", "b"}, set)
			if got := e.open(t.Context(), false); got.provider != "b" {
				t.Fatalf("a's TLS failed: round ended with %v; want b's answer", got.openErr)
			}
			only := newEnv(t, nil, []string{"a"}, set)
			got := only.open(t.Context(), false)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("only target: %v; want an *UpstreamError", got.openErr)
			}
			if ue.Status != 502 || ue.Code != CauseConnect || !strings.Contains(ue.Message, c.want) {
				t.Errorf("only target: %d %s %q; want 502 %s saying %q", ue.Status, ue.Code, ue.Message, CauseConnect, c.want)
			}
		})
	}
	if asked.Load() != 0 {
		t.Errorf("the untrusted provider got %d requests", asked.Load())
	}
}

// TestPlainToTLSWordsQuotedAreTheBots: a provider's 400 that quotes the
// bot's own words back (OpenAI's "Invalid value: '…'" names the value it
// refused) is the bot's bad request, even when the words are those of a
// TLS port's page to plain HTTP. Taken for that page, one bot's request
// marked every target of its model misconfigured (cooled down for every
// bot, 5 min by default) and got a 502 instead of its 400.
func TestPlainToTLSWordsQuotedAreTheBots(t *testing.T) {
	for name, words := range map[string]string{
		"go":    "Client sent an HTTP request to an HTTPS server.",
		"nginx": "<title>400 The plain HTTP request was sent to HTTPS port</title>",
	} {
		t.Run(name, func(t *testing.T) {
			quoted := errBody("invalid_request_error", "invalid_value", "Invalid value: '"+words+"'. Supported values are: 'auto', 'none'.")
			for _, stream := range []bool{false, true} {
				e := newEnv(t, map[string]func(*fconn, int){"a": always(statusFn(400, quoted))}, []string{"a", "b"}, nil)
				got := e.open(t.Context(), stream)
				var ue *UpstreamError
				if !errors.As(got.openErr, &ue) || ue.Status != http.StatusBadRequest {
					t.Errorf("stream %v: a quoting the bot: served by %q (err %v); want the provider's 400", stream, got.provider, got.openErr)
				}
				if n := len(e.fakes["b"].hits()); n != 0 {
					t.Errorf("stream %v: a quoting the bot: b was asked %d times; want 0", stream, n)
				}
				if st := statusOf(e.r, "a"); st.CoolingCause != "" {
					t.Errorf("stream %v: a quoting the bot: a cooling down for %q; want none", stream, st.CoolingCause)
				}
			}
		})
	}
}
