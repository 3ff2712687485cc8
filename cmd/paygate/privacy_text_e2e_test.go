package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestOpenIDInTextReachesNoProvider: a bot puts the end user's OpenID
// where no identity member is: the name of a message, its system prompt
// ("You are serving user o…"), a content part, its own tool call's
// arguments and the tool's result in the history, an embedding's input,
// a Response's instructions, and the session and headers of its own. Under
// each privacy.forward_user mode and on each store driver (the hash key
// generated once and kept in the store), a purchase turn streamed and not,
// a plain turn (a visitor named by the body's user only) streamed and not,
// and the /v1 paths are played; every upstream request (URL, headers,
// body) is scanned for the OpenID. Under hash each place holds the user's
// hash instead, the one "user" carries; under keep the operator chose to
// send the OpenID, and it is there as the bot wrote it.
func TestOpenIDInTextReachesNoProvider(t *testing.T) {
	const openID = "oTXT4-openid_7a8b9c0d1e2f3g4" // 28 bytes, as WeChat's
	for _, driver := range testdrivers.Names(t) {
		for _, mode := range []string{"hash", "drop", "keep"} {
			t.Run(driver+"/"+mode, func(t *testing.T) {
				var (
					mu   sync.Mutex
					seen []string // each upstream request: method URL, headers, body
					body [][]byte
				)
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					h := r.Header.Clone()
					h.Del("Authorization")
					mu.Lock()
					seen = append(seen, fmt.Sprintf("%s %s\n%v\n%s", r.Method, r.URL, h, b))
					body = append(body, b)
					mu.Unlock()
					switch {
					case strings.HasSuffix(r.URL.Path, "/chat/completions"):
						// The bot's history has a tool message of its own: the
						// round after the payment call is told by its call id.
						var round scriptRound
						switch {
						case !strings.Contains(string(b), "premium"): // a plain turn
							round = purchaseScript(`"role":"tool"`)
						case strings.Contains(string(b), "call_pg_1_0"): // create_order's, under paygate's id
							round = purchaseScript(`"role":"tool"`)
						default:
							round = purchaseScript("")
						}
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
					default:
						w.Header().Set("Content-Type", "application/json")
						_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"m","output":[],"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}`)
					}
				}))
				defer up.Close()
				storeYAML := `store: {path: "` + t.TempDir() + `/paygate.db"}`
				if driver == "redis" {
					p := testdrivers.NewPlace(t, driver, nil)
					storeYAML = `store: {driver: redis, redis: {addrs: ["` + testdrivers.RedisAddr() + `"], key_prefix: "` + p.Prefix + `"}}`
				}
				src := `
log: {level: debug}
clients: [{name: bot, key: ` + e2eClientKey + `}]
` + storeYAML + `
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
  - {name: cheap, targets: [{provider: fake, model: vendor/cheap-mini}]}
privacy: {forward_user: ` + mode + `}
payments:
  followup_model: cheap
  budget: {max_payment_calls: 4}
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
				logs := &logtest.Buffer{}
				base, _ := serveConfig(t, src, logs)

				post := func(path, payload string, header map[string]string) string {
					t.Helper()
					req, _ := http.NewRequest("POST", base+path, strings.NewReader(payload))
					req.Header.Set("Authorization", "Bearer "+e2eClientKey)
					req.Header.Set("Content-Type", "application/json")
					for k, v := range header {
						req.Header[http.CanonicalHeaderKey(k)] = []string{v}
					}
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
				// The history a bot keeps: its prompt names the user, the
				// user's messages carry the OpenID as their name, its own
				// tool looked the user up by the OpenID.
				history := `"messages":[` +
					`{"role":"system","content":"You are serving user ` + openID + `. Greet them."},` +
					`{"role":"user","name":"` + openID + `","content":[{"type":"text","text":"my id is ` + openID + `"}]},` +
					`{"role":"assistant","content":null,"tool_calls":[{"id":"call_bot1","type":"function","function":{"name":"lookup_profile","arguments":"{\"openid\":\"` + openID + `\"}"}}]},` +
					`{"role":"tool","tool_call_id":"call_bot1","content":"{\"openid\":\"` + openID + `\",\"tier\":\"free\"}"},` +
					`{"role":"user","name":"` + openID + `","content":"one month of premium please"}],` +
					`"tools":[{"type":"function","function":{"name":"lookup_profile","parameters":{"type":"object","properties":{"openid":{"type":"string"}}}}}]`
				headers := map[string]string{
					"X-WeChat-OpenID":   openID,
					"X-Paygate-Session": "chat-" + openID,
					"X-End-User":        openID,
				}
				var purchases []string
				purchases = append(purchases, post("/v1/chat/completions", `{"model":"gpt-4o",`+history+`}`, headers))
				purchases = append(purchases, post("/v1/chat/completions", `{"model":"gpt-4o","stream":true,`+history+`}`, headers))
				// A visitor the bot's OAuth did not sign in: no payments, the
				// body's user names the end user toward providers only.
				visitor := map[string]string{"X-WeChat-OpenID": "", "X-End-User": openID}
				plain := `"user":"` + openID + `","messages":[{"role":"system","content":"user ` + openID + `"},{"role":"user","name":"` + openID + `","content":"hi"}]`
				post("/v1/chat/completions", `{"model":"gpt-4o",`+plain+`}`, visitor)
				post("/v1/chat/completions", `{"model":"gpt-4o","stream":true,`+plain+`}`, visitor)
				post("/v1/embeddings", `{"model":"gpt-4o","input":["profile of `+openID+`","x"]}`, headers)
				post("/v1/responses", `{"model":"gpt-4o","instructions":"You serve `+openID+`","input":[{"role":"user","content":"I am `+openID+`"}]}`, headers)
				post("/v1/responses", `{"model":"gpt-4o","user":"`+openID+`","input":"I am `+openID+`"}`, nil)

				for _, p := range purchases {
					sc := bufio.NewScanner(strings.NewReader(p))
					sc.Buffer(nil, 1<<20)
					ordered := false
					for sc.Scan() {
						ordered = ordered || strings.Contains(sc.Text(), `"order_created"`)
					}
					if !ordered {
						t.Errorf("the purchase turn made no order:\n%s", p)
					}
				}
				if strings.Contains(logs.String(), openID) {
					t.Errorf("the log carries the OpenID:\n%s", logs.String())
				}
				mu.Lock()
				defer mu.Unlock()
				if len(seen) < 9 {
					t.Fatalf("%d upstream requests; want the purchase turns' two rounds each, the plain turns and every path", len(seen))
				}
				userHash := ""
				for i, s := range seen {
					if mode != "keep" && strings.Contains(s, openID) {
						t.Errorf("upstream request %d carries the OpenID:\n%s", i, s)
					}
					if u := gjson.GetBytes(body[i], "user"); u.Exists() && mode == "hash" {
						if userHash != "" && u.Str != userHash {
							t.Errorf("upstream request %d: user %s; another request had %s", i, u.Str, userHash)
						}
						userHash = u.Str
					}
				}
				if !strings.HasPrefix(userHash, "u_") && mode == "hash" {
					t.Fatalf("no upstream request had the user's hash as user")
				}
				// Where the bot put the OpenID, the provider reads what
				// the mode says: the hash "user" carries (hash), or the
				// OpenID itself (keep).
				want := map[string]string{"hash": userHash, "keep": openID}[mode]
				for i, b := range body {
					if !strings.HasSuffix(strings.SplitN(seen[i], "\n", 2)[0], "/chat/completions") {
						continue
					}
					if sys := gjson.GetBytes(b, "messages.0.content").Str; want != "" && !strings.Contains(sys, want) {
						t.Errorf("upstream request %d: system prompt %q; want it to name %s", i, sys, want)
					}
					if name := gjson.GetBytes(b, "messages.1.name").Str; want != "" && name != want {
						t.Errorf("upstream request %d: the user message's name %q; want %s", i, name, want)
					}
				}
			})
		}
	}
}
