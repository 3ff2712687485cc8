package webhook_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// nodeReceiverJS is a merchant endpoint in Node with no dependency: the
// README's verifyPaygate (prepended from the README) over the raw body
// bytes, the first delivery of each order.paid refused with a 503 (its
// answer lost, say), every other verified one acknowledged, and each
// arrival written as a JSON line. It stops when its stdin closes.
const nodeReceiverJS = `
import http from "node:http";
const secret = process.env.WEBHOOK_SECRET;
const seen = new Set();
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks);
    const header = req.headers["x-paygate-signature"];
    const ok = verifyPaygate(secret, header, raw);
    let evt = {};
    try { evt = JSON.parse(raw.toString("utf8")); } catch {}
    let status = 204;
    if (!ok) status = 400;
    else if (evt.type === "order.paid" && !seen.has("refused " + evt.id)) { seen.add("refused " + evt.id); status = 503; }
    const t = Number(/(?:^|,)\s*t=(\d+)/.exec(String(header))?.[1] ?? 0);
    process.stdout.write(JSON.stringify({ id: evt.id, type: evt.type, order_no: evt.data?.order?.order_no,
      amount_fen: evt.data?.order?.amount_fen, openid: evt.data?.openid, t, ok, status,
      skew: Math.round(Date.now() / 1000) - t, body: raw.toString("base64") }) + "\n");
    res.statusCode = status;
    res.end();
  });
});
server.listen(0, "127.0.0.1", () => process.stdout.write("PORT " + server.address().port + "\n"));
process.stdin.on("end", () => server.close(() => process.exit(0)));
process.stdin.resume();
`

type nodeArrival struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	OrderNo   string `json:"order_no"`
	AmountFen any    `json:"amount_fen"`
	OpenID    string `json:"openid"`
	T         int64  `json:"t"`
	OK        bool   `json:"ok"`
	Status    int    `json:"status"`
	Skew      int64  `json:"skew"`
	Body      []byte `json:"body"`
}

// TestNodeReceiverVerifiesDeliveriesAcrossARestart: a Node endpoint using
// the README's verifyPaygate (Node's crypto, over the raw bytes it read off
// the socket) verifies every delivery a relay makes over real HTTP, on each
// store driver. The order.paid it refuses first is retried with the same id
// and body and a fresh timestamp by a relay restarted on the same store, and
// the refund.succeeded committed meanwhile never arrives before the
// order.paid was acknowledged.
func TestNodeReceiverVerifiesDeliveriesAcrossARestart(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node is required under CI: %v", err)
		}
		t.Skip("node not installed")
	}
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			const secret = "whsec_node_receiver_0123456789abcdef"
			dir := t.TempDir()
			src := readmeBlock(t, "## Merchant webhooks", "js") + nodeReceiverJS
			if err := os.WriteFile(filepath.Join(dir, "receiver.mjs"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("node", "receiver.mjs")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			lines := bufio.NewScanner(stdout)
			lines.Buffer(make([]byte, 1<<20), 1<<20)
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), "PORT ") {
				t.Fatalf("node receiver did not start: %q %s", lines.Text(), stderr.String())
			}
			url := "http://127.0.0.1:" + strings.TrimPrefix(lines.Text(), "PORT ") + "/paygate/events"

			place := testdrivers.NewPlace(t, driver, nil)
			st := place.Open()
			ob := orders{t, st}
			o := ob.create("PNODE"+strings.ToUpper(driver)+strconv.FormatInt(time.Now().UnixNano()%1e6, 10), store.StatusAwaitingPayment)
			o.Description = "高级会员 <年卡> & \"礼包\""
			ob.move(o, store.StatusPaid, "notification")
			clk := newClock()
			relay := func(st store.Store) *webhook.Relay {
				r, err := webhook.New(webhook.Options{Store: st, URL: url, Secret: secret, Now: clk.Now,
					RetryBase: time.Second, MaxDelay: 4 * time.Second, RetryFor: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			drain(t, relay(st)) // order.paid refused: 503
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			st = place.Open() // the restart
			defer st.Close()
			ob = orders{t, st}
			ob.refund(o, "rf_node1", 1500)
			r2 := relay(st)
			for range 4 {
				clk.Advance(time.Second)
				drain(t, r2)
			}
			_ = stdin.Close()
			var got []nodeArrival
			for lines.Scan() {
				var a nodeArrival
				if err := json.Unmarshal(lines.Bytes(), &a); err != nil {
					t.Fatalf("node receiver wrote %q: %v", lines.Text(), err)
				}
				got = append(got, a)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("node receiver: %v\n%s", err, stderr.String())
			}

			var seq []string
			for _, a := range got {
				seq = append(seq, a.Type+" "+strconv.Itoa(a.Status))
				if !a.OK {
					t.Errorf("verifyPaygate refused %s %s (t=%d, %ds off the receiver's clock): %s", a.Type, a.ID, a.T, a.Skew, a.Body)
				}
				if a.OrderNo != o.OrderNo || a.OpenID != o.User {
					t.Errorf("%s names order %q user %q; want %q %q", a.Type, a.OrderNo, a.OpenID, o.OrderNo, o.User)
				}
				if _, isNumber := a.AmountFen.(float64); !isNumber || a.AmountFen.(float64) != float64(o.AmountFen) {
					t.Errorf("%s: data.order.amount_fen %#v; want the integer %d", a.Type, a.AmountFen, o.AmountFen)
				}
				if bytes.Contains(a.Body, []byte(secret)) {
					t.Errorf("%s carries the webhook secret: %s", a.Type, a.Body)
				}
			}
			want := []string{"order.paid 503", "order.paid 204", "refund.succeeded 204"}
			if strings.Join(seq, ", ") != strings.Join(want, ", ") {
				t.Fatalf("the Node receiver got %v; want %v", seq, want)
			}
			if got[0].ID != got[1].ID || !bytes.Equal(got[0].Body, got[1].Body) {
				t.Errorf("the retry after the restart is %s %s; want the refused %s %s again", got[1].ID, got[1].Body, got[0].ID, got[0].Body)
			}
			if got[1].T <= got[0].T {
				t.Errorf("the retry is signed at t=%d, not after the first attempt's t=%d", got[1].T, got[0].T)
			}
		})
	}
}
