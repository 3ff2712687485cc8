package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging/logtest"
)

// TestOpenIDOnNoUpstreamPath plays, under each privacy.forward_user mode, a
// streamed and a non-stream purchase turn (its payment round answered by
// payments.followup_model), a turn after them (the state message), and the other /v1
// paths a bot uses (embeddings, the Responses API, legacy completions), the
// end user's OpenID given in the header and in every identity member of
// the body; it scans every upstream request (URL, headers, body) for the
// OpenID and for the payment parameters the bot was handed (the model has
// no use for the prepay id or the pay signature, and a provider that logs
// prompts must not hold what opens the payment sheet), and checks what
// "user" carried in each mode, and that the debug log names no OpenID.
func TestOpenIDOnNoUpstreamPath(t *testing.T) {
	const (
		openID  = "oPRIV-openid-5e6f7a8b9c"
		hashKey = "hash-key-priv-0123456789abcdef"
	)
	mac := hmac.New(sha256.New, []byte(hashKey))
	mac.Write([]byte("bot\x00" + openID))
	wantHash := "u_" + hex.EncodeToString(mac.Sum(nil)[:16])

	for _, mode := range []string{"hash", "drop", "keep"} {
		t.Run(mode, func(t *testing.T) {
			var (
				mu   sync.Mutex
				seen []string // each upstream request: method URL, headers, body
				user []gjson.Result
			)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				h := r.Header.Clone()
				h.Del("Authorization")
				mu.Lock()
				seen = append(seen, fmt.Sprintf("%s %s\n%v\n%s", r.Method, r.URL, h, b))
				user = append(user, gjson.GetBytes(b, "user"))
				mu.Unlock()
				switch {
				case strings.HasSuffix(r.URL.Path, "/chat/completions"):
					round := purchaseScript(string(b))
					if !gjson.GetBytes(b, "stream").Bool() {
						w.Header().Set("Content-Type", "application/json")
						_, _ = io.WriteString(w, round.whole)
						return
					}
					w.Header().Set("Content-Type", "text/event-stream")
					for _, c := range round.chunks {
						_, _ = io.WriteString(w, "data: "+c+"\n\n")
					}
					_, _ = io.WriteString(w, "data: [DONE]\n\n")
				case strings.HasSuffix(r.URL.Path, "/embeddings"):
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)
				case strings.HasSuffix(r.URL.Path, "/responses"):
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"m","output":[],"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}`)
				default:
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"id":"cmpl-1","object":"text_completion","model":"m","choices":[{"index":0,"text":"hi","finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
				}
			}))
			defer up.Close()
			src := `
log: {level: debug}
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
  - {name: cheap, targets: [{provider: fake, model: vendor/cheap-mini}]}
privacy: {forward_user: ` + mode + `, hash_key: ` + hashKey + `}
payments:
  followup_model: cheap
  budget: {max_payment_calls: 4}
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
			logs := &logtest.Buffer{}
			base, _ := serveConfig(t, src, logs)

			ids := `"user":"` + openID + `","safety_identifier":"` + openID + `","prompt_cache_key":"` + openID + `","metadata":{"wechat_openid":"` + openID + `","conv":"wx:` + openID + `:1","wx:` + openID + `":"k","bot":"b1"}`
			var handed []string // the payment parameters the bot received
			post := func(path, body string) string {
				t.Helper()
				req, _ := http.NewRequest("POST", base+path+"?user="+openID, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e2eClientKey)
				req.Header.Set("X-WeChat-OpenID", openID)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
				}
				return string(b)
			}
			collect := func(doc string) {
				for _, k := range []string{"package", "paySign", "nonceStr"} {
					gjson.Get(doc, "paygate.actions.#.request_payment."+k).ForEach(func(_, v gjson.Result) bool {
						handed = append(handed, strings.TrimPrefix(v.Str, "prepay_id="))
						return true
					})
				}
			}
			collect(post("/v1/chat/completions", `{"model":"gpt-4o",`+ids+`,"messages":[{"role":"user","content":"one month please"}]}`))
			stream := post("/v1/chat/completions", `{"model":"gpt-4o","stream":true,`+ids+`,"messages":[{"role":"user","content":"one month please, again"}]}`)
			sc := bufio.NewScanner(strings.NewReader(stream))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && d != "[DONE]" {
					collect(d)
				}
			}
			post("/v1/chat/completions", `{"model":"gpt-4o",`+ids+`,"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi"},{"role":"user","content":"what did I buy?"}]}`)
			post("/v1/embeddings", `{"model":"gpt-4o","input":"x",`+ids+`}`)
			post("/v1/responses", `{"model":"gpt-4o","input":"x",`+ids+`}`)
			post("/v1/completions", `{"model":"gpt-4o","prompt":"x",`+ids+`}`)

			// The log, at debug, names no user by the OpenID either.
			if strings.Contains(logs.String(), openID) {
				t.Errorf("the log carries the OpenID:\n%s", logs.String())
			}
			if len(handed) == 0 {
				t.Fatal("the bot was handed no payment parameters: the purchase did not run")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) < 7 {
				t.Fatalf("%d upstream requests; want the two purchase turns' rounds and every path", len(seen))
			}
			for i, s := range seen {
				if mode != "keep" && strings.Contains(s, openID) {
					t.Errorf("upstream request %d carries the OpenID:\n%s", i, s)
				}
				for _, p := range handed {
					if p != "" && strings.Contains(s, p) {
						t.Errorf("upstream request %d carries the payment parameter %q the bot was handed:\n%s", i, p, s)
					}
				}
				switch u := user[i]; mode {
				case "hash":
					if u.Str != wantHash {
						t.Errorf("upstream request %d: user %s; want the keyed hash %s", i, u.Raw, wantHash)
					}
				case "drop":
					if u.Exists() {
						t.Errorf("upstream request %d: user %s; want none under drop", i, u.Raw)
					}
				case "keep": // the scan finds the OpenID where it is
					if u.Str != openID {
						t.Errorf("upstream request %d: user %s; want the OpenID under keep", i, u.Raw)
					}
				}
			}
		})
	}
}
