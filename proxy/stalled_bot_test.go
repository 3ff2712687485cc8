package proxy

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/proxy/h1"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// stallServer serves h on proxy/h1's server, as paygate serves the bots'
// listener, with a write stall bound of stall; it returns the URL and a
// channel that receives once per request when its handler has returned.
func stallServer(t *testing.T, h http.Handler, stall time.Duration) (string, <-chan string) {
	t.Helper()
	if !h1.Supported() {
		t.Skip("proxy/h1 does not run here")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 16)
	srv := &h1.Server{WriteStallTimeout: stall, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- r.URL.Path }()
		h.ServeHTTP(w, r)
	})}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })
	return "http://" + ln.Addr().String(), done
}

// guard waits for c, failing the test when nothing comes: a guard against
// a hang, not a measure.
func guard[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: nothing after 30 s", what)
	}
	var zero T
	return zero
}

// TestStalledBotInPayingTurn: a bot that stops reading its answer (its
// connection kept open) while the turn's continuation round comes after
// a create_order paygate ran (streamed, or a large non-stream answer): the order is made once (recorded, prepaid at
// WeChat Pay), the continuation round is cut when the server gives up on
// the bot (the provider's exchange closed, the handler returned), and the
// bot's SDK, retrying the request, gets the same order back, not a second
// one; its retry's round tells the model of the order.
func TestStalledBotInPayingTurn(t *testing.T) {
	for _, stream := range []bool{true, false} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) { stalledBotInPayingTurn(t, stream) })
	}
}

func stalledBotInPayingTurn(t *testing.T, stream bool) {
	keys, err := simKeys()
	if err != nil {
		t.Fatal(err)
	}
	st := testdrivers.Open(t, "embedded", nil)
	sim, svc := newSimPayments(t, st, simPayments{Sim: wxsim.Options{Keys: keys}, AttemptTimeout: 5 * time.Second,
		Catalog: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium tier, 1 month", Price: "49.99", MaxQuantity: 12}}})
	const call = `[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`
	bigEnded := make(chan struct{}, 1)
	big := bigStreamRound(strings.Repeat("x", 8000), 512)
	if !stream {
		// 8 MB in one JSON answer: more than the sockets between hold.
		big = textRound(false, strings.Repeat("x", 8<<20))
	}
	fp := newFakeProvider(t, roundByRound(
		callsRound(stream, call),
		func(w http.ResponseWriter, r *http.Request) { big(w, r); bigEnded <- struct{}{} },
		callsRound(stream, call),
		textRound(stream, "Your order is ready to pay."),
	))
	cfg := testConfig(t, fp.URL, nil)
	s := newPaygate(t, cfg, Options{Tools: simTools(svc), State: st})
	url, handled := stallServer(t, s.Handler(), 200*time.Millisecond)
	body := `{"model":"gpt-test","stream":` + strconv.FormatBool(stream) + `,"messages":[{"role":"user","content":"buy premium"}]}`

	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	_, _ = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testClientKey+
		"\r\nX-WeChat-OpenID: o-user-1\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	_, _ = conn.Read(make([]byte, 1024)) // the head, then nothing: the bot stalls, its connection open
	guard(t, handled, "the stalled bot's turn never ended")
	guard(t, bigEnded, "the continuation round's exchange is still open")

	orders, err := st.ListOrders(context.Background(), store.OrderFilter{Client: "shop-bot", User: "o-user-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 1 || orders[0].Status != store.StatusAwaitingPayment {
		t.Fatalf("orders %+v; want one awaiting payment", orders)
	}
	if n := sim.OrderCount(); n != 1 {
		t.Fatalf("WeChat Pay holds %d orders; want 1", n)
	}
	if got := testutil.ToFloat64(s.metrics.toolCalls.WithLabelValues("create_order", "executed")); got != 1 {
		t.Errorf("create_order executed %v times; want 1", got)
	}

	// The SDK retries the request on a new connection and reads it.
	resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
	answer := readAll(t, resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(answer, "ready to pay") || stream && !strings.HasSuffix(answer, "data: [DONE]\n\n") {
		t.Fatalf("retry: %d %.500s", resp.StatusCode, answer)
	}
	if n := sim.OrderCount(); n != 1 {
		t.Errorf("after the retry WeChat Pay holds %d orders; want the one (the same purchase)", n)
	}
	if !strings.Contains(answer, orders[0].OrderNo) {
		t.Errorf("the retry's answer does not name order %s: %.800s", orders[0].OrderNo, answer)
	}
	reqs := fp.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d upstream requests; want 4 (two rounds per turn)", len(reqs))
	}
	if !strings.Contains(string(reqs[2].Body), orders[0].OrderNo) {
		t.Errorf("the retry's first round does not tell the model of order %s: %.1500s", orders[0].OrderNo, reqs[2].Body)
	}
}

// TestStalledBotIsLogged: a bot that stops reading its stream (its
// connection open) is cut by the server's write stall bound, which
// cancels the request as a bot's leaving does; nothing told the operator
// that this bot (a blocked event loop, an SDK that stopped consuming) was
// cut rather than gone. A WARN line says so, with the request's id and the
// client's name, and no secret.
func TestStalledBotIsLogged(t *testing.T) {
	ended := make(chan struct{}, 1)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		defer func() { ended <- struct{}{} }()
		w.Header().Set("Content-Type", "text/event-stream")
		ev := roundChunk + `[{"index":0,"delta":{"content":"` + strings.Repeat("x", 1000) + `"},"finish_reason":null}]}` + "\n\n"
		_, _ = io.WriteString(w, roundChunk+`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
		for {
			if _, err := io.WriteString(w, ev); err != nil {
				return
			}
		}
	})
	logs := &logtest.Buffer{}
	cfg := testConfig(t, fp.URL, nil)
	s := newPaygate(t, cfg, Options{Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets())})
	url, handled := stallServer(t, s.Handler(), 200*time.Millisecond)
	const body = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"write forever"}]}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	_, _ = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testClientKey+
		"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	head := make([]byte, 1024)
	n, _ := conn.Read(head) // the head, then nothing
	guard(t, handled, "the stalled bot's request never ended")
	guard(t, ended, "the provider's exchange is still open")
	id := ""
	if _, rest, ok := strings.Cut(string(head[:n]), "X-Request-Id: "); ok {
		id, _, _ = strings.Cut(rest, "\r\n")
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "stopped reading") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no log line says the bot stopped reading; logs:\n%.3000s", logs.String())
	}
	for _, want := range []string{`"level":"WARN"`, `"request_id":"` + id + `"`, `"client":"shop-bot"`} {
		if id == "" || !strings.Contains(line, want) {
			t.Errorf("the line %s lacks %s", line, want)
		}
	}
	if strings.Contains(logs.String(), testClientKey) || strings.Contains(logs.String(), testProviderKey) {
		t.Error("a key was logged")
	}
}

// TestSteadySlowBotIsNotCut: a bot that reads slowly but steadily (4 KiB
// at a time, pausing well within the write stall bound, through a 4 KiB
// receive window) is no stalled bot: however long the whole answer takes
// it, it gets all of it, ended by [DONE], from the one provider. The
// pauses are the bot's pace, not a synchronisation.
func TestSteadySlowBotIsNotCut(t *testing.T) {
	const stall = 300 * time.Millisecond
	piece := strings.Repeat("y", 1000)
	const n = 256 // 256 KB, some 10 s at the bot's pace: 30 times the bound
	fp := newFakeProvider(t, bigStreamRound(piece, n))
	s := newPaygate(t, testConfig(t, fp.URL, nil), Options{})
	url, _ := stallServer(t, s.Handler(), stall)
	conn := slowBotConn(t, url, `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"write a lot"}]}`, 4<<10)
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []byte
	buf := make([]byte, 4<<10)
	for {
		m, err := resp.Body.Read(buf)
		got = append(got, buf[:m]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the stream broke after %d bytes: %v", len(got), err)
		}
		time.Sleep(stall / 6) // the bot's pace
	}
	body := string(got)
	if !strings.HasSuffix(body, "data: [DONE]\n\n") || strings.Contains(body, `"error"`) {
		t.Errorf("the stream ends …%q; want [DONE] and no error", body[max(0, len(body)-200):])
	}
	if k := len(streamText(body)); k != n*len(piece) {
		t.Errorf("%d bytes of text; want %d", k, n*len(piece))
	}
	if k := len(fp.requests()); k != 1 {
		t.Errorf("%d upstream requests; want 1", k)
	}
}

// TestStalledDownloadIsNotAWriteStall: a bot that stops reading a piped
// download is cut by the relay's own write deadline (timeouts.idle), which
// the relay logs itself; it is not cut by the server's write stall bound
// (60 s here), and no line may say so: one WARN, naming the idle timeout.
func TestStalledDownloadIsNotAWriteStall(t *testing.T) {
	ended := make(chan struct{}, 1)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		defer func() { ended <- struct{}{} }()
		w.Header().Set("Content-Type", "application/octet-stream")
		piece := strings.Repeat("z", 64<<10)
		for {
			if _, err := io.WriteString(w, piece); err != nil {
				return
			}
		}
	})
	logs := &logtest.Buffer{}
	cfg := testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].Timeouts.Idle = config.Duration(300 * time.Millisecond)
	})
	s := newPaygate(t, cfg, Options{Logger: logging.New(logs, slog.LevelDebug, cfg.Secrets())})
	url, handled := stallServer(t, s.Handler(), time.Minute)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	_, _ = io.WriteString(conn, "GET /v1/files/file-1/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testClientKey+"\r\n\r\n")
	head := make([]byte, 1024)
	_, _ = conn.Read(head) // the head, then nothing
	guard(t, handled, "the stalled bot's request never ended")
	guard(t, ended, "the provider's exchange is still open")
	out := logs.String()
	if n := strings.Count(out, "the client read nothing for the idle timeout"); n != 1 {
		t.Errorf("%d lines say the bot read nothing for the idle timeout; want 1; logs:\n%.3000s", n, out)
	}
	if strings.Contains(out, "write stall bound") {
		t.Errorf("a line says the write stall bound (1 min) cut the bot, which the idle timeout (300 ms) did; logs:\n%.3000s", out)
	}
}
