package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/heaptest"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// hugeHistory is a WeChat bot's request body of n messages of Chinese
// chat, padded in its last user message to exactly size bytes.
func hugeHistory(t testing.TB, n, size int, stream bool) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"model":"gpt-test","stream":%t,%s"messages":[{"role":"system","content":"你是一个微信客服机器人。"}`, stream, weatherTool)
	for i := 1; i < n-1; i++ {
		role := "user"
		if i%2 == 0 {
			role = "assistant"
		}
		fmt.Fprintf(&b, `,{"role":%q,"content":"第%d条：我想问一下这个月的会员续费怎么算，上次的订单是不是已经退款了？谢谢！"}`, role, i)
	}
	last := `,{"role":"user","content":"帮我买一个月的会员` // + padding + `"}]}`
	b.WriteString(last)
	pad := size - b.Len() - len(`"}]}`)
	if pad < 0 {
		t.Fatalf("%d messages take more than %d bytes", n, size)
	}
	b.WriteString(strings.Repeat("。", pad/3) + strings.Repeat(" ", pad%3))
	b.WriteString(`"}]}`)
	if b.Len() != size {
		t.Fatalf("body of %d bytes; want %d", b.Len(), size)
	}
	return b.Bytes()
}

// TestHugeConversationAtTheBodyLimit: a long-lived WeChat bot sends its
// whole history every turn. A body of exactly server.max_body_bytes (8 MiB,
// 5,000 messages in Chinese) is served, streamed or not, through a payment
// round (create_order) and the round after it; each round's request keeps
// the bot's messages byte for byte before the payment state, which sits
// just before the last user message and tells the model of the payment
// confirmed; one byte more is a 413 in OpenAI's error shape naming the
// limit, declared or chunked.
func TestHugeConversationAtTheBodyLimit(t *testing.T) {
	const n = 5000
	limit := int(config.DefaultMaxBodyBytes)
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock()
			st := testdrivers.Open(t, "embedded", clock.Now)
			const user = "o-long-chat"
			o := storetest.NewOrder("PAID-LONG-1", "shop-bot", user, clock.Now())
			o.Status, o.PaidAt = store.StatusPaid, clock.Now()
			if err := st.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			fp := newFakeProvider(t, roundByRound(callsRound(stream, createOrderCall), textRound(stream, "好的，订单已创建。")))
			tools := &recordingTools{}
			url := paymentProxy(t, fp.URL, nil, tools, st, payableReconciler{})
			body := hugeHistory(t, n, limit, stream)
			resp := post(t, url, "/v1/chat/completions", string(body), map[string]string{"X-WeChat-OpenID": user})
			answer := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("a body of %d bytes (the limit): status %d: %.300s", len(body), resp.StatusCode, answer)
			}
			if got := tools.executed(); len(got) != 1 || !strings.HasPrefix(got[0], "create_order ") {
				t.Errorf("executed %q; want one create_order", got)
			}
			if !strings.Contains(answer, "payment_confirmed") || !strings.Contains(answer, "订单已创建") {
				t.Errorf("answer %.500s; want the round's words and payment_confirmed", answer)
			}
			sent := gjson.GetBytes(body, "messages")
			sentMsgs := sent.Array()
			lastUser := sentMsgs[len(sentMsgs)-1]
			reqs := fp.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d rounds at the provider; want 2", len(reqs))
			}
			for i, r := range reqs {
				msgs := gjson.GetBytes(r.Body, "messages")
				arr := msgs.Array()
				if len(arr) < n+1 {
					t.Fatalf("round %d: %d messages; want at least %d", i+1, len(arr), n+1)
				}
				state := arr[n-1]
				if state.Get("role").Str != "system" || !strings.Contains(state.Get("content").Str, "PAID-LONG-1") {
					t.Errorf("round %d: message %d is %.200s; want the payment state naming PAID-LONG-1", i+1, n-1, state.Raw)
				}
				prefix := sent.Raw[:lastUser.Index-sent.Index]
				if !strings.HasPrefix(msgs.Raw, prefix) {
					t.Errorf("round %d: the bot's %d messages before the last user message are not sent byte for byte", i+1, n-1)
				}
				if arr[n].Raw != lastUser.Raw {
					t.Errorf("round %d: message %d is not the bot's last user message", i+1, n)
				}
			}
			// One byte over: declared, and chunked.
			over := append(bytes.Clone(body[:len(body)-len(`"}]}`)]), []byte(` "}]}`)...)
			for _, chunked := range []bool{false, true} {
				var rd io.Reader = bytes.NewReader(over)
				if chunked {
					rd = io.MultiReader(rd) // no length: sent chunked
				}
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", rd)
				req.Header.Set("Authorization", "Bearer "+testClientKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("chunked %t: %v", chunked, err)
				}
				got := readAll(t, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge || gjson.Get(got, "error.type").Str != "invalid_request_error" ||
					!strings.Contains(gjson.Get(got, "error.message").Str, strconv.Itoa(limit)) || !strings.Contains(got, "server.max_body_bytes") {
					t.Errorf("a body of %d bytes, chunked %t: %d %s; want 413 naming the limit", len(over), chunked, resp.StatusCode, got)
				}
			}
		})
	}
}

// TestConcurrentHugeTurnsHoldThreeCopies: 8 turns of a 4 MiB conversation
// at the provider at once (each its payment round's request) hold three
// copies of the body each: the bot's (kept for failover and the
// conversation's reads), the turn's (state and tools added, rounds appended)
// and the attempt's (its target's model). The rewrite of the end user's
// identity made a fourth that the turn kept to the end as the bot's
// request (turn.reqBody), though the bot's own body, which the turn's
// reads find the same in, stayed live beside it: 16.1 MiB a turn of 4 MiB
// (12.1 without it). Eight turns show it as 32 did (530 MB), in a fifth of
// the time under -race.
func TestConcurrentHugeTurnsHoldThreeCopies(t *testing.T) {
	const turns, size = 8, 4 << 20
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
		peak    uint64
	)
	first := callsRound(false, createOrderCall)
	then := textRound(false, "好的。")
	// Neither this provider nor the bots below keep a copy of a body.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); bytes.Contains(b, []byte(`"tool_call_id"`)) {
			then(w, r)
			return
		}
		mu.Lock()
		arrived++
		if arrived == turns {
			peak = heaptest.Live()
			close(all)
		}
		mu.Unlock()
		<-all
		first(w, r)
	}))
	t.Cleanup(up.Close)
	url := toolsProxy(t, up.URL, &recordingTools{}, nil)
	body := string(hugeHistory(t, 2500, size, false))
	base := heaptest.Live()
	var wg sync.WaitGroup
	for i := range turns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testClientKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-WeChat-OpenID", "o-user-"+strconv.Itoa(i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("turn %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("turn %d: status %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	perTurn := float64(int64(peak)-int64(base)) / turns / (1 << 20)
	t.Logf("%d turns of %d MiB at the provider: live heap %.0f MiB over the start, %.1f MiB a turn", turns, size>>20, perTurn*turns, perTurn)
	if perTurn > 3.5*float64(size>>20) {
		t.Errorf("each turn of a %d MiB body holds %.1f MiB at the provider; want at most 3.5 copies (%.0f MiB)", size>>20, perTurn, 3.5*float64(size>>20))
	}
}
