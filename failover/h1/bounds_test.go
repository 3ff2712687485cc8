package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// An upstream that sends interim answers without end must not hold the
// transport in a loop: net/http gives up after 5.
func TestEndlessInterimAnswersAreRefused(t *testing.T) {
	u, _ := rawServer(t, func(n int, c net.Conn) {
		if _, err := readRequest(bufio.NewReader(c)); err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"); err != nil {
				return
			}
		}
		io.WriteString(c, okAnswer)
	})
	resp, err := post(t, &Transport{}, context.Background(), u, "{}")
	if err == nil {
		resp.Body.Close()
		t.Fatal("1000 interim answers accepted; want an error after a few")
	}
	if !strings.Contains(err.Error(), "1xx") {
		t.Fatalf("error %v; want one naming the 1xx answers", err)
	}
}

// Five interim answers are still fine, as with net/http.
func TestFiveInterimAnswersAreSkipped(t *testing.T) {
	u, _ := rawServer(t, func(n int, c net.Conn) {
		if _, err := readRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 5)+okAnswer)
	})
	resp, err := post(t, &Transport{}, context.Background(), u, "{}")
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); resp.StatusCode != 200 || b != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
}

// A response head without end (header lines forever) is refused once it
// passes the bound, rather than read into memory without limit.
func TestEndlessResponseHeadIsRefused(t *testing.T) {
	sent := make(chan int64, 1)
	u, _ := rawServer(t, func(n int, c net.Conn) {
		if _, err := readRequest(bufio.NewReader(c)); err != nil {
			return
		}
		var total int64
		defer func() { sent <- total }()
		m, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		total += int64(m)
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for err == nil && total < 64<<20 {
			m, err = io.WriteString(c, line)
			total += int64(m)
		}
	})
	resp, err := post(t, &Transport{}, context.Background(), u, "{}")
	if err == nil {
		resp.Body.Close()
		t.Fatal("an endless head was accepted")
	}
	if !strings.Contains(err.Error(), "head") && !strings.Contains(err.Error(), "header") {
		t.Fatalf("error %v; want one naming the response head", err)
	}
	if n := <-sent; n >= 64<<20 {
		t.Fatalf("the transport read all %d bytes of the head", n)
	}
}

// A host with non-ASCII letters is sent in its ASCII (punycode) form in the
// Host header, as net/http does, rather than refused.
func TestInternationalHostIsSentAsPunycode(t *testing.T) {
	hosts := make(chan string, 1)
	u, _ := rawServer(t, func(n int, c net.Conn) {
		req, err := readRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		hosts <- req.Host
		io.WriteString(c, okAnswer)
	})
	addr := strings.TrimPrefix(u, "http://")
	tr := &Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if a != "xn--fsqu00a.xn--0zwm56d:80" {
			t.Errorf("dialled %q; want the punycode host and port", a)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	req, err := http.NewRequest(http.MethodPost, "http://例子.测试/v1/chat/completions", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if h := <-hosts; h != "xn--fsqu00a.xn--0zwm56d" {
		t.Fatalf("Host %q; want the punycode form", h)
	}
}
