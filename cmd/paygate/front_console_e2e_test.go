package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/proxy/console"
	"github.com/paygate/paygate/store"
)

// readmeConsoleHostDirective is the proxy_set_header line README's "Behind
// nginx or an ingress" gives a front before the console.
func readmeConsoleHostDirective(t *testing.T) string {
	t.Helper()
	s := readmeFrontSection(t)
	i := strings.Index(s, "`proxy_set_header Host ")
	if i < 0 {
		t.Fatal("README's section Behind nginx or an ingress names no proxy_set_header Host for the console")
	}
	d, _, ok := strings.Cut(s[i+1:], "`")
	if !ok || !strings.HasSuffix(d, ";") {
		t.Fatalf("README's proxy_set_header Host is not a directive: %q", d)
	}
	return d
}

// TestFrontConsoleDecisionThroughNginx: the console behind nginx set up as
// README says (its Host directive, the name in server.admin_hosts), reached
// on a port of the front's other than the scheme's default (as every front
// in these tests is, and an operator's internal one often is): the
// browser's Origin then carries the port, and a decision is made, not
// refused as cross-origin because the Host paygate sees lost the port.
func TestFrontConsoleDecisionThroughNginx(t *testing.T) {
	adminURL, _, no := adminHostsApp(t)
	directive := readmeConsoleHostDirective(t)
	addr := freeAddr(t)
	front := startNginx(t, addr, `        location / { proxy_pass `+adminURL+`; `+directive+` }`)
	_, port, _ := strings.Cut(addr, ":")
	host := "paygate-admin.example.com:" + port
	req, err := http.NewRequest("POST", front+"/admin/api/approvals/"+no+"/approve", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	// As the console's fetch sends it from http://paygate-admin.example.com:port/.
	req.Header.Set("Origin", "http://"+host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set(console.CSRFHeader, "1")
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	if resp, b := doRead(t, req); resp.StatusCode != http.StatusOK || gjson.GetBytes(b, "order.status").Str != string(store.StatusAwaitingPayment) {
		t.Errorf("approve through the front with README's %q: %d %s; want 200 and the order awaiting payment", directive, resp.StatusCode, b)
	}
}
