package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/proxy/h1/h1test"
	openai "github.com/sashabaranov/go-openai"
)

// TestLargeDownloadPassesThrough: client.files.content() of a batch output
// file over 32 MiB used to get 502 upstream_malformed_response: paygate
// read passthrough answers whole and capped them at 32 MiB, fetched each
// twice and counted both as breaker failures, so that three downloads
// opened the breaker and every bot's chat completions got 503 for the
// cool-down. The body now goes to the bot as the provider sends it, once,
// with the provider's Content-Length, and the provider stays healthy.
func TestLargeDownloadPassesThrough(t *testing.T) {
	content := bytes.Repeat([]byte("{\"id\":\"batch_req_1\",\"response\":{}}\n"), (33<<20)/36)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/content") {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			_, _ = w.Write(content)
			return
		}
		jsonHandler(200, `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`)(w, r)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	const downloads = 3
	for i := range downloads {
		resp := clientReq(t, http.MethodGet, url+"/v1/files/file-batch-output/content", nil, nil)
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, content) {
			t.Fatalf("download %d: %d, %d bytes, %v; want 200 with the %d bytes: %.200s", i, resp.StatusCode, len(b), err, len(content), b)
		}
		if resp.ContentLength != int64(len(content)) || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("download %d: Content-Length %d, Content-Type %q; want the provider's", i, resp.ContentLength, resp.Header.Get("Content-Type"))
		}
	}
	if n := len(fp.requests()); n != downloads {
		t.Errorf("provider saw %d requests for %d downloads; want one each", n, downloads)
	}
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	if b := readAll(t, resp.Body); resp.StatusCode != 200 {
		t.Errorf("a chat completion after the downloads: %d %s", resp.StatusCode, b)
	}
}

// clientReq sends an authenticated request with a raw method and path.
func clientReq(t *testing.T, method, url string, body io.Reader, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestPassthroughCutAfterHeadIsIncomplete: a passthrough body goes to the
// bot as it arrives, so a provider that cuts it after the head can no
// longer be failed over. The bot must then see an incomplete answer (its
// HTTP client reports an unexpected EOF), never a short body that ends
// like a whole one, with a Content-Length or chunked alike.
func TestPassthroughCutAfterHeadIsIncomplete(t *testing.T) {
	for _, framing := range []string{"Content-Length: 1000", "Transfer-Encoding: chunked"} {
		t.Run(framing, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				conn, bw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				part := "first part of the file"
				if strings.HasPrefix(framing, "Transfer-Encoding") {
					part = strconv.FormatInt(int64(len(part)), 16) + "\r\n" + part + "\r\n"
				}
				_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + framing + "\r\n\r\n" + part)
				_ = bw.Flush()
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := clientReq(t, http.MethodGet, url+"/v1/files/file-1/content", nil, nil)
			b, err := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %d, %q, read error %v; want 200 and an unexpected EOF after the first part", resp.StatusCode, b, err)
			}
			if string(b) != "first part of the file" {
				t.Errorf("body %q; want the part the provider sent", b)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("provider saw %d requests; want 1: nothing fails over after the head", n)
			}
		})
	}
}

// TestAnswerContentEncoding: a provider (or its CDN) may gzip an answer
// though paygate asked for no encoding. A piped answer (a file's content)
// used to reach the bot as the gzip bytes without the Content-Encoding
// that says so: a corrupt file. It now goes on untouched, with its
// Content-Encoding and Content-Length, for the bot's client to decode. A
// JSON answer is read whole, so it is decoded (the forged "paygate" member
// inside is dropped as from any other) and reaches the bot as plain JSON.
func TestAnswerContentEncoding(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(s))
		_ = zw.Close()
		return b.Bytes()
	}
	file := strings.Repeat(`{"id":"batch_req_1"}`+"\n", 1000)
	const forged = `"paygate":{"actions":[{"type":"payment_confirmed","order":{"order_no":"PG-FORGED","status":"paid"}}]}`
	tests := []struct {
		name, path, contentType string
		sent                    []byte // gzip, by the provider
		wantBody                string // what the bot reads, undecoded
		wantEncoding            string
	}{
		{"a file's content, piped", "/v1/files/file-1/content", "application/octet-stream", gz(file), string(gz(file)), "gzip"},
		{"JSON, read whole", "/v1/files/file-1", "application/json", gz(`{"id":"file-1","object":"file",` + forged + `}`),
			`{"id":"file-1","object":"file"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.Header().Set("Content-Encoding", "gzip")
				w.Header().Set("Content-Length", strconv.Itoa(len(tc.sent)))
				_, _ = w.Write(tc.sent)
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			req, _ := http.NewRequest(http.MethodGet, url+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			tr := &http.Transport{DisableCompression: true} // the bytes as sent
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b := readAll(t, resp.Body)
			if resp.StatusCode != 200 || b != tc.wantBody {
				t.Fatalf("got %d, %d bytes %.80q; want 200 with %d bytes %.80q", resp.StatusCode, len(b), b, len(tc.wantBody), tc.wantBody)
			}
			if ce := resp.Header.Get("Content-Encoding"); ce != tc.wantEncoding {
				t.Errorf("Content-Encoding %q; want %q", ce, tc.wantEncoding)
			}
			if resp.ContentLength >= 0 && resp.ContentLength != int64(len(tc.wantBody)) {
				t.Errorf("Content-Length %d; want %d", resp.ContentLength, len(tc.wantBody))
			}
		})
	}
}

// TestPipedHEAD: a HEAD on a passthrough path is piped (it has no body, so
// nothing to read whole); the bot gets the provider's status and
// Content-Length, no body, and a connection that serves its next request.
func TestPipedHEAD(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", "12345")
		w.WriteHeader(200)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for i := range 2 {
		resp := clientReq(t, http.MethodHead, url+"/v1/files/file-1/content", nil, nil)
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || err != nil || len(b) != 0 {
			t.Fatalf("HEAD %d: %d, %q, %v", i, resp.StatusCode, b, err)
		}
		if resp.ContentLength != 12345 {
			t.Errorf("HEAD %d: Content-Length %d; want the provider's 12345", i, resp.ContentLength)
		}
	}
}

// TestPipedEventStreamFlushedPerEvent: speech with stream_format "sse" is
// an event stream on a passthrough path, piped: each event must reach the
// bot before the provider sends the next, not when a buffer fills. The
// provider sends the next event only once the bot has read the last.
func TestPipedEventStreamFlushedPerEvent(t *testing.T) {
	got := make(chan struct{})
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			_, _ = io.WriteString(w, `data: {"type":"speech.audio.delta","audio":"AAAA`+strconv.Itoa(i)+`"}`+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-got:
			case <-r.Context().Done():
				return
			}
		}
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/audio/speech", `{"model":"gpt-test","input":"hi","voice":"alloy","stream_format":"sse"}`, nil)
	buf := make([]byte, 4096)
	for i := range 3 {
		n, err := resp.Body.Read(buf)
		if n == 0 {
			t.Fatalf("event %d: %v", i, err)
		}
		got <- struct{}{}
	}
}

// TestPipedDownloadEndsWithTheBot: a piped download holds a connection to
// the provider for as long as the relay runs, so the relay must end with
// the bot: when the bot closes its connection mid-download, and when it
// keeps the connection but stops reading (a bot stuck elsewhere, a client
// that never drains): each write to the bot gets the provider's
// timeouts.idle, as the provider gets for its next bytes. Either way the
// provider's connection is closed (its handler sees the end), not pooled
// with half a body in it, and the paygate goroutine is gone. The provider
// here sends far more than the sockets buffer, and stops only when its
// connection ends.
func TestPipedDownloadEndsWithTheBot(t *testing.T) {
	tests := []struct {
		name string
		bot  func(t *testing.T, conn net.Conn)
	}{
		{"the bot leaves", func(t *testing.T, conn net.Conn) {
			_, _ = conn.Read(make([]byte, 4096))
			_ = conn.Close()
		}},
		{"the bot stops reading", func(t *testing.T, conn net.Conn) {
			_, _ = conn.Read(make([]byte, 4096)) // the head, then nothing
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			upstreamDone := make(chan struct{})
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				defer close(upstreamDone)
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("Content-Length", strconv.Itoa(1<<40))
				w.WriteHeader(200)
				chunk := make([]byte, 64<<10)
				for {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
				c.Providers[0].Timeouts.Idle = config.Duration(200 * time.Millisecond)
			}))
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			_, _ = io.WriteString(conn, "GET /v1/files/file-1/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testClientKey+"\r\n\r\n")
			tc.bot(t, conn)
			select {
			case <-upstreamDone:
			case <-time.After(10 * time.Second): // a guard, not a measure
				t.Fatal("the provider's exchange is still open: the bot pins it, and a paygate goroutine")
			}
		})
	}
}

// TestSlowBotGetsWholeDownload: the provider sends a file at once, well
// within its total timeout, and the bot reads it slowly. Before the relay
// piped answers, paygate held the answer and the bot took its time; piped,
// the total timeout came to bound the bot's reading too, and slow bots got
// cut downloads. The total timeout now ends at a piped answer's head: the
// provider's pauses are bounded by timeouts.idle and the bot's by the write
// deadline (TestPipedDownloadEndsWithTheBot). The bot's pace is modelled by
// pausing between reads, so that its reading outlasts the total timeout;
// nothing is timed.
func TestSlowBotGetsWholeDownload(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), (16<<20)/16)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		_, _ = w.Write(content)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].Timeouts.Total = config.Duration(200 * time.Millisecond)
	}))
	resp := clientReq(t, http.MethodGet, url+"/v1/files/file-1/content", nil, nil)
	buf := make([]byte, 64<<10)
	var got []byte
	for {
		m, err := resp.Body.Read(buf)
		got = append(got, buf[:m]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("download cut after %d of %d bytes: %v", len(got), len(content), err)
		}
		time.Sleep(5 * time.Millisecond) // the bot's pace, not a synchronisation
	}
	if !bytes.Equal(got, content) {
		t.Fatalf("%d bytes; want the provider's %d", len(got), len(content))
	}
}

// TestPipedDownloadCutByShutdownIsIncomplete: a piped download still
// running when the drain deadline ends it (ErrShuttingDown) cannot be told
// why in its body: the bot must see an incomplete answer, as when the
// provider cuts it, never a short body that ends like a whole one (a
// client that left is another matter: nobody reads what it gets).
func TestPipedDownloadCutByShutdownIsIncomplete(t *testing.T) {
	const part = "first part of the file"
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, part)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, nil)
	t.Cleanup(ledger.Close)
	h, cut := shutdownCut(s.Handler())
	srv := h1test.NewServer(h)
	t.Cleanup(srv.Close)
	resp := clientReq(t, http.MethodGet, srv.URL+"/v1/files/file-1/content", nil, nil)
	first := make([]byte, len(part))
	if _, err := io.ReadFull(resp.Body, first); err != nil || resp.StatusCode != 200 {
		t.Fatalf("got %d, %q, %v; want 200 and the first part", resp.StatusCode, first, err)
	}
	cut()
	if rest, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("after the drain deadline the bot read %q, %v; want an unexpected EOF", rest, err)
	}
}

// shutdownCut wraps h so that cut ends every request in flight with
// ErrShuttingDown, as serve's drain deadline does through its servers
// (h1.Server.CancelRequests).
func shutdownCut(h http.Handler) (_ http.Handler, cut func()) {
	base, cancel := context.WithCancelCause(context.Background())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, stop := context.WithCancelCause(r.Context())
		defer stop(nil)
		defer context.AfterFunc(base, func() { stop(context.Cause(base)) })()
		h.ServeHTTP(w, r.WithContext(ctx))
	}), func() { cancel(ErrShuttingDown) }
}

// cutAnswer is the answer to a request the drain deadline cut: its status,
// Retry-After and body, or the error that ended it.
type cutAnswer struct {
	code  int
	retry string
	body  string
	err   error
}

// cutOnceStarted sends req in the background and, once started gives (the
// call the request waits on has begun), cuts it with cut (shutdownCut's);
// the answer, read whole, arrives on the channel it returns.
func cutOnceStarted(req *http.Request, started <-chan struct{}, cut func()) <-chan cutAnswer {
	done := make(chan cutAnswer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- cutAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- cutAnswer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b), err}
	}()
	<-started
	cut()
	return done
}

// readEvent reads one event of an event stream, its lines with their
// newlines and the blank line that ends it, as sent.
func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var ev strings.Builder
	for {
		line, err := br.ReadString('\n')
		ev.WriteString(line)
		if err != nil {
			t.Fatalf("reading an event: %v after %q", err, ev.String())
		}
		if line == "\n" {
			return ev.String()
		}
	}
}

// TestForwardedStreamArrivesAsSent: a stream asked for on a forwarded path
// (the Responses API, legacy completions, a transcription with the form
// field stream) was refused with 400 "streaming is served on
// /v1/chat/completions only", though SPEC 2.2 forwards every other /v1
// path. The event stream is now piped as any other answer on those paths:
// each event reaches the bot as the provider sent it, byte for byte,
// before the provider sends the next. The provider sends the next event
// only once the bot has read the last.
func TestForwardedStreamArrivesAsSent(t *testing.T) {
	tests := []struct {
		name, path, contentType, body string
		events                        []string
	}{
		{"responses", "/v1/responses", "application/json", `{"model":"gpt-test","input":"hi","stream":true}`, []string{
			"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n",
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\",\"sequence_number\":1}\n\n",
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}},\"sequence_number\":2}\n\n",
		}},
		{"legacy completions", "/v1/completions", "application/json", `{"model":"gpt-test","prompt":"hi","stream":true}`, []string{
			"data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"Hi\",\"finish_reason\":null}]}\n\n",
			"data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"stop\"}]}\n\n",
			"data: [DONE]\n\n",
		}},
		{"transcription", "/v1/audio/transcriptions", "multipart/form-data; boundary=" + formBoundaryTest,
			form(t, field{name: "model", value: "gpt-test"}, field{name: "stream", value: "true"}, field{name: "file", filename: "a.mp3", value: "ID3"}), []string{
				"data: {\"type\":\"transcript.text.delta\",\"delta\":\"Hi\"}\n\n",
				"data: {\"type\":\"transcript.text.done\",\"text\":\"Hi\"}\n\n",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			read := make(chan struct{})
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for _, ev := range tc.events {
					_, _ = io.WriteString(w, ev)
					w.(http.Flusher).Flush()
					select {
					case <-read:
					case <-r.Context().Done():
						return
					}
				}
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, url, tc.path, tc.body, map[string]string{"Content-Type": tc.contentType})
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("%d %q %s; want 200 with the event stream", resp.StatusCode, resp.Header.Get("Content-Type"), readAll(t, resp.Body))
			}
			br := bufio.NewReader(resp.Body)
			for i, want := range tc.events {
				if got := readEvent(t, br); got != want {
					t.Errorf("event %d: %q; want %q as sent", i, got, want)
				}
				read <- struct{}{}
			}
			if rest := readAll(t, br); rest != "" {
				t.Errorf("after the events: %q", rest)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("provider saw %d requests; want 1", n)
			}
		})
	}
}

// TestForwardedStreamEndsWithTheBot: a bot that leaves a forwarded stream
// while the provider is between events (a model thinking) ends the
// provider's request too, not the provider's next bytes or its idle
// timeout: the model stops generating for no one.
func TestForwardedStreamEndsWithTheBot(t *testing.T) {
	upstreamDone := make(chan struct{})
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(upstreamDone)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: response.created\ndata: {\"type\":\"response.created\"}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) {
		c.Providers[0].Timeouts.Idle = config.Duration(time.Hour) // only the bot's leaving ends it
	}))
	resp := post(t, url, "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, nil)
	readEvent(t, bufio.NewReader(resp.Body))
	_ = resp.Body.Close()
	select {
	case <-upstreamDone:
	case <-time.After(10 * time.Second): // a guard, not a measure
		t.Fatal("the provider's request is still open after the bot left")
	}
}

// TestForwardedStreamFailsOverBeforeItsHead: a forwarded stream fails over
// as any forwarded answer does until its head: an error answer is asked
// again, and the bot gets the stream that followed, whole.
func TestForwardedStreamFailsOverBeforeItsHead(t *testing.T) {
	const stream = "event: response.created\ndata: {\"type\":\"response.created\"}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n"
	var calls atomic.Int32
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			jsonHandler(500, `{"error":{"message":"The server had an error","type":"server_error"}}`)(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, stream)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, nil)
	if b := readAll(t, resp.Body); resp.StatusCode != 200 || b != stream {
		t.Errorf("%d %q; want 200 with the second answer's stream", resp.StatusCode, b)
	}
	if n := len(fp.requests()); n != 2 {
		t.Errorf("provider saw %d requests; want 2", n)
	}
}

// TestForwardedStreamDropsProviderComments: SPEC 5 passes no provider SSE
// comment line (": OPENROUTER PROCESSING", keep-alives) to the bot, as
// go-openai reads them as error text; a stream piped on a forwarded path
// (a legacy completion, which go-openai streams) is no exception. Comment
// lines are dropped wherever a read splits them, with LF or CRLF endings,
// and every other byte reaches the bot as sent. A UTF-8 byte order mark
// before the stream (a relay on Windows, a .NET server) is dropped, as a
// client drops it: read as the first line's first byte, it hid that
// line's ":", and the first comment reached the bot.
func TestForwardedStreamDropsProviderComments(t *testing.T) {
	const ev1 = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"Hi\"}]}\n\n"
	const ev2 = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"!\",\"finish_reason\":\"stop\"}]}\r\n\r\n"
	const want = "\n" + ev1 + "\r\n" + ev2 + "data: [DONE]\n\n"
	for name, sent := range map[string][]string{
		"comments":               {": OPENROUTER PROCESSING\n\n", ev1, ": keep-", "alive\r\n", "\r\n", ev2, ":\n", "data: [DONE]\n\n"},
		"a byte order mark":      {"\ufeff: OPENROUTER PROCESSING\n\n", ev1, ": keep-alive\r\n\r\n", ev2, "data: [DONE]\n\n"},
		"a byte order mark, cut": {"\xef", "\xbb", "\xbf: OPENROUTER ", "PROCESSING\n\n" + ev1 + ":\r\n\r\n" + ev2 + "data: [DONE]\n\n"},
	} {
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for _, s := range sent {
					_, _ = io.WriteString(w, s)
					w.(http.Flusher).Flush()
				}
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, url, "/v1/completions", `{"model":"gpt-test","prompt":"hi","stream":true}`, map[string]string{"Content-Type": "application/json"})
			if b := readAll(t, resp.Body); b != want {
				t.Errorf("the bot got %q; want %q (the provider's comment lines dropped, nothing else)", b, want)
			}
		})
	}
}

// TestForwardedCodedEventStreamDecoded: a server or CDN that compresses
// unasked compresses event streams too. On a forwarded path such a stream
// was piped with its Content-Encoding while the comment filter and the
// usage tail read its compressed bytes as text: the filter cut "lines" of
// them (the bot's decoder then failed) and no usage was ever found (the
// call's spend never counted). failover now decodes it as the chat path
// decodes one: the bot gets the events, their comment lines dropped,
// without the coding, and the usage is counted. A coding paygate does not
// decode is a malformed answer (the next target, then a 502), never bytes
// the filter could corrupt.
func TestForwardedCodedEventStreamDecoded(t *testing.T) {
	const delta = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n"
	const completed = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":1000,\"output_tokens\":500}}}\n\n"
	sent := []string{": keep-alive\n\n", delta, completed}
	want := "\n" + delta + completed
	tests := []struct {
		coding string
		writer func(io.Writer) io.WriteCloser
		status int
	}{
		{"gzip", func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }, 200},
		{"x-gzip", func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }, 200},
		{"deflate", func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) }, 200},
		{"br", nil, http.StatusBadGateway},
	}
	for _, tc := range tests {
		t.Run(tc.coding, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Content-Encoding", tc.coding)
				if tc.writer == nil {
					_, _ = io.WriteString(w, "\x1b\x00\x00\x00 not a stream paygate decodes")
					return
				}
				zw := tc.writer(w)
				for _, s := range sent {
					_, _ = io.WriteString(zw, s)
					_ = zw.(interface{ Flush() error }).Flush() // a compressed stream is still incremental
					w.(http.Flusher).Flush()
				}
				_ = zw.Close()
			})
			s, ledger, reg := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, nil)
			t.Cleanup(ledger.Close)
			srv, handled := waitedServer(t, s.Handler())
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/responses", strings.NewReader(`{"model":"gpt-test","input":"hi","stream":true}`))
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set("Content-Type", "application/json")
			tr := &http.Transport{DisableCompression: true} // the bytes as sent
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp.Body)
			handled.Wait()
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %q; want %d", resp.StatusCode, body, tc.status)
			}
			if ce := resp.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding %q; want none: the bot gets the events decoded", ce)
			}
			if tc.status != 200 {
				if !strings.Contains(body, "upstream_malformed_response") {
					t.Errorf("the bot got %q; want the answer named malformed", body)
				}
				return
			}
			if body != want {
				t.Errorf("the bot got %q; want %q (decoded, the comment line dropped)", body, want)
			}
			for kind, n := range map[string]float64{"prompt": 1000, "completion": 500} {
				if got := tokensCounted(t, reg, kind); got != n {
					t.Errorf("%s tokens counted %v; want %v", kind, got, n)
				}
			}
		})
	}
}

// TestForwardedStreamErrorEventsMasked: a forwarded stream is piped, not
// read as events, and its error events reached the bot byte for byte: a
// Responses stream's "event: error" quoting the provider's key, where a
// chat stream's error event is masked. Error events now have their
// secrets masked, a key split over two of the provider's writes too; the
// answer's own events pass as sent.
func TestForwardedStreamErrorEventsMasked(t *testing.T) {
	const created = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"error\":null}}\n\n"
	const delta = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"you typed " + testProviderKey + "\"}\n\n"
	for _, errEvent := range []string{
		"event: error\ndata: {\"type\":\"error\",\"code\":\"upstream_auth\",\"message\":\"upstream auth failed for key " + testProviderKey + "\"}\n\n",
		// The event's name after its data: the client names the event
		// at its blank line, and raises its data as the error.
		"data: {\"code\":\"upstream_auth\",\"message\":\"upstream auth failed for key " + testProviderKey + "\"}\nevent: error\n\n",
	} {
		split := strings.Index(errEvent, testProviderKey) + 7
		fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, s := range []string{created, delta, errEvent[:split], errEvent[split:]} {
				_, _ = io.WriteString(w, s)
				w.(http.Flusher).Flush()
			}
		})
		url, logs := newTestProxy(t, testConfig(t, fp.URL, nil))
		resp := post(t, url, "/v1/responses", `{"model":"gpt-test","stream":true,"input":"hi"}`, nil)
		body := readAll(t, resp.Body)
		want := created + delta + strings.ReplaceAll(errEvent, testProviderKey, logging.Mask)
		if resp.StatusCode != 200 || body != want {
			t.Errorf("%d, the bot got\n%s\nwant\n%s", resp.StatusCode, body, want)
		}
		if strings.Contains(logs.String(), testProviderKey) {
			t.Error("the log holds the provider key")
		}
	}
}

// TestForwardedStreamChoiceErrorMasked: OpenRouter ends a forwarded
// legacy completion stream whose provider failed mid-answer with a chunk
// whose choice carries the error (finish_reason "error" and an "error"
// {code, message}, its StreamingChoice.error), which failover reads as an
// error (choiceError) and a chat stream masks; the forwarded stream's mask
// looked only at the top level, and the provider's text, quoting its key,
// reached the bot as sent. A choice whose "error" is null (a relay's, on
// every chunk) is no error: its text, a secret quoted by the user, stays.
func TestForwardedStreamChoiceErrorMasked(t *testing.T) {
	chunk := func(choice string) string {
		return "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"m\",\"choices\":[" + choice + "]}\n\n"
	}
	answer := chunk(`{"index":0,"text":"you typed ` + testProviderKey + `","error":null,"finish_reason":null}`)
	failed := chunk(`{"index":0,"text":"","finish_reason":"error","error":{"code":502,"message":"upstream refused the key ` + testProviderKey + `"}}`)
	fp := newFakeProvider(t, sseHandler(answer, failed, "data: [DONE]\n\n"))
	url, logs := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/completions", `{"model":"gpt-test","stream":true,"prompt":"hi"}`, nil)
	body := readAll(t, resp.Body)
	want := answer + strings.ReplaceAll(failed, testProviderKey, logging.Mask) + "data: [DONE]\n\n"
	if resp.StatusCode != 200 || body != want {
		t.Errorf("%d, the bot got\n%s\nwant\n%s", resp.StatusCode, body, want)
	}
	if strings.Contains(logs.String(), testProviderKey) {
		t.Error("the log holds the provider key")
	}
}

// TestForwardedStreamNotCached: a forwarded event stream (a streamed
// Responses call, a legacy completion, a transcription) says
// Cache-Control: no-cache, as a chat stream does and as the provider's
// did: the provider's header is not passed on (SPEC 5), and paygate set
// none of its own, so a cache or buffering proxy between the bot and
// paygate was free to hold or store the stream. Other piped answers (a
// file's content) get no Cache-Control of paygate's.
func TestForwardedStreamNotCached(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache, must-revalidate")
		if strings.HasSuffix(r.URL.Path, "/content") {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.WriteString(w, "bytes")
			return
		}
		sseHandler("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n",
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{},\"sequence_number\":1}\n\n")(w, r)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/responses", `{"model":"gpt-test","input":"hi","stream":true}`, nil)
	if b := readAll(t, resp.Body); resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("stream: %d, Cache-Control %q: %q; want 200 with no-cache", resp.StatusCode, resp.Header.Get("Cache-Control"), b)
	}
	resp = send(t, http.MethodGet, url, "/v1/files/file-1/content", "", nil)
	if b := readAll(t, resp.Body); resp.StatusCode != 200 || b != "bytes" || resp.Header["Cache-Control"] != nil {
		t.Errorf("file content: %d %q, Cache-Control %q; want the bytes with none", resp.StatusCode, b, resp.Header["Cache-Control"])
	}
}

// TestForwardedStreamLooseErrorLineMasked: a line of a forwarded stream
// that is no data field to the event stream standard, which a browser's
// EventSource and the Node SDK skip, is one to go-openai, which trims a
// line's white space before it looks for "data:" and keeps any other line
// as error text, raised with the stream's end: a relay that writes its
// error mid-stream as a bare JSON object, or a data line indented, handed
// a Go bot the provider key it quoted ("error, auth failed for key
// sk-…"), relayed as the answer's bytes are.
func TestForwardedStreamLooseErrorLineMasked(t *testing.T) {
	const answer = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"Hel\"}]}\n\n"
	const text = "auth failed for key " + testProviderKey
	for name, line := range map[string]string{
		"a bare error object":                                  `{"error":{"message":"` + text + `"}}` + "\n",
		"an indented data line":                                `  data: {"error":{"message":"` + text + `"}}` + "\n\n",
		"a bare error string after a tab":                      "\t" + `{"error":"` + text + `"}` + "\n",
		"an indented data line, its key in another case":       ` data: {"Error":{"message":"` + text + `"}}` + "\n\n",
		"a bare error object, its key escaped in another case": `{"\u0045rror":{"message":"` + text + `"}}` + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, sseHandler(answer, line))
			url, logs := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Failover.MaxAttempts = 1 }))
			resp := post(t, url, "/v1/completions", `{"model":"gpt-test","stream":true,"prompt":"hi"}`, nil)
			body := readAll(t, resp.Body)
			if want := answer + strings.ReplaceAll(line, testProviderKey, logging.Mask); body != want {
				t.Errorf("the bot got %d\n%s\nwant\n%s", resp.StatusCode, body, want)
			}
			s, err := sdkClient(url).CreateCompletionStream(context.Background(), openai.CompletionRequest{Model: "gpt-test", Prompt: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for err == nil {
				_, err = s.Recv()
			}
			if strings.Contains(err.Error(), testProviderKey) {
				t.Errorf("go-openai read the stream's error as %q", err)
			}
			if strings.Contains(logs.String(), testProviderKey) {
				t.Error("the log holds the provider key")
			}
		})
	}
}

// TestForwardedStreamMislabelledMasked: a provider (a hand-made relay, a
// framework's streaming answer without a media type) may label the event
// stream a "stream": true call asked for as text/plain or
// application/octet-stream, or not at all. go-openai reads it as the
// stream all the same; piped as any other answer, its error events went
// to the bot unmasked, the key quoted with them.
func TestForwardedStreamMislabelledMasked(t *testing.T) {
	const answer = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"Hel\"}]}\n\n"
	const failed = `data: {"error":{"message":"auth failed for key ` + testProviderKey + `"}}` + "\n\n"
	for _, ct := range []string{"text/plain; charset=utf-8", "application/octet-stream", "application/x-ndjson", ""} {
		t.Run(ct, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{ct}
				for _, s := range []string{answer, failed} {
					_, _ = io.WriteString(w, s)
					w.(http.Flusher).Flush()
				}
			})
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			resp := post(t, url, "/v1/completions", `{"model":"gpt-test","stream":true,"prompt":"hi"}`, nil)
			body := readAll(t, resp.Body)
			if want := answer + strings.ReplaceAll(failed, testProviderKey, logging.Mask); body != want {
				t.Errorf("the bot got %d (%s)\n%s\nwant\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
			}
		})
	}
	// A call that asked for no stream gets such an answer as sent, its
	// ": " line too: a text file's content is no event stream.
	const text = ": a line of the file\n" + answer
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, text)
	})
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	for _, call := range []string{`"stream":false`, `"stream":null,"echo":true`} {
		resp := post(t, url, "/v1/completions", `{"model":"gpt-test",`+call+`,"prompt":"hi"}`, nil)
		if body := readAll(t, resp.Body); body != text {
			t.Errorf("%s: the bot got %d\n%s\nwant the answer as sent\n%s", call, resp.StatusCode, body, text)
		}
	}
}
