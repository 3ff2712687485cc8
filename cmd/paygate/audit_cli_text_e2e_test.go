package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store/testdrivers"
)

// trickyText is a conversation line an export must carry exactly: quotes,
// a backslash, line breaks, commas, HTML's specials, CJK, an emoji and the
// line separators JavaScript reads as line ends.
const trickyText = "我要 \"premium\", 一个月\n第二行\r\n<b>&amp;</b> \\ tab\there 🙂 \u2028sep\u2029 end"

// TestAuditCLIOnTheAppsStore: the chain the binary's application wrote,
// with a conversation text holding quotes, line breaks, commas and
// non-ASCII, is exported by `paygate audit export -text` as JSON Lines
// whose bodies hash to their records and whose texts are the conversation
// byte for byte, and verifies with `paygate audit verify -text`; once the
// user's texts are erased through the admin API the chain still verifies,
// the export marks them erased, and the file, closed, holds them no more.
func TestAuditCLIOnTheAppsStore(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) { testAuditCLIOnTheAppsStore(t, driver) })
	}
}

func testAuditCLIOnTheAppsStore(t *testing.T, driver string) {
	const token = "adm-e2e-audit-cli-5d2e"
	up := newScriptedProvider(t, purchaseScript)
	place := testdrivers.NewPlace(t, driver, nil)
	dbPath := place.Path
	storeYAML := `store: {path: "` + dbPath + `"}`
	if driver == "redis" {
		storeYAML = `store: {driver: redis, redis: {addrs: ["` + testdrivers.RedisAddr() + `"], key_prefix: "` + place.Prefix + `"}}`
	}
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
` + storeYAML + `
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
admin: {token: ` + token + `}
`
	url, a := serveConfig(t, src, io.Discard)
	_, err := userClient(url).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: trickyText}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.audit.worker.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	cfgPath := filepath.Join(t.TempDir(), "paygate.yaml")
	writeFile(t, cfgPath, src)

	// export reads what verify checks: every line is one record whose body
	// hashes to its hash, linked to the line before, its text the
	// conversation as the bot sent it.
	export := func() []audit.Entry {
		t.Helper()
		a.close() // the embedded file allows one process: serve's is stopped
		code, out, errOut := runAudit("export", "-config", cfgPath, "-text")
		if code != 0 {
			t.Fatalf("export: exit %d: %s", code, errOut)
		}
		var entries []audit.Entry
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 1<<20)
		prev := ""
		for sc.Scan() {
			var e audit.Entry
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("line %d is not one JSON record: %v: %s", len(entries)+1, err, sc.Bytes())
			}
			if audit.Hash(e.Body) != e.Hash || e.PrevHash != prev || e.Seq != uint64(len(entries)+1) {
				t.Errorf("line %d: seq %d, body hash %s, hash %s, prev %s; want seq %d linked to %q and hashing to its hash",
					len(entries)+1, e.Seq, audit.Hash(e.Body), e.Hash, e.PrevHash, len(entries)+1, prev)
			}
			prev = e.Hash
			entries = append(entries, e)
		}
		if len(entries) < 2 {
			t.Fatalf("export: %d records; want the order's created and awaiting payment", len(entries))
		}
		return entries
	}
	entries := export()
	var kept []string // the texts as kept, to look for once erased
	for _, e := range entries {
		b, err := audit.Decode(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		if b.TextSHA256 == "" {
			continue
		}
		if e.Text == nil || audit.TextHash([]byte(*e.Text)) != b.TextSHA256 {
			got := "none"
			if e.Text != nil {
				got = strconv.Quote(*e.Text)
			}
			t.Errorf("record %d: text %s base64 %q; want the kept text, hashing to %s", e.Seq, got, e.TextBase64, b.TextSHA256)
			continue
		}
		kept = append(kept, *e.Text)
		var msgs []openai.ChatCompletionMessage
		if err := json.Unmarshal([]byte(*e.Text), &msgs); err != nil || len(msgs) == 0 || msgs[0].Content != trickyText {
			t.Errorf("record %d: text %q (%v); want the conversation %q", e.Seq, *e.Text, err, trickyText)
		}
	}
	if code, out, errOut := runAudit("verify", "-config", cfgPath, "-text"); code != 0 || !strings.Contains(out, "audit chain ok") {
		t.Fatalf("verify -text: exit %d %q %q", code, out, errOut)
	}
	holds := func() bool {
		t.Helper()
		var raw []byte
		if driver == "redis" {
			raw = redisValues(t, place.Prefix)
		} else {
			var err error
			if raw, err = os.ReadFile(dbPath); err != nil {
				t.Fatal(err)
			}
		}
		// The store keeps a text as JSON's base64 of its bytes.
		for _, text := range kept {
			for _, form := range []string{text, base64.StdEncoding.EncodeToString([]byte(text))} {
				if bytes.Contains(raw, []byte(form)) {
					return true
				}
			}
		}
		return false
	}
	if !holds() {
		t.Fatal("the store file does not hold the kept text in any form looked for: the check after the erasure would prove nothing")
	}

	// The erasure, through a second run of the application on the file.
	url, a = serveConfig(t, src, io.Discard)
	_ = url
	admin.Config.Handler = a.adminHandler()
	if status, e := httpCall(t, http.MethodDelete, admin.URL+"/admin/api/audit/texts/"+testOpenID, "Bearer "+token, ""); status != http.StatusOK || e.Get("erased").Int() == 0 {
		t.Fatalf("erase: %d %s", status, e.Raw)
	}
	if _, err := a.audit.worker.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	entries = export()
	for _, e := range entries {
		if e.Text != nil || e.TextBase64 != "" {
			t.Errorf("record %d after the erasure: text still exported", e.Seq)
		}
	}
	if b, _ := audit.Decode(entries[len(entries)-1].Body); b.Name != audit.ActionTextErased {
		t.Errorf("last record %s; want the erasure's", entries[len(entries)-1].Body)
	}
	if code, out, errOut := runAudit("verify", "-config", cfgPath, "-text"); code != 0 || !strings.Contains(out, "erased or expired") {
		t.Fatalf("verify -text after the erasure: exit %d %q %q", code, out, errOut)
	}
	if holds() {
		t.Error("the store still holds the erased conversation")
	}
}

// redisValues is every value under prefix, end to end: what a copy of the
// deployment's Redis would hold.
func redisValues(t *testing.T, prefix string) []byte {
	t.Helper()
	c, ctx := redisClient(t), context.Background()
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, k := range keys {
		var vals []string
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			vals = []string{c.Get(ctx, k).Val()}
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "list":
			vals = c.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = c.SMembers(ctx, k).Val()
		case "zset":
			vals = c.ZRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range c.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					vals = append(vals, f, fmt.Sprint(v))
				}
			}
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
		out.WriteString(k + "\n")
		for _, v := range vals {
			out.WriteString(v + "\n")
		}
	}
	return out.Bytes()
}
