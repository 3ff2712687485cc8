package httpwire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// filled is a reader over msg whose buffer already holds as much of msg as
// fits, as a connection's does after a read.
func filled(msg string, size int) *bufio.Reader {
	return arrival{size: size}.filled(msg)
}

// arrival is how a message's bytes reach its reader: through a buffer of
// size bytes, each read of the connection returning at most piece of them
// (0: as many as fit), as TCP segments do.
type arrival struct{ size, piece int }

// whole is a message that arrives at once into a buffer that holds it.
var whole = arrival{size: 4096}

// reader is a new reader over msg as it arrives.
func (a arrival) reader(msg string) *bufio.Reader {
	var src io.Reader = strings.NewReader(msg)
	if a.piece > 0 {
		src = &pieces{msg, a.piece}
	}
	return bufio.NewReaderSize(src, a.size)
}

// filled is reader after its first read: what a server has once the
// connection became readable.
func (a arrival) filled(msg string) *bufio.Reader {
	br := a.reader(msg)
	br.Peek(1)
	return br
}

// pieces reads s at most n bytes at a time.
type pieces struct {
	s string
	n int
}

func (p *pieces) Read(b []byte) (int, error) {
	if len(p.s) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), p.n)], p.s)
	p.s = p.s[n:]
	return n, nil
}

// transcript reads body in pieces of varying size and records every
// result, so two bodies compare on what they return and when.
func transcript(body io.ReadCloser, closeAfter int) string {
	var b strings.Builder
	buf := make([]byte, 64)
	sizes := []int{0, 1, 7, 64, 3}
	for i := 0; i < 40; i++ {
		if i == closeAfter {
			fmt.Fprintf(&b, "close:%v;", body.Close())
		}
		n, err := body.Read(buf[:sizes[i%len(sizes)]])
		fmt.Fprintf(&b, "%q/%v;", buf[:n], err)
	}
	return b.String()
}

func rest(br *bufio.Reader) string {
	b, err := io.ReadAll(br)
	return fmt.Sprintf("%q/%v", b, err)
}

// compare reads msg with this package's reader (ours) and net/http's
// (theirs): when ours takes the head, net/http must read the same message
// field by field, the same body (read by transcript) and leave the same
// bytes for the next message; when ours declines, it must have consumed
// nothing. It reports whether ours took the head.
func compare[M any](t *testing.T, msg string, in arrival, closeAfter int,
	ours func(*bufio.Reader) (M, bool), theirs func(*bufio.Reader) (M, error),
	fields func(M) any, body func(M) io.ReadCloser) bool {
	t.Helper()
	br := in.filled(msg)
	before := br.Buffered()
	got, ok := ours(br)
	ref := in.reader(msg)
	want, werr := theirs(ref)
	if !ok {
		if br.Buffered() != before {
			t.Fatalf("declined %q but consumed %d bytes", msg, before-br.Buffered())
		}
		return false
	}
	if werr != nil {
		t.Fatalf("read %q, which net/http refuses: %v", msg, werr)
	}
	if g, w := fields(got), fields(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%q:\n got %+v\nwant %+v", msg, g, w)
	}
	if g, w := transcript(body(got), closeAfter), transcript(body(want), closeAfter); g != w {
		t.Fatalf("body of %q:\n got %s\nwant %s", msg, g, w)
	}
	// Reading the body may fill in fields (a chunked body's trailer).
	if g, w := fields(got), fields(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%q after its body:\n got %+v\nwant %+v", msg, g, w)
	}
	if g, w := rest(br), rest(ref); g != w {
		t.Fatalf("after %q: got %s, want %s", msg, g, w)
	}
	return true
}

// requestFields are what a handler sees of a request.
type requestFields struct {
	Method, Proto, Host, RequestURI string
	ProtoMajor, ProtoMinor          int
	URL                             url.URL
	Header, Trailer                 http.Header
	ContentLength                   int64
	TransferEncoding                []string
	Close                           bool
	NoBody                          bool
}

func checkRequest(t *testing.T, msg string, in arrival, closeAfter int) (plain bool) {
	t.Helper()
	return compare(t, msg, in, closeAfter,
		func(br *bufio.Reader) (*http.Request, bool) { return ReadRequest(br, 1<<20) },
		http.ReadRequest,
		func(r *http.Request) any {
			return requestFields{r.Method, r.Proto, r.Host, r.RequestURI, r.ProtoMajor, r.ProtoMinor, *r.URL,
				r.Header, r.Trailer, r.ContentLength, r.TransferEncoding, r.Close, r.Body == http.NoBody}
		},
		func(r *http.Request) io.ReadCloser { return r.Body })
}

// responseFields are what a caller of RoundTrip sees of an answer.
type responseFields struct {
	Status, Proto          string
	StatusCode             int
	ProtoMajor, ProtoMinor int
	Header, Trailer        http.Header
	ContentLength          int64
	TransferEncoding       []string
	Close, Uncompressed    bool
	Request                *http.Request
	NoBody                 bool
}

func checkResponse(t *testing.T, msg, method string, in arrival, closeAfter int) (plain bool) {
	t.Helper()
	req := &http.Request{Method: method}
	return compare(t, msg, in, closeAfter,
		func(br *bufio.Reader) (*http.Response, bool) { return ReadResponse(br, req, 1<<20) },
		func(br *bufio.Reader) (*http.Response, error) { return http.ReadResponse(br, req) },
		func(r *http.Response) any {
			return responseFields{r.Status, r.Proto, r.StatusCode, r.ProtoMajor, r.ProtoMinor, r.Header, r.Trailer,
				r.ContentLength, r.TransferEncoding, r.Close, r.Uncompressed, r.Request, r.Body == http.NoBody}
		},
		func(r *http.Response) io.ReadCloser { return r.Body })
}

// goOpenAIRequest is what go-openai sends for a chat completion.
const goOpenAIRequest = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
	"Content-Length: 25\r\nAccept: application/json; charset=utf-8\r\nAuthorization: Bearer sk-test\r\n" +
	"Content-Type: application/json; charset=utf-8\r\nAccept-Encoding: gzip\r\n\r\n" + `{"model":"m","user":"o1"}`

// nodeRequest is what the Node openai package sends (undici).
const nodeRequest = "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost:8080\r\nconnection: keep-alive\r\n" +
	"content-type: application/json\r\nuser-agent: OpenAI/JS 4.0.0\r\nx-stainless-lang: js\r\naccept: application/json\r\n" +
	"authorization: Bearer sk-test\r\naccept-language: *\r\nsec-fetch-mode: cors\r\naccept-encoding: gzip, deflate\r\n" +
	"content-length: 2\r\n\r\n{}"

// pythonRequest is what the Python openai package sends (httpx): 17 lines.
const pythonRequest = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: gzip, deflate\r\n" +
	"Connection: keep-alive\r\nAccept: application/json\r\nContent-Type: application/json\r\nUser-Agent: OpenAI/Python 1.55.0\r\n" +
	"X-Stainless-Lang: python\r\nX-Stainless-Package-Version: 1.55.0\r\nX-Stainless-OS: Linux\r\nX-Stainless-Arch: x64\r\n" +
	"X-Stainless-Runtime: CPython\r\nX-Stainless-Runtime-Version: 3.12.3\r\nAuthorization: Bearer sk-test\r\n" +
	"X-Stainless-Async: false\r\nx-stainless-retry-count: 0\r\nx-stainless-read-timeout: 600\r\nContent-Length: 25\r\n\r\n" +
	`{"model":"m","user":"o1"}`

// openAIAnswer is a non-stream answer as OpenAI's API sends one, behind
// its CDN: 25 lines, more than a message holds in its own allocation.
const openAIAnswer = "HTTP/1.1 200 OK\r\nDate: Mon, 30 Nov 2026 12:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 11\r\n" +
	"Connection: keep-alive\r\naccess-control-expose-headers: X-Request-ID\r\nopenai-organization: user-abc\r\n" +
	"openai-processing-ms: 120\r\nopenai-project: proj_abc\r\nopenai-version: 2020-10-01\r\nx-envoy-upstream-service-time: 125\r\n" +
	"x-ratelimit-limit-requests: 10000\r\nx-ratelimit-limit-tokens: 30000000\r\nx-ratelimit-remaining-requests: 9999\r\n" +
	"x-ratelimit-remaining-tokens: 29999950\r\nx-ratelimit-reset-requests: 6ms\r\nx-ratelimit-reset-tokens: 0s\r\n" +
	"x-request-id: req_abc\r\nstrict-transport-security: max-age=31536000; includeSubDomains; preload\r\ncf-cache-status: DYNAMIC\r\n" +
	"set-cookie: __cf_bm=abc; path=/; HttpOnly; Secure; SameSite=None\r\nX-Content-Type-Options: nosniff\r\n" +
	"set-cookie: _cfuvid=abc; path=/; HttpOnly; Secure; SameSite=None\r\nServer: cloudflare\r\nCF-RAY: 8e0000000000-SJC\r\n" +
	"alt-svc: h3=\":443\"; ma=86400\r\n\r\n{\"id\":\"x\"}\n"

// sseStream is a provider's streamed answer, as OpenAI sends one: each event
// a chunk, the last chunk, no trailer.
const sseStream = "HTTP/1.1 200 OK\r\nDate: Mon, 30 Nov 2026 12:00:00 GMT\r\nContent-Type: text/event-stream; charset=utf-8\r\n" +
	"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-Request-Id: abc\r\n\r\n" +
	"3e\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n\r\n" +
	"3e\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello!\"}}]}\n\n\r\n" +
	"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"

// chatAnswer is a provider's non-stream answer.
const chatAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 30 Nov 2026 12:00:00 GMT\r\n" +
	"Openai-Processing-Ms: 120\r\nX-Request-Id: abc\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\n"

// manyFields is n header lines: X-Field-1: v1 and on, or all named name
// when it is set.
func manyFields(n int, name string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if name != "" {
			fmt.Fprintf(&b, "%s: v%d\r\n", name, i)
		} else {
			fmt.Fprintf(&b, "X-Field-%d: v%d\r\n", i, i)
		}
	}
	return b.String()
}

// manyLines is a GET whose head has n header lines, its Host among them,
// the others as manyFields makes them.
func manyLines(n int, name string) string {
	return "GET / HTTP/1.1\r\nHost: x\r\n" + manyFields(n-1, name) + "\r\n"
}

func TestPlainHeadsAreRead(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		plain     bool
	}{
		{"go-openai", goOpenAIRequest, true},
		{"node openai", nodeRequest, true},
		{"python openai", pythonRequest, true},
		{"GET without body", "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"query and escapes", "GET /v1/files/a%2Fb?limit=2&x=%20 HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", true},
		// Without a Host line net/http reads it: the server tells an
		// absent Host from an empty one only from its bytes (HostLine).
		{"no headers", "GET / HTTP/1.1\r\n\r\n", false},
		{"no Host", "GET / HTTP/1.1\r\nX-Host: x\r\n\r\n", false},
		{"repeated header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n", true},
		{"connection close", "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc", true},
		{"empty value and tabs", "GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Tab:\t a b \t\r\n\r\n", true},
		{"pipelined", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"body shorter than declared", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", true},
		{"head not complete", "GET / HTTP/1.1\r\nHost: x\r\n", false},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", false},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false},
		{"two lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false},
		{"signed length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", false},
		{"two hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", false},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", false},
		{"folded line", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", false},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", false},
		{"LF inside", "GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", false},
		{"non-ASCII value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9\r\n\r\n", false},
		{"obs-text last", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x80\r\n\r\n", false},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", false},
		{"bare CR before a name", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rX-B: c\r\n\r\n", false},
		{"bare CR ends value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\r\n\r\n", false},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", false},
		{"DEL ends value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", false},
		{"repeated across others", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\nX-B: 3\r\nX-A: 4\r\nX-C: 5\r\n\r\n", true},
		// The values of the first inlineValues lines live in the
		// message's own array, the rest in one slice of their own.
		{"20 lines", manyLines(20, ""), true},
		{"21 lines", manyLines(21, ""), true},
		{"100 lines", manyLines(100, ""), true},
		{"100 lines, repeated names", manyLines(100, "X-Same"), true},
		{"repeated past 20 lines", "GET / HTTP/1.1\r\nHost: x\r\n" + manyFields(19, "") + "X-A: 1\r\nX-A: 2\r\nX-B: 3\r\nX-A: 4\r\nX-C: 5\r\n\r\n", true},
		{"21 lines, the last bad", "GET / HTTP/1.1\r\nHost: x\r\n" + manyFields(20, "") + "X-Late: a\rb\r\n\r\n", false},
		{"absolute form", "GET http://x/ HTTP/1.1\r\nHost: y\r\n\r\n", false},
		{"pragma", "GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n", false},
		{"lowercase method", "get / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"CONNECT", "CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkRequest(t, tc.msg, whole, 99); got != tc.plain {
				t.Fatalf("read plain: %v, want %v", got, tc.plain)
			}
		})
	}
}

func TestPlainResponsesAreRead(t *testing.T) {
	for _, tc := range []struct {
		name, msg, method string
		plain             bool
	}{
		{"chat answer", chatAnswer, "POST", true},
		{"OpenAI's answer", openAIAnswer, "POST", true},
		{"21 lines", "HTTP/1.1 200 OK\r\n" + manyFields(20, "") + "Content-Length: 2\r\n\r\n{}", "POST", true},
		{"100 lines, repeated names", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + manyFields(99, "Set-Cookie") + "\r\n{}", "POST", true},
		{"bare CR in value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n{}", "POST", false},
		{"error answer", "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 2\r\n\r\n{}", "POST", true},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", "GET", true},
		{"keep-alive kept", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", "GET", true},
		{"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET", true},
		{"stream", sseStream, "POST", true},
		{"stream, then the next answer", sseStream + chatAnswer, "POST", true},
		{"chunked, any case", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "GET", true},
		{"chunk extensions", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0;x\r\n\r\n", "GET", true},
		{"trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Usage: 7\r\nx-usage: 8\r\n\r\nHTTP/1.1", "GET", true},
		{"trailer cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Usage: 7\r\n", "GET", true},
		{"no end after the last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n", "GET", true},
		{"stream cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\ndata: {\"a\"", "POST", true},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "GET", true},
		{"chunk longer than said", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "GET", true},
		{"chunked, connection close", "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "POST", true},
		{"chunked and a length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "GET", false},
		{"two encodings", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET", false},
		{"two encoding fields", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", false},
		{"declared trailer", "HTTP/1.1 200 OK\r\nTrailer: X-Usage\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Usage: 7\r\n\r\n", "GET", false},
		{"chunked, no content", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", false},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nabc", "GET", false},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD", false},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "POST", false},
		{"no content", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", false},
		{"bad code", "HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\nx", "GET", false},
		{"spaces before code", "HTTP/1.1  200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkResponse(t, tc.msg, tc.method, whole, 99); got != tc.plain {
				t.Fatalf("read plain: %v, want %v", got, tc.plain)
			}
		})
	}
}

// TestBodyClose: Close reads the rest of a body unless the connection
// closes next, and reads after it fail, as net/http's body does.
func TestBodyClose(t *testing.T) {
	for _, closeAfter := range []int{0, 1, 2, 5} {
		checkRequest(t, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n0123456789abcdefghijGET / HTTP/1.1\r\n\r\n", whole, closeAfter)
		checkRequest(t, "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij", whole, closeAfter)
		checkResponse(t, chatAnswer+"HTTP/1.1 200 OK\r\n", "POST", whole, closeAfter)
		checkResponse(t, sseStream+chatAnswer, "POST", whole, closeAfter)
		// Read to its end although the connection closes next: net/http
		// reads a chunked body's trailer on Close.
		checkResponse(t, "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-A: 1\r\n\r\nrest", "GET", whole, closeAfter)
	}
}

// TestHeadBeyondBuffer: a head longer than what is buffered is net/http's.
func TestHeadBeyondBuffer(t *testing.T) {
	msg := "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("a", 100) + "\r\n\r\n"
	if checkRequest(t, msg, arrival{size: 64}, 99) {
		t.Fatal("a head longer than the buffer was read")
	}
	br := filled(msg, 4096)
	if _, ok := ReadRequest(br, 40); ok {
		t.Fatal("a head over maxHead was read")
	}
}

// fuzzArrival is the arrival a fuzzer's size and piece make: a buffer
// from 16 bytes (bufio's least) to twice whole's, and reads of any length
// (0: all at once). The product's connections hand a head over in TCP
// segments, so its head may be buffered in part (which must be declined
// with nothing consumed) and its body read across many fills.
func fuzzArrival(size, piece uint16) arrival {
	return arrival{size: 16 + int(size)%(2*whole.size), piece: int(piece) % 512}
}

// FuzzReadRequest and FuzzReadResponse compare a message read here with
// net/http's read of it (compare), whatever the pieces it arrives in.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{goOpenAIRequest, nodeRequest, "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nConnection: close, keep-alive\r\nContent-Length: 0003\r\n\r\nabcdef",
		manyLines(21, ""), manyLines(22, "X-A")} {
		f.Add(s, 3, uint16(whole.size-16), uint16(0))
		f.Add(s, 3, uint16(48), uint16(7))
	}
	f.Fuzz(func(t *testing.T, msg string, closeAfter int, size, piece uint16) {
		checkRequest(t, msg, fuzzArrival(size, piece), closeAfter%8)
	})
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{chatAnswer, sseStream, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nX-A: 1\r\n\r\n"} {
		f.Add(s, "POST", 3, uint16(whole.size-16), uint16(0))
		f.Add(s, "POST", 3, uint16(48), uint16(7))
	}
	f.Fuzz(func(t *testing.T, msg, method string, closeAfter int, size, piece uint16) {
		if method == "" || strings.ContainsAny(method, " \r\n") {
			method = "GET"
		}
		checkResponse(t, msg, method, fuzzArrival(size, piece), closeAfter%8)
	})
}

var errSink error

// TestDeclinedChunkedRequestAllocatesNothing: a chunked request (no bot's
// SDK sends one) is net/http's to read, and finding that out costs no
// allocation.
func TestDeclinedChunkedRequestAllocatesNothing(t *testing.T) {
	const msg = "POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\ndata:\r\n"
	br := filled(msg, 4096)
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := ReadRequest(br, 1<<20); ok {
			t.Fatal("a chunked request was read here")
		}
	}); n != 0 {
		t.Errorf("declining a chunked request's head: %v allocations; want 0", n)
	}
}

// TestHostLine: HostLine finds a Host line, and a Content-Length line,
// exactly when net/http's parser reads one, whatever pieces the head's
// bytes come in, and looks no further than the head.
func TestHostLine(t *testing.T) {
	for _, head := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://a.test/ HTTP/1.1\r\nHost: \t a b \r\n\r\n",
		"GET http://a.test/ HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",
		"GET / HTTP/1.1\r\nhOsT:  \r\n\r\n",
		"GET / HTTP/1.1\r\nX-A: b\r\nHost: x\r\nX-B: c\r\n\r\n",
		"GET / HTTP/1.1\nX-A: b\nhost:\n\n",
		"GET / HTTP/1.1\r\nX-A: b\r\n host: folded\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nX-Host: x\r\nHostname: y\r\nHos: z\r\n\r\n",
		"GET / HTTP/1.1\r\nX-A: b\r\n\r\nHost: in the body\r\n",
		"GET / HTTP/1.1\nX-A: b\n\nHost: in the body\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhost:\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncOnTeNt-lEnGtH: 3\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\nHost: x\ncontent-length:3\n\nabc",
		"POST / HTTP/1.1\r\nX-Content-Length: 3\r\nContent-Lengths: 3\r\nContent-Lengt: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nX-A: b\r\n content-length: folded\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n12\r\nContent-Length: 3\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\ntransfer-ENCODING:chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nX-Transfer-Encoding: chunked\r\nTransfer-Encodin: x\r\nTransfer-Encodings: y\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n transfer-encoding: folded\r\n\r\n",
		"POST / HTTP/1.0\nHost: x\ntransfer-encoding: chunked\ncontent-length: 3\n\nabc",
		// A name as long as one looked for, differing in one byte before
		// the colon: a mismatch must stick for the rest of the line, or
		// the bytes after it complete the name.
		"GET / HTTP/1.1\r\nXost: x\r\nHxst: y\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nXontent-Length: 3\r\nContent-Lengtx: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nXransfer-Encoding: chunked\r\nTransfer-Encodinx: chunked\r\n\r\n",
		// Folded (obs-fold) Host lines: the continuations are the value's.
		"GET http://a.test/ HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
		"GET http://a.test/ HTTP/1.1\r\nHost:\r\n\tb \r\n  c\t\r\nX-A: y\r\n\r\n",
		"GET http://a.test/ HTTP/1.1\r\nHost: a\r\n \r\n\r\n",
		"GET http://a.test/ HTTP/1.1\nHost: a\n b\nX-A: y\n z\n\n",
		"GET http://a.test/ HTTP/1.1\r\nX-A: y\r\n host: z\r\nHost: a\r\n\r\n",
	} {
		if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head))); err != nil {
			t.Fatalf("%q: %v", head, err)
		}
		for _, size := range []int{1, 2, 3, 7, len(head)} {
			checkHostLine(t, head, size)
		}
	}
}

// hostLineIn is a HostLine written head in pieces of size bytes, as a
// connection's reads hand it over.
func hostLineIn(head string, size int) *HostLine {
	var h HostLine
	for s := head; len(s) > 0; {
		n := min(size, len(s))
		h.Write([]byte(s[:n]))
		s = s[n:]
	}
	return &h
}

// checkHostLine holds what HostLine reports of head, written in pieces of
// size bytes, to net/http's truth: the header net/textproto parsed (before
// http.ReadRequest removed Host), and a header line after the first that
// starts with a blank for obs-fold. head must be one net/http reads.
func checkHostLine(t *testing.T, head string, size int) {
	t.Helper()
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head)))
	tp.ReadLine()
	mh, _ := tp.ReadMIMEHeader()
	hosts, want := mh["Host"]
	_, wantCL := mh["Content-Length"]
	_, wantTE := mh["Transfer-Encoding"]
	wantFolded := false
	_, lines, _ := strings.Cut(head, "\n")
	for line := range strings.Lines(lines) {
		if line == "\n" || line == "\r\n" {
			break // the head's end
		}
		wantFolded = wantFolded || line[0] == ' ' || line[0] == '\t'
	}
	h := hostLineIn(head, size)
	if h.Found() != want {
		t.Errorf("%q in pieces of %d: Found %v; net/http read a Host: %v", head, size, h.Found(), want)
	}
	if want && h.Value() != hosts[0] {
		t.Errorf("%q in pieces of %d: Value %q; net/http read %q", head, size, h.Value(), hosts[0])
	}
	if h.ContentLength() != wantCL {
		t.Errorf("%q in pieces of %d: ContentLength %v; net/http read a Content-Length: %v", head, size, h.ContentLength(), wantCL)
	}
	if h.TransferEncoding() != wantTE {
		t.Errorf("%q in pieces of %d: TransferEncoding %v; net/http read a Transfer-Encoding: %v", head, size, h.TransferEncoding(), wantTE)
	}
	if h.Folded() != wantFolded {
		t.Errorf("%q in pieces of %d: Folded %v; want %v", head, size, h.Folded(), wantFolded)
	}
}

// FuzzHostLine holds HostLine to net/http on any head it reads, in pieces
// of any size: the server's Host, framing and obs-fold checks of a head
// net/http reads rest on it, and the table above holds only the heads
// someone thought of.
func FuzzHostLine(f *testing.F) {
	for _, head := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET http://a.test/ HTTP/1.1\r\nX-A: y\r\n z\r\nhost: a\r\n b\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", "POST / HTTP/1.0\nHost: x\ncontent-length:3\n\nabc",
		"GET / HTTP/1.1\r\nX-A: y\r\n\tz\r\n\r\n"} {
		f.Add(head, 3)
	}
	f.Fuzz(func(t *testing.T, head string, size int) {
		if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head))); err != nil {
			return // refused whatever HostLine says
		}
		checkHostLine(t, head, 1+int(uint(size)%64))
	})
}

// TestHostLineFolded: HostLine notes obs-fold, a header line that starts
// with a blank, which net/textproto joins to the line before, whatever
// pieces the head comes in; the request line and the body are no header
// lines.
func TestHostLineFolded(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc\r\n\r\n", true},
		{"GET / HTTP/1.1\nHost: x\nX-A: b\n c\n\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n \r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-A: b c\t\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n a\r\n", false},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\r\n \r\n0\r\n\r\n", false},
	} {
		for _, size := range []int{1, 2, 5, len(tc.head)} {
			if h := hostLineIn(tc.head, size); h.Folded() != tc.want {
				t.Errorf("%q in pieces of %d: Folded %v; want %v", tc.head, size, h.Folded(), tc.want)
			}
		}
	}
}

func TestFramedByTE(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nContent-Type: x\r\nTRANSFER-ENCODING: chunked\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nX-Transfer-Encoding: chunked\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"Transfer-Encoding: chunked\r\n\r\n", false}, // the start line is not a header
	} {
		if got := framedByTE([]byte(tc.head)); got != tc.want {
			t.Errorf("framedByTE(%q) = %v; want %v", tc.head, got, tc.want)
		}
	}
}

// benchRead reads msg again and again, with net/http's reader or this
// package's, and its body to the end.
func benchRead(b *testing.B, msg string, read func(*bufio.Reader) (io.Reader, error)) {
	r := strings.NewReader(msg)
	br := bufio.NewReaderSize(r, 4096)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(msg)
		br.Reset(r)
		br.Peek(1)
		body, err := read(br)
		if err != nil {
			b.Fatal(err)
		}
		_, errSink = io.Copy(io.Discard, body)
	}
}

var errNotPlain = errors.New("not plain")

func BenchmarkReadRequest(b *testing.B) {
	b.Run("httpwire", func(b *testing.B) {
		benchRead(b, goOpenAIRequest, func(br *bufio.Reader) (io.Reader, error) {
			if req, ok := ReadRequest(br, 1<<20); ok {
				return req.Body, nil
			}
			return nil, errNotPlain
		})
	})
	b.Run("python/httpwire", func(b *testing.B) {
		benchRead(b, pythonRequest, func(br *bufio.Reader) (io.Reader, error) {
			if req, ok := ReadRequest(br, 1<<20); ok {
				return req.Body, nil
			}
			return nil, errNotPlain
		})
	})
	b.Run("net/http", func(b *testing.B) {
		benchRead(b, goOpenAIRequest, func(br *bufio.Reader) (io.Reader, error) {
			req, err := http.ReadRequest(br)
			if err != nil {
				return nil, err
			}
			return req.Body, nil
		})
	})
}

// BenchmarkReadResponse reads a non-stream answer and a short stream (head
// and body) with each reader.
func BenchmarkReadResponse(b *testing.B) {
	req := &http.Request{Method: "POST"}
	for _, m := range []struct{ name, msg string }{{"answer", chatAnswer}, {"stream", sseStream}, {"openai-answer", openAIAnswer}} {
		b.Run(m.name+"/httpwire", func(b *testing.B) {
			benchRead(b, m.msg, func(br *bufio.Reader) (io.Reader, error) {
				if resp, ok := ReadResponse(br, req, 1<<20); ok {
					return resp.Body, nil
				}
				return nil, errNotPlain
			})
		})
		b.Run(m.name+"/net/http", func(b *testing.B) {
			benchRead(b, m.msg, func(br *bufio.Reader) (io.Reader, error) {
				resp, err := http.ReadResponse(br, req)
				if err != nil {
					return nil, err
				}
				return resp.Body, nil
			})
		})
	}
}

// TestHostLineValueOfManyFoldsIsLinear: a Host line folded into many
// continuation lines (the head of an absolute-form request, which anyone
// reaching the listener may send, up to its 1 MB bound) reads in time and
// memory linear in its size. The value was joined a line at a time, each
// join copying all before it: 200000 folds (800 KB) took 9 s of CPU for
// one request. The same value as net/textproto reads it, and a bound on
// what is allocated for it.
func TestHostLineValueOfManyFoldsIsLinear(t *testing.T) {
	const folds = 20000
	head := "GET http://x/ HTTP/1.1\r\nHost: a\r\n" + strings.Repeat(" b\r\n", folds) + "\r\n"
	var h HostLine
	h.Write([]byte(head))
	var v string
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	allocs := testing.AllocsPerRun(1, func() { v = h.Value() })
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 16*uint64(len(head)) {
		t.Errorf("Value allocated %d bytes for a %d-byte head; want a few times the head", n, len(head))
	}
	want := "a" + strings.Repeat(" b", folds)
	if v != want {
		t.Fatalf("value %.40q… (%d bytes); want %.40q… (%d bytes)", v, len(v), want, len(want))
	}
	if allocs > 8 {
		t.Fatalf("Value made %v allocations for %d folds; want a few, however many the folds", allocs, folds)
	}
}

// TestNamesAreTokens holds what proxy/h1's server relies on to skip its
// check of header names for a head read here: a name is read only when all
// its bytes are ones httpguts.ValidHeaderFieldName accepts.
func TestNamesAreTokens(t *testing.T) {
	for c := 0; c < 256; c++ {
		if tchar[c] != httpguts.IsTokenRune(rune(c)) {
			t.Errorf("byte %#x: tchar %v, httpguts.IsTokenRune %v", c, tchar[c], httpguts.IsTokenRune(rune(c)))
		}
	}
}

// TestCommonNamesAreCanonical: a name is interned by its canonical form, so
// an entry in another form would never be found.
func TestCommonNamesAreCanonical(t *testing.T) {
	for k, v := range common {
		if k != v || k != http.CanonicalHeaderKey(k) {
			t.Errorf("common[%q] = %q; want the canonical %q", k, v, http.CanonicalHeaderKey(k))
		}
	}
}

// allocated is the bytes f allocates, averaged over runs calls.
func allocated(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestDeclinedHeadCostsNoMoreThanNetHTTP: a head declined here is read
// again by net/http, so declining it must cost no more than net/http's
// read of it, but for the head's copy (the reader's one allocation, made
// before its lines are checked). The header map was sized by the head's LF count before its
// lines were checked: a bare LF is one byte where a header line takes at
// least four, and net/textproto ends the head at the first one, so a
// request of 4 KB of LFs (which anyone reaching the listener may send,
// and which net/http reads as a plain GET) made 400 KB of map here.
func TestDeclinedHeadCostsNoMoreThanNetHTTP(t *testing.T) {
	lfs := strings.Repeat("\n", 4000)
	for _, tc := range []struct {
		name, msg string
		size      int
	}{
		{"request, LFs after the Host", "GET / HTTP/1.1\r\nHost: x\r\n" + lfs + "\r\n\r\n", 4096},
		{"request, LFs after 25 lines", "GET / HTTP/1.1\r\nHost: x\r\n" + manyFields(24, "") + lfs[:3600] + "\r\n\r\n", 4096},
		{"answer, LFs after its length", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + strings.Repeat(lfs, 2) + "\r\n\r\n", 8 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{Method: "POST"}
			response := strings.HasPrefix(tc.msg, "HTTP/")
			var ok bool
			br := filled(tc.msg, tc.size)
			ours := allocated(20, func() {
				if response {
					_, ok = ReadResponse(br, req, 1<<20)
				} else {
					_, ok = ReadRequest(br, 1<<20)
				}
			})
			if ok {
				t.Fatal("read a head with bare LFs")
			}
			var err error
			theirs := allocated(20, func() {
				r := bufio.NewReaderSize(strings.NewReader(tc.msg), tc.size)
				if response {
					_, err = http.ReadResponse(r, req)
				} else {
					_, err = http.ReadRequest(r)
				}
			})
			if err != nil {
				t.Fatalf("net/http refused it: %v", err)
			}
			if ours > theirs+uint64(len(tc.msg)) {
				t.Errorf("declining a %d-byte head allocated %d bytes; net/http reads it with %d, want at most that and the head's copy", len(tc.msg), ours, theirs)
			}
		})
	}
}
