package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

// readmeFrontSection is README's section "Behind nginx or an ingress", to
// the next section's heading.
func readmeFrontSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Behind nginx or an ingress\n")
	if i < 0 {
		t.Fatal(`README has no "## Behind nginx or an ingress" section`)
	}
	s = s[i:]
	if j := strings.Index(s[1:], "\n## "); j >= 0 {
		s = s[:j+1]
	}
	return s
}

// readmeNginxLocations returns the locations of the nginx server block in
// README's "Behind nginx or an ingress", as written, paygate's address in
// them replaced by upstream: the block without its server, listen and TLS
// lines.
func readmeNginxLocations(t *testing.T, upstream string) string {
	t.Helper()
	s := readmeFrontSection(t)
	i := strings.Index(s, "```nginx\n")
	j := strings.Index(s, "\n```\n")
	if i < 0 || j < i {
		t.Fatal("README's section Behind nginx or an ingress has no nginx block")
	}
	lines := strings.Split(s[i+len("```nginx\n"):j], "\n")
	first := -1
	for k, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "location") && first < 0 {
			first = k
		}
	}
	if first < 0 || strings.TrimSpace(lines[len(lines)-1]) != "}" {
		t.Fatalf("README's nginx block is not a server block of locations:\n%s", strings.Join(lines, "\n"))
	}
	locs := strings.Join(lines[first:len(lines)-1], "\n")
	if !strings.Contains(locs, "http://127.0.0.1:8080") {
		t.Fatalf("README's nginx block does not pass to http://127.0.0.1:8080:\n%s", locs)
	}
	return strings.ReplaceAll(locs, "http://127.0.0.1:8080", strings.TrimSuffix(upstream, "/"))
}

// TestFrontReadmeConfig runs the nginx config README shows in front of
// paygate: WeChat Pay's notification reaches paygate through it (the
// simulator pays at the public notify URL, and the order is paid), a
// stream goes through event by event, a chat body above nginx's default
// 1m reaches paygate, and nothing but the notify route and /v1/ is
// served.
func TestFrontReadmeConfig(t *testing.T) {
	up := newGatedProvider(t)
	srv := h1test.NewUnstartedServer()
	addr := freeAddr(t)
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers: [{name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}]
models: [{name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}]
payments:
  catalog: [{sku: premium-monthly, name: "Premium", price: "49.99", max_quantity: 12}]
`
	cfg, err := config.Parse([]byte(src), "front.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	// The public notify URL is the front's: the simulator notifies there.
	a, err := newApp(cfg, io.Discard, "http://"+addr+"/wechatpay/notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	srv.Start(a.server.Handler())
	t.Cleanup(srv.Close)
	front := startNginx(t, addr, readmeNginxLocations(t, srv.URL))

	// A purchase, its payment notified through the front.
	out := chatAs(t, front, testOpenID, "premium please")
	no := out.Get(`paygate.actions.#(type=="order_created").order.order_no`).Str
	if no == "" {
		t.Fatalf("no order created: %s", out.Raw)
	}
	d, err := a.sim.Pay(context.Background(), no)
	if err != nil || !d.Acked || d.LastStatus != http.StatusNoContent {
		t.Fatalf("the notification through the front: %+v %v; want acknowledged with 204", d, err)
	}
	if code, o := httpCall(t, http.MethodGet, front+"/v1/paygate/orders/"+no, "Bearer "+e2eClientKey, testOpenID); code != 200 || o.Get("status").Str != "paid" {
		t.Errorf("order through the front: %d %s; want paid", code, o.Raw)
	}

	// A stream, event by event.
	gate := up.arm()
	held := up.held.Load()
	resp := postAs(t, front, e2eClientKey, "", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	var all strings.Builder
	buf := make([]byte, 4096)
	opened := false
	for {
		n, err := resp.Body.Read(buf)
		all.Write(buf[:n])
		if !opened && strings.Contains(all.String(), "Hello") {
			close(gate)
			opened = true
		}
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	if !opened || !strings.Contains(all.String(), "The end.") || up.held.Load() != held {
		t.Errorf("stream through the front: first event read before its end %v, whole %v: %q", opened && up.held.Load() == held, strings.Contains(all.String(), "The end."), all.String())
	}

	// A 2 MiB chat body: paygate's 8 MiB, not nginx's default 1m.
	big := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 2<<20) + `"}]}`
	resp = postAs(t, front, e2eClientKey, "", big)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Hello") {
		t.Errorf("a 2 MiB chat through the front: %d %.300s", resp.StatusCode, b)
	}

	// Only the notify route and /v1/ are paygate's.
	for _, p := range []string{"/healthz", "/metrics", "/wechatpay/notify/x"} {
		resp, err := http.Get(front + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "nginx") {
			t.Errorf("GET %s through the front: %d %.200s; want nginx's 404", p, resp.StatusCode, b)
		}
	}
}
