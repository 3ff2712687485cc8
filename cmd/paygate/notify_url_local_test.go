package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLocalNotifyURL: the notify URL the simulator posts its notifications
// to, made from the address the notify route's listener bound, is one a
// process on this host can connect to. A listener on every interface
// ("0.0.0.0:8080", the image's PAYGATE_LISTEN, or ":8080") is bound by Go
// as "[::]:8080"; the URL must not be http://[::]:8080/…, which the kernel
// connects to ::1, absent in a container whose network has no IPv6 (Docker's
// default): there every simulated payment's notification failed.
func TestLocalNotifyURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/wechatpay/notify"},
		{"[::]:8080", "http://127.0.0.1:8080/wechatpay/notify"},
		{"0.0.0.0:8080", "http://127.0.0.1:8080/wechatpay/notify"},
		{":8080", "http://127.0.0.1:8080/wechatpay/notify"},
		{"[::1]:8080", "http://[::1]:8080/wechatpay/notify"},
		{"10.0.0.5:8082", "http://10.0.0.5:8082/wechatpay/notify"},
	}
	for _, tt := range tests {
		if got := localNotifyURL(tt.addr); got != tt.want {
			t.Errorf("localNotifyURL(%q) = %q; want %q", tt.addr, got, tt.want)
		}
	}
}

// TestLocalNotifyURLOfAWildcardListener: with a listener bound as Go binds
// "0.0.0.0:0", the URL reaches it over IPv4's loopback.
func TestLocalNotifyURLOfAWildcardListener(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	u := localNotifyURL(ln.Addr().String())
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("bound %s: notify URL %s; want it on 127.0.0.1", ln.Addr(), u)
	}
	resp, err := http.Post(u, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
