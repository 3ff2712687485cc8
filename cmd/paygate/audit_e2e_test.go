package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/payments/audit"
	"github.com/paygate/paygate/store"
)

// TestPurchaseIsAudited: a purchase through the binary's application leaves
// its order's transitions on the audit chain, which verifies; the head is
// served on the admin listener and in paygate_audit_head_seq.
func TestPurchaseIsAudited(t *testing.T) {
	const token = "adm-e2e-audit-7c41"
	up := newScriptedProvider(t, purchaseScript)
	url, a := paymentApp(t, up.URL, "admin: {token: "+token+"}\n")
	_, err := userClient(url).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Temperature: 0.3,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "I want premium for a month"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The app's worker runs on its own; draining here makes the test wait
	// for it deterministically.
	if _, err := a.audit.worker.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(a.adminHandler())
	t.Cleanup(admin.Close)
	get := func(path string, v any) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, admin.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if s, ok := v.(*string); ok {
			b, _ := io.ReadAll(resp.Body)
			*s = string(b)
		} else if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode
	}
	var head struct {
		Seq  uint64 `json:"seq"`
		Hash string `json:"hash"`
	}
	if code := get("/admin/api/audit/head", &head); code != 200 || head.Seq != 2 {
		t.Fatalf("head: %d %+v; want 200 and record 2 (created, awaiting payment)", code, head)
	}
	var page struct {
		Records []audit.Entry `json:"records"`
	}
	if code := get("/admin/api/audit?from=1", &page); code != 200 || len(page.Records) != 2 {
		t.Fatalf("records: %d %d", code, len(page.Records))
	}
	for i, want := range []string{"order.created", "order.awaiting_payment"} {
		r, err := audit.Decode(page.Records[i].Body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Name != want || r.Client != "bot" || r.User != testOpenID || r.SKU != "premium-monthly" || r.AmountFen != 4999 {
			t.Errorf("record %d: got %s client %s user %s sku %s amount %d; want %s by bot for %s, 4999 fen",
				i+1, r.Name, r.Client, r.User, r.SKU, r.AmountFen, want, testOpenID)
		}
		// The turn that caused it: who answered, with which parameters, and
		// the hash of what the model saw (the text itself is kept beside).
		if r.Provider != "fake" || r.Model != "openai/gpt-4o-2024" || r.TextSHA256 == "" || r.TextBytes == 0 {
			t.Errorf("record %d: provider %q model %q text %q (%d bytes); want the turn attached", i+1, r.Provider, r.Model, r.TextSHA256, r.TextBytes)
		}
		if r.Params["temperature"] != json.Number("0.3") {
			t.Errorf("record %d: params %v; want the turn's temperature 0.3", i+1, r.Params)
		}
		text, err := a.store.GetAuditText(ctx, r.Seq)
		if err != nil || audit.TextHash(text) != r.TextSHA256 || !strings.Contains(string(text), "I want premium for a month") {
			t.Errorf("record %d: kept text %q, %v; want the conversation, matching its hash", i+1, text, err)
		}
	}
	var metrics string
	get("/metrics", &metrics)
	if !strings.Contains(metrics, "paygate_audit_head_seq 2\n") {
		t.Errorf("metrics lack paygate_audit_head_seq 2")
	}
	if _, err := audit.Verify(ctx, a.store, audit.VerifyOptions{Head: &store.AuditHead{Seq: head.Seq, Hash: head.Hash}}); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// TestAuditParamsAreThoseSentUpstream: the audit record of a payment states
// the sampling parameters of the call that made it. It took them from the
// bot's request, so with a provider whose drop_fields remove temperature
// and seed it said temperature=0.3, seed=7, which the model never received.
// They are now left out for the provider that answered, and only for it: a
// strict provider tried first and failed over does not remove them.
func TestAuditParamsAreThoseSentUpstream(t *testing.T) {
	var tried atomic.Int64
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tried.Add(1)
		http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	cases := []struct {
		name      string
		providers func(up string) string
		want      bool // temperature and seed recorded
	}{
		{name: "the answering provider drops them", providers: func(up string) string {
			return `
  - {name: fake, base_url: "` + up + `/v1", api_key: sk-upstream-secret, drop_fields: [temperature, seed]}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}`
		}},
		{name: "a provider that drops them failed over", want: true, providers: func(up string) string {
			return `
  - {name: strict, base_url: "` + down.URL + `/v1", api_key: sk-upstream-secret, drop_fields: [temperature, seed]}
  - {name: fake, base_url: "` + up + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: strict, model: openai/gpt-4o}, {provider: fake, model: openai/gpt-4o}]}`
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newScriptedProvider(t, purchaseScript)
			src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:` + c.providers(up.URL) + `
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
			url, a := serveConfig(t, src, io.Discard)
			seed := 7
			_, err := userClient(url).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
				Model: "gpt-4o", Temperature: 0.3, Seed: &seed,
				Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "I want premium for a month"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.want && tried.Load() == 0 {
				t.Fatal("setup: the strict provider was never tried")
			}
			first := up.requests()[0]
			if got := gjson.Get(first, "temperature").Exists() && gjson.Get(first, "seed").Exists(); got != c.want {
				t.Fatalf("setup: the answering upstream got temperature and seed: %v; want %v (%s)", got, c.want, first)
			}
			ctx := context.Background()
			if _, err := a.audit.worker.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			recs, err := a.store.ReadAudit(ctx, 1, 10)
			if err != nil || len(recs) == 0 {
				t.Fatalf("read the chain: %d records, %v", len(recs), err)
			}
			for _, rec := range recs {
				r, err := audit.Decode(rec.Body)
				if err != nil {
					t.Fatal(err)
				}
				for f, want := range map[string]json.Number{"temperature": "0.3", "seed": "7"} {
					got, ok := r.Params[f]
					switch {
					case c.want && got != want:
						t.Errorf("record %d (%s): %s=%v; want %s, as sent upstream", r.Seq, r.Name, f, got, want)
					case !c.want && ok:
						t.Errorf("record %d (%s) says %s=%v, but the upstream call that made the payment was sent without it (drop_fields)", r.Seq, r.Name, f, got)
					}
				}
			}
		})
	}
}
