package webhook_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/payments/webhook"
)

// readmeBlock returns the first fenced block of lang after heading in the
// repository's README.
func readmeBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, heading)
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	s = s[i:]
	start := strings.Index(s, "```"+lang+"\n")
	if start < 0 {
		t.Fatalf("README's %q has no %s block", heading, lang)
	}
	s = s[start+len("```"+lang+"\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatalf("README's %s block is not closed", lang)
	}
	return s[:end]
}

// TestReadmeNodeVerifier runs the README's Node snippet against signatures
// made by Sign, the function the relay signs with.
func TestReadmeNodeVerifier(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node is required under CI: %v", err)
		}
		t.Skip("node not installed")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "verify.mjs"), []byte(readmeBlock(t, "## Merchant webhooks", "js")), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "whsec_node"
	body := `{"id":"evt_n1","type":"order.paid","data":{"order":{"order_no":"PG1","description":"高级会员"}}}`
	now := time.Now()
	good := webhook.Sign(secret, now, []byte(body))
	v1 := good[strings.Index(good, "v1="):]
	tests := []struct {
		Name   string `json:"name"`
		Secret string `json:"secret"`
		Header string `json:"header"`
		Body   string `json:"body"`
		Want   bool   `json:"want"`
	}{
		{Name: "valid", Secret: secret, Header: good, Body: body, Want: true},
		{Name: "spaces", Secret: secret, Header: strings.Replace(good, ",", ", ", 1), Body: body, Want: true},
		{Name: "rotation", Secret: secret, Header: webhook.Sign("whsec_old", now, []byte(body)) + "," + v1, Body: body, Want: true},
		{Name: "tampered body", Secret: secret, Header: good, Body: strings.Replace(body, "PG1", "PG2", 1)},
		{Name: "wrong secret", Secret: "whsec_other", Header: good, Body: body},
		{Name: "stale", Secret: secret, Header: webhook.Sign(secret, now.Add(-10*time.Minute), []byte(body)), Body: body},
		{Name: "future", Secret: secret, Header: webhook.Sign(secret, now.Add(10*time.Minute), []byte(body)), Body: body},
		{Name: "timestamp not a number", Secret: secret, Header: "t=abc," + v1, Body: body},
		{Name: "timestamp changed", Secret: secret, Header: "t=" + strconv.FormatInt(now.Unix()-1, 10) + "," + v1, Body: body},
		{Name: "no v1", Secret: secret, Header: good[:strings.Index(good, ",")], Body: body},
		{Name: "short v1", Secret: secret, Header: good[:len(good)-2], Body: body},
		{Name: "empty", Secret: secret, Header: "", Body: body},
		{Name: "empty secret", Secret: "", Header: webhook.Sign("", now, []byte(body)), Body: body},
	}
	cases, _ := json.Marshal(tests)
	harness := `import { verifyPaygate } from "./verify.mjs";
const cases = JSON.parse(process.env.CASES);
const out = {};
for (const c of cases) out[c.name] = verifyPaygate(c.secret, c.header, Buffer.from(c.body, "utf8"));
console.log(JSON.stringify(out));
`
	if err := os.WriteFile(filepath.Join(dir, "run.mjs"), []byte(harness), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "run.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CASES="+string(cases))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got map[string]bool
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node said %s: %v", out, err)
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			if got[tc.Name] != tc.Want {
				t.Errorf("node verifyPaygate: got %v; want %v", got[tc.Name], tc.Want)
			}
			// The Go helper agrees.
			if goOK := webhook.Verify(tc.Secret, tc.Header, []byte(tc.Body), now, 5*time.Minute) == nil; goOK != tc.Want {
				t.Errorf("webhook.Verify: got %v; want %v", goOK, tc.Want)
			}
		})
	}
}

// TestReadmeGoSnippet: the README's Go snippet is the body of
// Example_receiver (which runs), not a drifting copy.
func TestReadmeGoSnippet(t *testing.T) {
	snippet := readmeBlock(t, "## Merchant webhooks", "go")
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, line := range []string{
		`body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))`,
		`if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {`,
		`var evt webhook.Envelope`,
	} {
		if !strings.Contains(norm(snippet), norm(line)) || !strings.Contains(norm(string(src)), norm(line)) {
			t.Errorf("README snippet and Example_receiver do not both contain %q", line)
		}
	}
}
