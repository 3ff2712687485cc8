package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeNodeSnippetOpensThePaymentSheet runs README.md's mini-program
// backend in Node ("Point a bot at it") as it is written, with the Node
// openai SDK, against the binary's application, a scripted provider and the
// WeChat Pay simulator: a user's purchase must reach the snippet's send()
// as the text and one {pay, order} holding the signed payment parameters
// (the paygate object on the final chunk, which the snippet reads), and an
// order above payments.rules.approval_above as {waiting}. A README edit that
// breaks the snippet, or a change that moves what it reads, fails here.
func TestReadmeNodeSnippetOpensThePaymentSheet(t *testing.T) {
	node, _ := filepath.Abs("../../test/node")
	if _, err := os.Stat(filepath.Join(node, "node_modules", "openai")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the Node openai package is missing: run `npm ci --prefix test/node`")
		}
		t.Skip("Node openai package not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const open = "```js\nimport OpenAI from \"openai\";"
	i := strings.Index(string(readme), open)
	if i < 0 {
		t.Fatalf("README.md has no js block starting with %q", open[6:])
	}
	snippet := string(readme[i+len("```js\n"):])
	snippet = snippet[:strings.Index(snippet, "```")]
	const addr = `"http://127.0.0.1:8080/v1"`
	if !strings.Contains(snippet, addr) {
		t.Fatalf("README.md's Node snippet does not point at %s, the defaults' listener:\n%s", addr, snippet)
	}

	for _, tc := range []struct {
		name, extra, want string
	}{
		{"purchase", "", "pay"},
		{"approval", "  rules: {approval_above: \"40.00\"}\n", "waiting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newScriptedProvider(t, purchaseScript)
			url, a := paymentApp(t, up.URL, tc.extra)
			dir := t.TempDir()
			if err := os.Symlink(filepath.Join(node, "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "chat.mjs"), []byte(strings.Replace(snippet, addr, `"`+url+`/v1"`, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			run := `import { chat } from "./chat.mjs";
const sent = [];
await chat(process.env.OPENID, [{ role: "user", content: "I want the monthly plan" }], (m) => sent.push(m));
console.log(JSON.stringify(sent));
`
			if err := os.WriteFile(filepath.Join(dir, "run.mjs"), []byte(run), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("node", "run.mjs")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PAYGATE_CLIENT_KEY="+e2eClientKey, "OPENID="+testOpenID)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node: %v %s", err, out)
			}
			var sent []struct {
				Text    string `json:"text"`
				Pay     *struct{ AppID, TimeStamp, NonceStr, Package, SignType, PaySign string }
				Order   *struct{ OrderNo, Status string } `json:"order"`
				Waiting *struct {
					OrderNo string `json:"order_no"`
					Status  string `json:"status"`
				} `json:"waiting"`
			}
			if err := json.Unmarshal(out, &sent); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			var text strings.Builder
			pays, waits := 0, 0
			for _, m := range sent {
				text.WriteString(m.Text)
				if m.Pay != nil {
					pays++
					if !strings.HasPrefix(m.Pay.Package, "prepay_id=") || m.Pay.PaySign == "" || m.Pay.SignType != "RSA" || m.Pay.TimeStamp == "" || m.Pay.NonceStr == "" || m.Order == nil {
						t.Errorf("send({pay}) got %+v, order %+v; want wx.requestPayment's signed parameters and the order", m.Pay, m.Order)
					}
				}
				if m.Waiting != nil {
					waits++
					if !strings.HasPrefix(m.Waiting.OrderNo, "PG") || m.Waiting.Status != "approval_required" {
						t.Errorf("send({waiting}) got %+v; want the held order", m.Waiting)
					}
				}
			}
			if got := text.String(); got != "Let me set that up. Your order is ready: tap Pay to finish." {
				t.Errorf("the snippet sent the text %q", got)
			}
			switch tc.want {
			case "pay":
				if pays != 1 || waits != 0 || a.sim.OrderCount() != 1 {
					t.Errorf("the snippet sent %d {pay} and %d {waiting} (%s), WeChat Pay holds %d orders; want one {pay} of the one order", pays, waits, out, a.sim.OrderCount())
				}
			case "waiting":
				if pays != 0 || waits != 1 || a.sim.OrderCount() != 0 {
					t.Errorf("the snippet sent %d {pay} and %d {waiting} (%s), WeChat Pay holds %d orders; want one {waiting} and no prepay", pays, waits, out, a.sim.OrderCount())
				}
			}
		})
	}
}
