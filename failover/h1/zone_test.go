package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// TestZoneIsNotInTheHostHeader: an upstream on a link-local IPv6 address
// is named in base_url with its zone ("http://[fe80::1%25eth0]:8000/v1"),
// which says which interface to dial and means nothing to the server. As
// net/http does, the zone is dialled but left out of the Host header
// (RFC 6874: a zone is local to the client), which a server validating its
// Host (nginx, a relay's virtual hosts) refuses or does not recognise.
func TestZoneIsNotInTheHostHeader(t *testing.T) {
	var zone string
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 && i.Flags&net.FlagUp != 0 {
			zone = i.Name
		}
	}
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil || zone == "" {
		t.Skipf("no IPv6 loopback to listen on (%v, zone %q)", err, zone)
	}
	defer ln.Close()
	hosts := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := readRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		hosts <- req.Host
		io.WriteString(c, okAnswer)
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	req, err := http.NewRequest(http.MethodGet, "http://[::1%25"+zone+"]:"+strconv.Itoa(port)+"/v1/models", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Transport{}
	defer tr.CloseIdleConnections()
	if _, b, err := roundTripBody(tr, req); err != nil || b != "ok" {
		t.Fatalf("%q, %v", b, err)
	}
	if got, want := <-hosts, "[::1]:"+strconv.Itoa(port); got != want {
		t.Fatalf("Host %q; want %q (no zone)", got, want)
	}
}
