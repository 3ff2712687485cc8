package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
)

const auditAdminToken = "adm-3f9c1e-audit-token"

// auditAdmin serves the admin audit routes over an embedded store holding a
// three-record chain (users oAlice, oBob, oAlice, each with a text).
func auditAdmin(t *testing.T, mods ...func(*config.Config)) (string, *embedded.DB, []store.AuditRecord) {
	t.Helper()
	var acts []auditAct
	for i, user := range []string{"oAlice", "oBob", "oAlice"} {
		acts = append(acts, auditAct{audit.Action{Name: "order.created", Client: "shop-bot", User: user, OrderNo: fmt.Sprintf("PG%d", i+1), AmountFen: 4999},
			&payments.Turn{Messages: []byte(fmt.Sprintf(`[{"role":"user","content":"buy %d"}]`, i+1)), Provider: "fake", Model: "vendor/upstream-model"}})
	}
	return auditAdminOf(t, acts, mods...)
}

// auditAct is one action of a chain auditAdminOf records, with the turn
// whose text it keeps (nil: none).
type auditAct struct {
	action audit.Action
	turn   *payments.Turn
}

// auditAdminOf serves the admin audit routes over an embedded store holding
// a chain of acts, one record each.
func auditAdminOf(t *testing.T, acts []auditAct, mods ...func(*config.Config)) (string, *embedded.DB, []store.AuditRecord) {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "p.db"), embedded.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	base, recs := auditAdminOn(t, st, acts, mods...)
	return base, st, recs
}

// auditAdminOn serves the admin audit routes over st, after recording a
// chain of acts in it, one record each.
func auditAdminOn(t *testing.T, st store.Store, acts []auditAct, mods ...func(*config.Config)) (string, []store.AuditRecord) {
	t.Helper()
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) {
		c.Admin.Token = auditAdminToken
		for _, m := range mods {
			m(c)
		}
	})
	ctx := context.Background()
	for _, a := range acts {
		ev, err := audit.ActionEvent(a.action, a.turn)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.EnqueueEvents(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	w, err := audit.NewWorker(audit.WorkerOptions{Store: st, RetainText: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Drain(ctx); err != nil || n != len(acts) {
		t.Fatalf("drain: %d %v", n, err)
	}
	recs, err := st.ReadAudit(ctx, 1, max(len(acts), 1))
	if err != nil {
		t.Fatal(err)
	}
	s := newPaygate(t, cfg, Options{})
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	s.MountAdminAudit(mux, st, w.Erase)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, recs
}

func auditAdminDo(t *testing.T, method, url, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, url, err)
	}
	return resp.StatusCode, out
}

func auditSeqs(out map[string]any) []int {
	var s []int
	recs, _ := out["records"].([]any)
	for _, r := range recs {
		m, _ := r.(map[string]any)
		n, _ := m["seq"].(float64)
		s = append(s, int(n))
	}
	return s
}

func TestAdminAudit(t *testing.T) {
	base, st, recs := auditAdmin(t)
	head := audit.FormatHead(store.AuditHead{Seq: 3, Hash: recs[2].Hash})
	cases := []struct {
		name   string
		method string
		path   string
		token  string
		status int
		check  func(t *testing.T, out map[string]any)
	}{
		{name: "head without token", method: "GET", path: "/admin/api/audit/head", status: 401},
		{name: "head with wrong token", method: "GET", path: "/admin/api/audit/head", token: "adm-wrong", status: 401},
		{name: "list without token", method: "GET", path: "/admin/api/audit", status: 401},
		{name: "erase without token", method: "DELETE", path: "/admin/api/audit/texts/oAlice", status: 401},
		{name: "head", method: "GET", path: "/admin/api/audit/head", token: auditAdminToken, status: 200, check: func(t *testing.T, out map[string]any) {
			if out["seq"] != float64(3) || out["hash"] != recs[2].Hash || out["head"] != head {
				t.Errorf("head: got %v; want %s", out, head)
			}
		}},
		{name: "latest page", method: "GET", path: "/admin/api/audit?limit=2", token: auditAdminToken, status: 200, check: func(t *testing.T, out map[string]any) {
			if got := auditSeqs(out); fmt.Sprint(got) != "[2 3]" || out["prev_from"] != float64(1) || out["next_from"] != nil {
				t.Errorf("got seqs %v prev %v next %v; want [2 3], prev 1, no next", got, out["prev_from"], out["next_from"])
			}
		}},
		{name: "page from 1", method: "GET", path: "/admin/api/audit?from=1&limit=2", token: auditAdminToken, status: 200, check: func(t *testing.T, out map[string]any) {
			if got := auditSeqs(out); fmt.Sprint(got) != "[1 2]" || out["next_from"] != float64(3) || out["prev_from"] != nil {
				t.Errorf("got seqs %v next %v prev %v; want [1 2], next 3, no prev", got, out["next_from"], out["prev_from"])
			}
			r := out["records"].([]any)[0].(map[string]any)
			body, _ := r["body"].(map[string]any)
			if r["hash"] != recs[0].Hash || body["action"] != "order.created" || body["user"] != "oAlice" || body["provider"] != "fake" || r["text"] != nil {
				t.Errorf("record 1: got %v", r)
			}
		}},
		{name: "with texts", method: "GET", path: "/admin/api/audit?from=2&text=1", token: auditAdminToken, status: 200, check: func(t *testing.T, out map[string]any) {
			r := out["records"].([]any)[0].(map[string]any)
			if r["text"] != `[{"role":"user","content":"buy 2"}]` {
				t.Errorf("text of record 2: got %v", r["text"])
			}
		}},
		{name: "bad from", method: "GET", path: "/admin/api/audit?from=0", token: auditAdminToken, status: 400},
		{name: "bad limit", method: "GET", path: "/admin/api/audit?limit=100000", token: auditAdminToken, status: 400},
		// A misspelt or repeated parameter is refused, as by the other admin
		// lists, not read as absent: ?text=yes answered without the texts,
		// and the orders' ?before= cursor the latest page again.
		{name: "text neither 1, true, 0 nor false", method: "GET", path: "/admin/api/audit?from=2&text=yes", token: auditAdminToken, status: 400, check: wantAdminError("text must be 1, true, 0 or false")},
		{name: "without texts", method: "GET", path: "/admin/api/audit?from=2&text=false", token: auditAdminToken, status: 200, check: func(t *testing.T, out map[string]any) {
			if r := out["records"].([]any)[0].(map[string]any); r["text"] != nil {
				t.Errorf("text of record 2 with text=false: got %v; want none", r["text"])
			}
		}},
		{name: "unknown parameter", method: "GET", path: "/admin/api/audit?before=2", token: auditAdminToken, status: 400, check: wantAdminError(`unknown query parameter "before"; /admin/api/audit takes limit, from, text`)},
		{name: "parameter given twice", method: "GET", path: "/admin/api/audit?from=1&from=3", token: auditAdminToken, status: 400, check: wantAdminError(`"from" is given more than once`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := auditAdminDo(t, c.method, base+c.path, c.token)
			if status != c.status {
				t.Fatalf("status: got %d %v; want %d", status, out, c.status)
			}
			if c.check != nil {
				c.check(t, out)
			}
		})
	}

	t.Run("erase keeps the chain verifiable", func(t *testing.T) {
		status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/oAlice", auditAdminToken)
		if status != 200 || out["erased"] != float64(2) {
			t.Fatalf("erase: %d %v; want 200 and 2 erased", status, out)
		}
		_, out = auditAdminDo(t, "GET", base+"/admin/api/audit?from=1&text=1", auditAdminToken)
		var got []string
		for _, r := range out["records"].([]any) {
			m := r.(map[string]any)
			got = append(got, fmt.Sprintf("%v:%v", m["text"] != nil, m["text_erased"] == true))
		}
		// The fourth record is the erasure's own (audit.text_erased), with no text.
		if strings.Join(got, " ") != "false:true true:false false:true false:false" {
			t.Errorf("texts (kept:erased) after erasing oAlice: %v", got)
		}
		res, err := audit.Verify(context.Background(), st, audit.VerifyOptions{Texts: true, Head: &store.AuditHead{Seq: 3, Hash: recs[2].Hash}})
		if err != nil || res.TextsGone != 2 || res.TextsChecked != 1 {
			t.Errorf("verify after erase: %+v %v", res, err)
		}
	})
}

// TestAdminAuditOlderPageEndsBeforeFrom: prev_from and prev_limit name the
// page just before a page's first record, so walking back from any page,
// at any page size, shows every older record once, never one of the page
// it came from. A from past the head is read as the head's next record (an
// empty page whose older page is the newest records), whatever its size.
func TestAdminAuditOlderPageEndsBeforeFrom(t *testing.T) {
	base, _, _ := auditAdmin(t) // records 1..3
	get := func(t *testing.T, q string) map[string]any {
		t.Helper()
		status, out := auditAdminDo(t, "GET", base+"/admin/api/audit?"+q, auditAdminToken)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %v", q, status, out)
		}
		return out
	}
	for _, limit := range []int{1, 2, 3, 5} {
		for _, from := range []string{"", "1", "2", "3", "4", "10", "9223372036854775808", "18446744073709551615"} {
			t.Run(fmt.Sprintf("from %q limit %d", from, limit), func(t *testing.T) {
				q := fmt.Sprintf("limit=%d", limit)
				if from != "" {
					q += "&from=" + from
				}
				out := get(t, q)
				seen := auditSeqs(out)
				for page := 0; out["prev_from"] != nil; page++ {
					if page > 3 {
						t.Fatalf("no end after %d older pages: %v", page, seen)
					}
					pf, pl := out["prev_from"].(float64), out["prev_limit"]
					first := 4.0 // the head's next, for an empty page
					if len(seen) > 0 {
						first = float64(seen[0])
					}
					if pl == nil || pf+pl.(float64) != first || pl.(float64) > float64(limit) {
						t.Fatalf("before %v: prev_from %v prev_limit %v; want a page of at most %d ending at %v", seen, pf, pl, limit, first-1)
					}
					out = get(t, fmt.Sprintf("from=%d&limit=%d", int(pf), int(pl.(float64))))
					seen = append(auditSeqs(out), seen...)
				}
				if _, ok := out["prev_limit"]; ok {
					t.Errorf("prev_limit without prev_from: %v", out)
				}
				end := 3 // the latest page, and an empty one past the head, end at the head
				if n, err := strconv.Atoi(from); err == nil && n <= 3 {
					end = min(n-1+limit, 3) // from on, up to limit
				}
				if got, want := fmt.Sprint(seen), fmt.Sprint(seqsTo(end)); got != want {
					t.Errorf("walked back to %s; want %s", got, want)
				}
			})
		}
	}
}

// seqsTo is 1..n.
func seqsTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

// TestAdminAuditEraseNamesTheClient: with several clients an erasure must
// name its client (an OpenID is per app: the same string under another
// client is another user), erases that client's texts only, and erases
// under every client only when asked with client=*. A client named twice,
// or a parameter it does not take, is refused: ?client=a&client=b erased
// under a alone, answered 200 as if both had been.
func TestAdminAuditEraseNamesTheClient(t *testing.T) {
	base, st, _ := auditAdmin(t, func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{Name: "shop-two", Key: "sk-shop-two-0123456789abcdef"})
	})
	kept := func() int {
		n := 0
		for seq := uint64(1); seq <= 3; seq++ {
			if _, err := st.GetAuditText(context.Background(), seq); err == nil {
				n++
			}
		}
		return n
	}
	cases := []struct {
		query  string
		status int
		erased float64
		kept   int
	}{
		{"", 400, 0, 3},
		{"?client=shop-nobody", 200, 0, 3}, // listed as unconfigured (below)
		{"?client=shop-two", 200, 0, 3},
		// Two clients named, or a parameter the erasure does not take:
		// refused, erasing nothing, not read as the first client alone
		// (shop-bot's texts kept, with 200) or as an erasure as asked.
		{"?client=shop-two&client=shop-bot", 400, 0, 3},
		{"?client=shop-bot&dry_run=1", 400, 0, 3},
		{"?client=shop-bot", 200, 2, 1},
		{"?client=*", 200, 0, 1},
	}
	for _, c := range cases {
		status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/oAlice"+c.query, auditAdminToken)
		if status != c.status || (status == 200 && out["erased"] != c.erased) {
			t.Errorf("erase%s: %d %v; want %d, %v erased", c.query, status, out, c.status, c.erased)
		}
		if got := kept(); got != c.kept {
			t.Errorf("after erase%s: %d texts kept; want %d", c.query, got, c.kept)
		}
	}
	if status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/oBob?client=*", auditAdminToken); status != 200 || out["erased"] != float64(1) {
		t.Errorf("erase oBob under every client: %d %v; want 1 erased", status, out)
	}
	if _, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/oAlice?client=shop-nobody", auditAdminToken); fmt.Sprint(out["unconfigured_clients"]) != "[shop-nobody]" {
		t.Errorf("a misspelt client: %v; want it listed as unconfigured", out)
	}
}

// TestAdminAuditEraseUnderARemovedClient: texts written under a client
// since renamed or removed stay erasable by its old name for as long as
// they are kept.
func TestAdminAuditEraseUnderARemovedClient(t *testing.T) {
	base, st, _ := auditAdmin(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].Name == "shop-bot" {
				c.Clients[i].Name = "shop-bot-v2"
			}
		}
	})
	status, out := auditAdminDo(t, "DELETE", base+"/admin/api/audit/texts/oAlice?client=shop-bot", auditAdminToken)
	if status != 200 || out["erased"] != float64(2) {
		t.Errorf("erase under the old name: %d %v; want 2 erased", status, out)
	}
	for _, seq := range []uint64{1, 3} {
		if txt, err := st.GetAuditText(context.Background(), seq); err == nil {
			t.Errorf("oAlice's text %d is still kept: %s", seq, txt)
		}
	}
}

// TestAdminAuditBodiesAsHashed: GET /admin/api/audit serves the records'
// bodies as hashed, so that sha256 of each body as served is its hash (an
// auditor checks the chain from the API's answer), also when a value in it
// holds a character an HTML-escaping JSON encoder rewrites ('&', '<', '>'
// in an operator's reason) and with the conversation texts.
func TestAdminAuditBodiesAsHashed(t *testing.T) {
	cases := []struct {
		name, reason string
	}{
		{"plain", "over budget"},
		{"ampersand", "R&D budget"},
		{"angle brackets", "budget <frozen>"},
		{"all three", "R&D budget <frozen> -> ask again"},
		{"not ASCII", "预算冻结 & <暂停>"},
	}
	var acts []auditAct
	for i, tc := range cases {
		acts = append(acts, auditAct{audit.Action{Time: time.Now(), Name: "order.rejected", Cause: "reject", Client: "shop-bot", User: "oAlice",
			OrderNo: fmt.Sprintf("PG%d", i+1), AmountFen: 99800, Reason: tc.reason},
			&payments.Turn{Messages: []byte(`[{"role":"user","content":"R&D <plan>"}]`), Provider: "fake", Model: "vendor/upstream-model"}})
	}
	base, _, _ := auditAdminOf(t, acts)
	for _, query := range []string{"", "?text=1"} {
		req, err := http.NewRequest("GET", base+"/admin/api/audit"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+auditAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Records []struct {
				Seq  uint64          `json:"seq"`
				Hash string          `json:"hash"`
				Body json.RawMessage `json:"body"`
			} `json:"records"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) != len(cases) {
			t.Fatalf("GET /admin/api/audit%s: %d records; want %d", query, len(out.Records), len(cases))
		}
		for i, tc := range cases {
			t.Run(tc.name+query, func(t *testing.T) {
				r := out.Records[i]
				if got := audit.Hash(r.Body); got != r.Hash {
					t.Errorf("record %d: sha256 of the body as served %s; its hash %s; body served: %s", r.Seq, got, r.Hash, r.Body)
				}
			})
		}
	}
}

// wantAdminError checks an admin error answer's text.
func wantAdminError(msg string) func(t *testing.T, out map[string]any) {
	return func(t *testing.T, out map[string]any) {
		t.Helper()
		if out["error"] != msg {
			t.Errorf("error: got %v; want %q", out["error"], msg)
		}
	}
}
