package proxy

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRoutePanicNotCountedAsOK: a handler that panics before answering (a
// bug: the server closes the connection, the bot gets no answer) is
// counted as a 500 in paygate_requests_total, not as the 200 an unset
// status otherwise means: a dashboard of the 5xx rate showed nothing while
// bots got no answers. One that panics after its head keeps the status it
// sent (a passthrough answer cut with http.ErrAbortHandler: the bot got
// that head).
func TestRoutePanicNotCountedAsOK(t *testing.T) {
	s, ledger, _ := ledgerProxy(t, testConfig(t, "http://127.0.0.1:1", nil), nil, nil)
	t.Cleanup(ledger.Close)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  string
	}{
		{"before the head", func(http.ResponseWriter, *http.Request) { panic("test: a handler's bug") }, "500"},
		{"after the head", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
			panic(http.ErrAbortHandler)
		}, "200"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			route := "test" + string(rune('a'+i))
			srv := httptest.NewUnstartedServer(s.route(route, tc.handler))
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the panic's stack
			srv.Start()
			t.Cleanup(srv.Close)
			if resp, err := http.Get(srv.URL); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			for _, code := range []string{"200", "500"} {
				want := 0.0
				if code == tc.status {
					want = 1
				}
				if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues(route, code)); got != want {
					t.Errorf("paygate_requests_total{status=%q} %v; want %v", code, got, want)
				}
			}
		})
	}
}
