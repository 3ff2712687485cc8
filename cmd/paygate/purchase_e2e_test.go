package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/proxy/h1/h1test"
)

const testOpenID = "oUser-purchase-0001"

// scriptedProvider answers round n of every turn with rounds[n]: raw SSE
// events when the request streams, a chat.completion otherwise. It records
// every request body.
type scriptedProvider struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

// scriptRound is one upstream answer.
type scriptRound struct {
	chunks []string // chat.completion.chunk JSON objects
	whole  string   // the non-stream chat.completion
}

func newScriptedProvider(t *testing.T, rounds func(body string) scriptRound) *scriptedProvider {
	t.Helper()
	sp := &scriptedProvider{}
	sp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sp.mu.Lock()
		sp.bodies = append(sp.bodies, string(b))
		sp.mu.Unlock()
		round := rounds(string(b))
		if !strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, round.whole)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range round.chunks {
			_, _ = io.WriteString(w, "data: "+c+"\n\n")
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(sp.Close)
	return sp
}

func (sp *scriptedProvider) requests() []string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return append([]string(nil), sp.bodies...)
}

// purchaseScript: the first round says a few words and calls create_order
// with arguments that try to set a price, a user and a notify URL; the round
// after the tool result confirms in words.
func purchaseScript(body string) scriptRound {
	const head = `{"id":"chatcmpl-R","object":"chat.completion.chunk","created":1700000000,"model":"openai/gpt-4o-2024","choices":[`
	if !strings.Contains(body, `"role":"tool"`) {
		args := `{\"sku\":\"premium-monthly\",\"quantity\":1,\"amount\":1,\"price\":\"0.01\",\"openid\":\"oEvil\",\"notify_url\":\"http://evil.example/n\"}`
		return scriptRound{
			chunks: []string{
				strings.Replace(head, "chatcmpl-R", "chatcmpl-R1", 1) + `{"index":0,"delta":{"role":"assistant","content":"Let me set that up. "},"finish_reason":null}]}`,
				strings.Replace(head, "chatcmpl-R", "chatcmpl-R1", 1) + `{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":""}}]},"finish_reason":null}]}`,
				strings.Replace(head, "chatcmpl-R", "chatcmpl-R1", 1) + `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"` + args[:29] + `"}}]},"finish_reason":null}]}`,
				strings.Replace(head, "chatcmpl-R", "chatcmpl-R1", 1) + `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"` + args[29:] + `"}}]},"finish_reason":null}]}`,
				strings.Replace(head, "chatcmpl-R", "chatcmpl-R1", 1) + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
				`{"id":"chatcmpl-R1","object":"chat.completion.chunk","created":1700000000,"model":"openai/gpt-4o-2024","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120}}`,
			},
			whole: `{"id":"chatcmpl-R1","object":"chat.completion","created":1700000000,"model":"openai/gpt-4o-2024","choices":[{"index":0,"message":{"role":"assistant","content":"Let me set that up. ","tool_calls":[{"id":"call_pay1","type":"function","function":{"name":"create_order","arguments":"` + args + `"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120}}`,
		}
	}
	return scriptRound{
		chunks: []string{
			strings.Replace(head, "chatcmpl-R", "chatcmpl-R2", 1) + `{"index":0,"delta":{"role":"assistant","content":"Your order is ready: "},"finish_reason":null}]}`,
			strings.Replace(head, "chatcmpl-R", "chatcmpl-R2", 1) + `{"index":0,"delta":{"content":"tap Pay to finish."},"finish_reason":null}]}`,
			strings.Replace(head, "chatcmpl-R", "chatcmpl-R2", 1) + `{"index":0,"delta":{},"finish_reason":"stop"}]}`,
			`{"id":"chatcmpl-R2","object":"chat.completion.chunk","created":1700000000,"model":"openai/gpt-4o-2024","choices":[],"usage":{"prompt_tokens":150,"completion_tokens":10,"total_tokens":160}}`,
		},
		whole: `{"id":"chatcmpl-R2","object":"chat.completion","created":1700000000,"model":"openai/gpt-4o-2024","choices":[{"index":0,"message":{"role":"assistant","content":"Your order is ready: tap Pay to finish."},"finish_reason":"stop"}],"usage":{"prompt_tokens":150,"completion_tokens":10,"total_tokens":160}}`,
	}
}

// paymentApp serves the binary's application with payments on the
// simulator, its notify route reachable at the served URL.
func paymentApp(t *testing.T, providerURL string, extra string, opts ...appOption) (string, *app) {
	t.Helper()
	return paymentAppLogged(t, providerURL, extra, io.Discard, opts...)
}

// paymentAppLogged is paymentApp with its JSON log written to logOut.
func paymentAppLogged(t *testing.T, providerURL string, extra string, logOut io.Writer, opts ...appOption) (string, *app) {
	t.Helper()
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + providerURL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
  - {name: cheap, targets: [{provider: fake, model: vendor/cheap-mini}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
    - {sku: premium-yearly, name: "Premium tier, 1 year", price: "499.00", max_quantity: 2}
` + extra
	return serveConfig(t, src, logOut, opts...)
}

// serveConfig serves the binary's application for the config text src
// (WeChat Pay simulator on defaults), its notify route reachable at the
// served URL, and returns that URL. logOut receives the JSON log.
func serveConfig(t *testing.T, src string, logOut io.Writer, opts ...appOption) (string, *app) {
	t.Helper()
	srv := h1test.NewUnstartedServer()
	cfg, err := config.Parse([]byte(src), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, logOut, "http://"+srv.Listener.Addr().String()+"/wechatpay/notify", opts...)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	t.Cleanup(a.close)
	srv.Start(a.server.Handler())
	t.Cleanup(srv.Close)
	// A test that closes the app to serve again stops the server first, as
	// serve drains it before closing the app: closed under a handler still
	// at work, the store refused the announcement mark a turn writes after
	// its answer left (TestHashKeyRotationKeepsUserState then saw the first
	// order announced again in the next turn).
	stop := a.stop
	a.stop = func() {
		srv.Close()
		if stop != nil {
			stop()
		}
	}
	return srv.URL, a
}

func userClient(url string) *openai.Client {
	c := openai.DefaultConfig(e2eClientKey)
	c.BaseURL = url + "/v1"
	c.HTTPClient = &http.Client{Transport: headerTransport{"X-WeChat-OpenID": testOpenID}}
	return openai.NewClientWithConfig(c)
}

type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestPurchaseStreamGoOpenAI(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	url, a := paymentApp(t, up.URL, "")
	stream, err := userClient(url).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Stream: true,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "I want premium for a month"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var text strings.Builder
	ids := map[string]bool{}
	roles, finishes := 0, 0
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		ids[c.ID] = true
		if len(c.Choices) == 0 {
			t.Errorf("usage-only chunk reached a client that did not ask for usage")
			continue
		}
		d := c.Choices[0].Delta
		if d.Role != "" {
			roles++
		}
		if len(d.ToolCalls) > 0 {
			t.Errorf("a payment tool call reached the client: %+v", d.ToolCalls)
		}
		text.WriteString(d.Content)
		if c.Choices[0].FinishReason != "" {
			finishes++
			if c.Choices[0].FinishReason != openai.FinishReasonStop {
				t.Errorf("finish %q", c.Choices[0].FinishReason)
			}
		}
	}
	if got, want := text.String(), "Let me set that up. Your order is ready: tap Pay to finish."; got != want {
		t.Errorf("client text %q; want %q", got, want)
	}
	if len(ids) != 1 || !ids["chatcmpl-R1"] || roles != 1 || finishes != 1 {
		t.Errorf("ids %v roles %d finishes %d; want one id, one role delta, one finish", ids, roles, finishes)
	}

	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream saw %d rounds; want 2", len(reqs))
	}
	if !strings.Contains(reqs[0], `"name":"create_order"`) {
		t.Errorf("round 1 did not offer create_order: %s", reqs[0])
	}
	second := reqs[1]
	for _, want := range []string{`"role":"assistant"`, `"tool_call_id":"call_pg_1_0"`, `49.99 CNY`, `awaiting_payment`} {
		if !strings.Contains(second, want) {
			t.Errorf("round 2 request lacks %s: %s", want, second)
		}
	}
	for _, leak := range []string{"paySign", "prepay_id", testOpenID, e2eClientKey} {
		if strings.Contains(reqs[0]+second, leak) {
			t.Errorf("an upstream request contains %q", leak)
		}
	}
	if a.sim.OrderCount() != 1 {
		t.Errorf("simulator has %d orders; want 1", a.sim.OrderCount())
	}
	var orderNo string
	for _, rl := range a.sim.Requests() {
		if rl.Op == "prepay-jsapi" {
			orderNo = rl.OutTradeNo
		}
	}
	tx, ok := a.sim.Order(orderNo)
	if !ok || tx.Amount.Total != 4999 || tx.Payer == nil || tx.Payer.OpenID != testOpenID {
		t.Errorf("simulator order %q: %+v; want the catalog price 4999 and the real user, nothing from the model", orderNo, tx)
	}
	if a.sim.Prepays(orderNo) != 1 {
		t.Errorf("order %q prepays %d; want exactly one", orderNo, a.sim.Prepays(orderNo))
	}
}

func TestPurchaseNonStreamExtension(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	url, _ := paymentApp(t, up.URL, "")
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","messages":[{"role":"user","content":"premium please"}]}`)
	defer resp.Body.Close()
	var out struct {
		ID      string `json:"id"`
		Choices []struct {
			Message struct {
				Content   string `json:"content"`
				ToolCalls []any  `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			TotalTokens int `json:"total_tokens"`
		} `json:"usage"`
		Paygate struct {
			Actions []struct {
				Type           string         `json:"type"`
				Order          map[string]any `json:"order"`
				RequestPayment map[string]any `json:"request_payment"`
			} `json:"actions"`
			Rounds []struct{ Provider, Model string } `json:"rounds"`
		} `json:"paygate"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	// Both rounds' text, as a streaming client reads it.
	if out.ID != "chatcmpl-R1" || out.Choices[0].Message.Content != "Let me set that up. Your order is ready: tap Pay to finish." || len(out.Choices[0].Message.ToolCalls) != 0 {
		t.Errorf("answer %+v", out)
	}
	if out.Usage.TotalTokens != 280 {
		t.Errorf("usage %d; want 280 summed over both rounds", out.Usage.TotalTokens)
	}
	if len(out.Paygate.Actions) != 1 || out.Paygate.Actions[0].Type != "order_created" ||
		out.Paygate.Actions[0].Order["amount_fen"] != float64(4999) || out.Paygate.Actions[0].RequestPayment["paySign"] == nil {
		t.Errorf("paygate actions %+v", out.Paygate.Actions)
	}
	if len(out.Paygate.Rounds) != 2 || out.Paygate.Rounds[0].Provider != "fake" || out.Paygate.Rounds[1].Model != "openai/gpt-4o-2024" {
		t.Errorf("paygate rounds %+v", out.Paygate.Rounds)
	}
}

// nodeChat runs test/node/chat.mjs in mode against the application at url
// as the signed-in testOpenID, with env added to its environment, and
// returns what it printed.
func nodeChat(t *testing.T, url, mode string, env ...string) []byte {
	t.Helper()
	dir, _ := filepath.Abs("../../test/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the Node openai package is missing: run `npm ci --prefix test/node`")
		}
		t.Skip("Node openai package not installed")
	}
	cmd := exec.Command("node", "chat.mjs", mode)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PAYGATE_URL="+url+"/v1", "PAYGATE_KEY="+e2eClientKey, "PAYGATE_MODEL=gpt-4o", "PAYGATE_OPENID="+testOpenID), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v %s", err, out)
	}
	return out
}

// TestPurchaseNodeSDK: the Node openai SDK streams a purchase and reads the
// paygate extension from the final chunk.
func TestPurchaseNodeSDK(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	url, _ := paymentApp(t, up.URL, "")
	out := nodeChat(t, url, "stream")
	var res struct {
		Content string `json:"content"`
		Finish  string `json:"finish"`
		Paygate struct {
			Actions []struct {
				Type  string         `json:"type"`
				Order map[string]any `json:"order"`
			} `json:"actions"`
		} `json:"paygate"`
		ToolCalls []any `json:"toolCalls"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if res.Content != "Let me set that up. Your order is ready: tap Pay to finish." || res.Finish != "stop" || len(res.ToolCalls) != 0 {
		t.Errorf("node saw %+v", res)
	}
	if len(res.Paygate.Actions) != 1 || res.Paygate.Actions[0].Type != "order_created" || res.Paygate.Actions[0].Order["status"] != "awaiting_payment" {
		t.Errorf("node read paygate %+v", res.Paygate)
	}
}

// TestNodeStreamHelperWithoutProviderIDs: a purchase whose first round's
// chunks carry no id reaches the Node SDK's stream helper under one id, the
// paygate object on the completion it assembles. The helper takes a chunk's
// top-level members only from a chunk with an id, and the turn had none: the
// first round's chunks went out as they came and the later rounds' were
// given its empty id, so finalChatCompletion() had no paygate object.
func TestNodeStreamHelperWithoutProviderIDs(t *testing.T) {
	up := newScriptedProvider(t, func(body string) scriptRound {
		head := `{"object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[`
		if !strings.Contains(body, `"role":"tool"`) {
			return scriptRound{chunks: []string{
				head + `{"index":0,"delta":{"role":"assistant","content":"Checking. "},"finish_reason":null}]}`,
				head + `{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":null}]}`,
				head + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
			}}
		}
		withID := `{"id":"chatcmpl-2",` + head[1:]
		return scriptRound{chunks: []string{
			withID + `{"index":0,"delta":{"role":"assistant","content":"Done."},"finish_reason":null}]}`,
			withID + `{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		}}
	})
	url, _ := paymentApp(t, up.URL, "")
	var res struct {
		ID       string   `json:"id"`
		ChunkIDs []string `json:"chunkIds"`
		Content  string   `json:"content"`
		Paygate  struct {
			Actions []struct {
				Type string `json:"type"`
			} `json:"actions"`
		} `json:"paygate"`
	}
	out := nodeChat(t, url, "stream-final")
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if !strings.HasPrefix(res.ID, "chatcmpl-paygate-") || len(res.ChunkIDs) != 1 || res.ChunkIDs[0] != res.ID {
		t.Errorf("completion id %q, chunk ids %q; want one id, paygate's fallback", res.ID, res.ChunkIDs)
	}
	if len(res.Paygate.Actions) != 1 || res.Paygate.Actions[0].Type != "order_created" {
		t.Errorf("finalChatCompletion() paygate %+v; want the order_created action: %s", res.Paygate, out)
	}
}

// TestStreamRoleWhenRoundZeroHasNone: a provider that sends no role with
// the tool-call chunks of a payment round (all held back) leaves the client
// its role delta to get from a later round or from paygate's own chunk:
// exactly one (SPEC 3.6). Every later round's role was removed, so the
// client got none, and the Node SDK's stream helper failed the answer
// ("missing role for choice 0"), its paygate object with it.
func TestStreamRoleWhenRoundZeroHasNone(t *testing.T) {
	const head = `{"id":"chatcmpl-Q","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[`
	call := func(i int, id, name, args string) string {
		return head + fmt.Sprintf(`{"index":0,"delta":{"tool_calls":[{"index":%d,"id":%q,"type":"function","function":{"name":%q,"arguments":%q}}]},"finish_reason":null}]}`, i, id, name, args)
	}
	toolsEnd := head + `{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`
	tests := []struct {
		name       string
		script     func(body string) scriptRound
		wantText   string
		wantAction string // the type of paygate.actions[0], "" for none
	}{
		{
			name: "round 1 has one",
			script: func(body string) scriptRound {
				if !strings.Contains(body, `"role":"tool"`) {
					return scriptRound{chunks: []string{call(0, "call_1", "create_order", `{"sku":"premium-monthly"}`), toolsEnd}}
				}
				return scriptRound{chunks: []string{
					head + `{"index":0,"delta":{"role":"assistant","content":"Tap pay."},"finish_reason":null}]}`,
					head + `{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				}}
			},
			wantText: "Tap pay.", wantAction: "order_created",
		},
		{
			name: "no round has one: the clarification carries it",
			script: func(body string) scriptRound {
				return scriptRound{chunks: []string{call(0, "call_q", "query_order", `{"order_no":"PG-unknown"}`), toolsEnd}}
			},
			wantText: "Could you tell me exactly which plan and how many you want?",
		},
		{
			name: "a mixed round: paygate's finish chunk carries it",
			script: func(body string) scriptRound {
				return scriptRound{chunks: []string{
					call(0, "call_p", "create_order", `{"sku":"premium-monthly"}`),
					call(1, "call_c", "send_receipt", `{}`),
					toolsEnd,
				}}
			},
			wantAction: "order_created",
		},
		{
			name: "round 1 the bot's own call: the provider's finish chunk carries it",
			script: func(body string) scriptRound {
				if !strings.Contains(body, `"role":"tool"`) {
					return scriptRound{chunks: []string{call(0, "call_1", "create_order", `{"sku":"premium-monthly"}`), toolsEnd}}
				}
				return scriptRound{chunks: []string{call(0, "call_c", "send_receipt", `{}`), toolsEnd}}
			},
			wantAction: "order_created",
		},
		{
			name: "one round of the bot's own call",
			script: func(body string) scriptRound {
				return scriptRound{chunks: []string{call(0, "call_c", "send_receipt", `{}`), toolsEnd}}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newScriptedProvider(t, tc.script)
			url, _ := paymentApp(t, up.URL, "")
			stream, err := userClient(url).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
				Model: "gpt-4o", Stream: true,
				Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "buy"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			roles := 0
			for {
				c, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("Recv: %v", err)
				}
				if len(c.Choices) > 0 {
					if c.Choices[0].Delta.Role != "" {
						roles++
					}
					text.WriteString(c.Choices[0].Delta.Content)
				}
			}
			stream.Close()
			if roles != 1 || text.String() != tc.wantText {
				t.Errorf("go-openai: %d role deltas, text %q; want 1 and %q", roles, text.String(), tc.wantText)
			}
			// The Node SDK's stream helper assembles the answer; without a
			// role it throws, and nodeChat fails the test with its error.
			out := nodeChat(t, url, "stream-final")
			var res struct {
				Content *string `json:"content"`
				Paygate struct {
					Actions []struct {
						Type string `json:"type"`
					} `json:"actions"`
				} `json:"paygate"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			got := ""
			if len(res.Paygate.Actions) > 0 {
				got = res.Paygate.Actions[0].Type
			}
			if got != tc.wantAction || tc.wantText != "" && (res.Content == nil || *res.Content != tc.wantText) {
				t.Errorf("finalChatCompletion(): %s; want content %q and action %q", out, tc.wantText, tc.wantAction)
			}
		})
	}
}

// TestSeveralChoicesWithPaymentTools: a request for more than one choice is
// refused when the payment tools would be offered, so a payment call in a
// choice the bot may not show is neither executed nor handed to the bot raw.
// Without a signed-in user no tools are offered and n passes through.
func TestSeveralChoicesWithPaymentTools(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	url, a := paymentApp(t, up.URL, "")
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"model":"gpt-4o","n":2,"stream":%v,"messages":[{"role":"user","content":"buy premium"}]}`, stream)
		resp := postAs(t, url, e2eClientKey, testOpenID, body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"param":"n"`) {
			t.Errorf("stream %v: got %d %s; want 400 naming n", stream, resp.StatusCode, b)
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream requests: %d; want none", n)
	}
	if n := a.sim.OrderCount(); n != 0 {
		t.Errorf("orders at the simulator: %d; want none", n)
	}
	resp := postAs(t, url, e2eClientKey, "", `{"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"hello"}]}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("without a user: got %d; want 200", resp.StatusCode)
	}
}

// TestSeveralChoicesWithoutPaymentTools: a signed-in user's request for
// several choices whose tool_choice (or legacy functions) leaves the payment
// tools out is served, all choices to the bot, as without a user: no payment
// tool is offered, so none can be called in a choice the bot may not show.
// It was refused with a 400 saying the payment tools were offered.
func TestSeveralChoicesWithoutPaymentTools(t *testing.T) {
	const weather = `{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}`
	up := newScriptedProvider(t, func(body string) scriptRound {
		head := `{"id":"chatcmpl-N","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
		return scriptRound{
			chunks: []string{
				head + `{"index":0,"delta":{"role":"assistant","content":"One"},"finish_reason":null},{"index":1,"delta":{"role":"assistant","content":"Two"},"finish_reason":null}]}`,
				head + `{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"stop"}]}`,
			},
			whole: `{"id":"chatcmpl-N","object":"chat.completion","created":1,"model":"m","choices":[` +
				`{"index":0,"message":{"role":"assistant","content":"One"},"finish_reason":"stop"},` +
				`{"index":1,"message":{"role":"assistant","content":"Two"},"finish_reason":"stop"}]}`,
		}
	})
	url, a := paymentApp(t, up.URL, "")
	for _, tc := range []struct{ name, members string }{
		{"tool_choice none", `"tool_choice":"none",`},
		{"tool_choice none beside the bot's tools", `"tools":[` + weather + `],"tool_choice":"none",`},
		{"the bot's own function forced", `"tools":[` + weather + `],"tool_choice":{"type":"function","function":{"name":"get_weather"}},`},
		{"legacy functions", `"functions":[{"name":"get_weather","parameters":{"type":"object"}}],`},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, stream %v", tc.name, stream), func(t *testing.T) {
				before := len(up.requests())
				body := fmt.Sprintf(`{"model":"gpt-4o","n":2,"stream":%v,%s"messages":[{"role":"user","content":"two greetings"}]}`, stream, tc.members)
				resp := postAs(t, url, e2eClientKey, testOpenID, body)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("got %d %s; want 200", resp.StatusCode, b)
				}
				for _, want := range []string{"One", "Two"} {
					if !strings.Contains(string(b), `"content":"`+want+`"`) {
						t.Errorf("the answer lacks the choice %q: %s", want, b)
					}
				}
				reqs := up.requests()[before:]
				if len(reqs) != 1 {
					t.Fatalf("upstream requests: %d; want 1", len(reqs))
				}
				if strings.Contains(reqs[0], `"create_order"`) || strings.Contains(reqs[0], testOpenID) {
					t.Errorf("the upstream request offers a payment tool or names the user: %s", reqs[0])
				}
			})
		}
	}
	// A request that carries tool calls may need a kept payment exchange
	// restored, which only the turn does: refused as with the payment
	// tools, however it leaves them out (the legacy functions and a
	// prediction too: the turn restores the exchange beside them).
	for _, tc := range []struct{ name, members string }{
		{"tool_choice none", `"tool_choice":"none","tools":[` + weather + `],`},
		{"legacy functions", `"functions":[{"name":"get_weather","parameters":{"type":"object"}}],`},
		{"prediction", `"prediction":{"type":"content","content":"21 degrees"},`},
	} {
		resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","n":2,`+tc.members+`"messages":[`+
			`{"role":"user","content":"weather"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},`+
			`{"role":"tool","tool_call_id":"call_w","content":"21"}]}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"param":"n"`) {
			t.Errorf("several choices after tool calls, %s: %d %s; want 400 naming n", tc.name, resp.StatusCode, b)
		}
		// It says why: the tool calls, not payment tools it left out.
		if msg := gjson.GetBytes(b, "error.message").Str; strings.Contains(msg, "payment tools offered") || !strings.Contains(msg, "tool calls") {
			t.Errorf("several choices after tool calls, %s: the 400 says %q; want the tool calls named as the reason", tc.name, msg)
		}
	}
	if n := a.sim.OrderCount(); n != 0 {
		t.Errorf("orders at the simulator: %d; want none", n)
	}
}

// TestClientCallsWithoutFinishChunk: a round that hands the bot its own tool
// call and ends on [DONE] with no finish chunk was cut (one-api style relays
// end a stream their upstream broke with [DONE]): the bot is told so with an
// error event, not "tool_calls" for a call whose arguments may be cut.
func TestClientCallsWithoutFinishChunk(t *testing.T) {
	const head = `{"id":"chatcmpl-N","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	up := newScriptedProvider(t, func(string) scriptRound {
		return scriptRound{chunks: []string{
			head + `{"index":0,"delta":{"role":"assistant","content":"Sending. "},"finish_reason":null}]}`,
			head + `{"index":0,"delta":{"tool_calls":[{"index":0,"id":"client_1","type":"function","function":{"name":"send_receipt","arguments":"{}"}}]},"finish_reason":null}]}`,
		}}
	})
	url, _ := paymentApp(t, up.URL, "")
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"mail it"}],`+
		`"tools":[{"type":"function","function":{"name":"send_receipt","parameters":{"type":"object"}}}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var last string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "data: {") {
			last = line
		}
	}
	if strings.Contains(string(b), `"finish_reason":"tool_calls"`) || !strings.Contains(last, `"code":"upstream_connection_lost"`) {
		t.Errorf("stream ends %q; want an upstream_connection_lost error event and no tool_calls finish\n%s", last, b)
	}
}
