package main

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
)

// TestHandlerPanicLoggedAsError: a handler that panics is a bug, and the
// request it served got no answer; the server's line about it is at ERROR,
// as the sweeps' panics are, its first line the message and its stack an
// attribute. Logged through the server's error log at WARN, beside a
// client's broken handshake, an operator who pages on errors never saw it.
// The server's other lines (what a client did) stay at WARN.
func TestHandlerPanicLoggedAsError(t *testing.T) {
	for _, name := range []string{"main", "notify"} {
		t.Run(name, func(t *testing.T) {
			logs := &logtest.Buffer{}
			srv := newHTTPServer(name, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				panic("handler bug")
			}), serverErrorLog(logging.New(logs, slog.LevelDebug, nil)))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			resp, err := http.Get("http://" + ln.Addr().String() + "/v1/models")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("answered %d; want the connection closed without an answer", resp.StatusCode)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &rec); err != nil {
				t.Fatalf("one JSON line expected: %v: %s", err, logs.String())
			}
			msg, _ := rec["msg"].(string)
			if rec["level"] != "ERROR" || !strings.Contains(msg, "panic serving") || !strings.Contains(msg, "handler bug") || strings.Contains(msg, "\n") {
				t.Errorf("the panic's line is not an ERROR with a one-line message: %s", logs.String())
			}
			if st, _ := rec["stack"].(string); !strings.Contains(st, "goroutine") {
				t.Errorf("the panic's stack is not in its stack attribute: %s", logs.String())
			}
		})
	}
}
