package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
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
		// Malformed headers paygate never sends: the Go and Node recipes
		// refuse them alike.
		{Name: "v1 with trailing junk", Secret: secret, Header: good + "zz", Body: body},
		{Name: "v1 with an odd nibble", Secret: secret, Header: good + "0", Body: body},
		{Name: "second t", Secret: secret, Header: "t=" + strconv.FormatInt(now.Unix()-1, 10) + "," + good, Body: body},
		{Name: "v1 with a second =", Secret: secret, Header: good + "=00", Body: body},
		{Name: "a bare t", Secret: secret, Header: "t," + good, Body: body, Want: true},
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
// Example_receiver (which runs), not a drifting copy: its dedupe checks
// the id, acts and remembers the id under one lock, since a copy can
// arrive while the first is still handled
// (TestCopyArrivesWhileTheFirstIsStillHandled).
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
		`order, err := evt.Data.DecodeOrder()`,
		`mu.Lock()`,
		`defer mu.Unlock()`,
		`if processed[evt.ID] {`,
		`processed[evt.ID] = true`,
	} {
		if !strings.Contains(norm(snippet), norm(line)) || !strings.Contains(norm(string(src)), norm(line)) {
			t.Errorf("README snippet and Example_receiver do not both contain %q", line)
		}
	}
}

// readmeReceiver is a merchant endpoint written from the README's
// "Merchant webhooks" section alone, not from this package: the headers its
// HTTP example names, v1 as the hex HMAC-SHA256 keyed with the secret of
// "<t>.<raw body>", a timestamp within 5 minutes of the receiver's clock,
// and dedupe by the body's id. It refuses the first delivery of each id
// with a 503 (a retry must carry the same id and body), then answers 204.
type readmeReceiver struct {
	secret string
	mu     sync.Mutex
	got    []readmeArrival
}

type readmeArrival struct {
	header http.Header
	body   []byte
	t      int64
	status int
	err    string
}

func (rr *readmeReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a := readmeArrival{header: r.Header.Clone(), body: body, status: http.StatusNoContent}
	fail := func(format string, args ...any) {
		if a.err == "" {
			a.err = fmt.Sprintf(format, args...)
			a.status = http.StatusBadRequest
		}
	}
	var ts string
	var v1 []string
	for part := range strings.SplitSeq(r.Header.Get("X-Paygate-Signature"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = append(v1, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(v1) == 0 {
		fail("X-Paygate-Signature %q is not t=<unix>,v1=<hex>", r.Header.Get("X-Paygate-Signature"))
	}
	a.t = sec
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		fail("timestamp %d is %s from the receiver's clock", sec, d)
	}
	m := hmac.New(sha256.New, []byte(rr.secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	if !slices.ContainsFunc(v1, func(s string) bool {
		b, err := hex.DecodeString(s)
		return err == nil && hmac.Equal(b, want)
	}) {
		fail("no v1 in %q is HMAC-SHA256(secret, t.body)", v1)
	}
	var env struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		fail("body is not JSON: %v", err)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Paygate-Event-Id") != env.ID ||
		r.Header.Get("X-Paygate-Event-Type") != env.Type || r.Header.Get("Idempotency-Key") != "" {
		fail("headers %v do not name event %s (%s) as the README shows", r.Header, env.ID, env.Type)
	}
	rr.mu.Lock()
	seen := slices.ContainsFunc(rr.got, func(p readmeArrival) bool { return strings.Contains(string(p.body), `"id":"`+env.ID+`"`) })
	if !seen && a.err == "" {
		a.status = http.StatusServiceUnavailable
	}
	rr.got = append(rr.got, a)
	rr.mu.Unlock()
	w.WriteHeader(a.status)
}

// TestReadmeReceiverVerifiesRealDeliveries: a receiver built from the
// README's words alone verifies what a running relay POSTs, every attempt
// of it: the headers of the README's example, the documented signature and
// tolerance, the same id and body on the retry (only t new), and the body's
// fields as the README lists them (the order object's keys, whose order it
// is, data.refund on refund.* events). A mismatch between README and code
// fails here.
func TestReadmeReceiverVerifiesRealDeliveries(t *testing.T) {
	readme := readmeBlock(t, "## Merchant webhooks", "http")
	for _, h := range []string{"Content-Type: application/json", "X-Paygate-Signature: t=", "X-Paygate-Event-Id: evt_", "X-Paygate-Event-Type: order.paid"} {
		if !strings.Contains(readme, h) {
			t.Fatalf("README's example delivery no longer shows %q; update this receiver", h)
		}
	}
	// The keys the README's example body names, at each level.
	keysIn := func(s string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`"([a-z_]+)":`).FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		return out
	}
	exampleOrder := readme[strings.Index(readme, `"order":{`)+len(`"order":{`):]
	exampleOrder = exampleOrder[:strings.Index(exampleOrder, "}")]
	orderKeys := keysIn(exampleOrder)
	dataKeys := []string{"client", "app_id", "openid", "transaction_id"}
	for _, k := range dataKeys {
		if !slices.Contains(keysIn(readme), k) {
			t.Fatalf("README's example no longer names data.%s", k)
		}
	}

	const secret = "whsec_readme_receiver_0123456789"
	rr := &readmeReceiver{secret: secret}
	srv := httptest.NewServer(rr)
	defer srv.Close()
	st := testdrivers.Open(t, "embedded", nil)
	ob := orders{t, st}
	o := ob.create("PGREADME1", store.StatusAwaitingPayment)
	ob.move(o, store.StatusPaid, "notification")
	p := &store.RefundProposal{RefundID: "rf_readme1", OrderNo: o.OrderNo, AmountFen: 1000, Reason: "late"}
	for _, to := range []store.OrderStatus{store.StatusRefunding, store.StatusPartiallyRefunded} {
		before := *o
		o.Status, o.UpdatedAt = to, time.Now()
		if to == store.StatusPartiallyRefunded {
			o.RefundedFen = p.AmountFen
		}
		tr := payments.Transition{Before: before, After: *o, Cause: "refund", Refund: p}
		if err := st.UpdateOrder(context.Background(), o, before.Status, webhook.Events(tr)...); err != nil {
			t.Fatal(err)
		}
	}
	clk := newClock()
	r, err := webhook.New(webhook.Options{Store: st, URL: srv.URL, Secret: secret, Now: clk.Now, RetryBase: time.Second, MaxDelay: time.Second, RetryFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		drain(t, r)
		clk.Advance(2 * time.Second) // well within the receiver's 5 minutes
	}

	rr.mu.Lock()
	defer rr.mu.Unlock()
	for i, a := range rr.got {
		if a.err != "" {
			t.Errorf("delivery %d does not verify as the README says: %s\n%s", i, a.err, a.body)
		}
	}
	if len(rr.got) != 4 {
		t.Fatalf("%d deliveries; want 4 (each of order.paid and refund.succeeded refused once, then accepted)", len(rr.got))
	}
	for i := 0; i < 4; i += 2 {
		first, retry := rr.got[i], rr.got[i+1]
		if !bytes.Equal(first.body, retry.body) || first.header.Get("X-Paygate-Event-Id") != retry.header.Get("X-Paygate-Event-Id") {
			t.Errorf("retry %d: body %s id %s; want the first attempt's %s %s", i/2, retry.body, retry.header.Get("X-Paygate-Event-Id"), first.body, first.header.Get("X-Paygate-Event-Id"))
		}
		if retry.t <= first.t {
			t.Errorf("retry %d signed at t=%d, not after the first attempt's t=%d", i/2, retry.t, first.t)
		}
	}
	for i, want := range []string{webhook.TypeOrderPaid, webhook.TypeRefundSucceeded} {
		var env struct {
			ID        string                     `json:"id"`
			Type      string                     `json:"type"`
			CreatedAt string                     `json:"created_at"`
			Data      map[string]json.RawMessage `json:"data"`
		}
		body := rr.got[2*i].body
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatal(err)
		}
		if env.Type != want || !strings.HasPrefix(env.ID, "evt_") {
			t.Errorf("delivery %d: %s %s; want an evt_ id and %s", i, env.ID, env.Type, want)
		}
		if _, err := time.Parse(time.RFC3339, env.CreatedAt); err != nil {
			t.Errorf("created_at %q is not RFC 3339: %v", env.CreatedAt, err)
		}
		var order map[string]any
		_ = json.Unmarshal(env.Data["order"], &order)
		var got []string
		for k := range order {
			got = append(got, k)
		}
		if slices.Sort(got); !slices.Equal(got, slices.Sorted(slices.Values(orderKeys))) {
			t.Errorf("%s: data.order keys %v; the README lists %v", want, got, orderKeys)
		}
		for _, k := range dataKeys {
			if env.Data[k] == nil {
				t.Errorf("%s: no data.%s, which the README names: %s", want, k, body)
			}
		}
		if want == webhook.TypeRefundSucceeded {
			var refund map[string]any
			_ = json.Unmarshal(env.Data["refund"], &refund)
			for _, k := range []string{"refund_id", "order_no", "amount_fen"} {
				if refund[k] == nil {
					t.Errorf("refund.succeeded: data.refund has no %s, which the README names: %s", k, body)
				}
			}
		}
	}
}
