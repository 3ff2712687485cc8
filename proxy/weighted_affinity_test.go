package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestWeightedStrategyKeepsAConversationOnOneTarget: under the weighted
// strategy each conversation (the client, the end user and the session)
// reaches the same target in every turn and every round of a payment
// turn, and the conversations spread over the targets by weight. Providers
// cache a conversation's prompt prefix per account and model: drawn anew
// for every request, the turns of one conversation went to one provider
// and the other alike, and each reached a provider that had not seen its
// last turn (a payment turn's second round too), its prefix billed in
// full where it was cached.
func TestWeightedStrategyKeepsAConversationOnOneTarget(t *testing.T) {
	answer := func(text string) http.HandlerFunc {
		call, words := callsRound(false, "["+queryCall(0, "call_q", "X1")+"]"), textRound(false, text)
		return func(w http.ResponseWriter, r *http.Request) {
			if gjson.Get(readAll(t, r.Body), "messages.@reverse.0.content").Str == "is X1 paid?" {
				call(w, r) // a payment round: the round after it must reach this provider too
				return
			}
			words(w, r)
		}
	}
	a, b := newFakeProvider(t, answer("From a.")), newFakeProvider(t, answer("From b."))
	url := toolsProxy(t, a.URL, &recordingTools{}, func(c *config.Config) {
		p := c.Providers[0]
		p.Name, p.BaseURL = "other", b.URL+"/v1"
		c.Providers = append(c.Providers, p)
		c.Models[0].Strategy = "weighted"
		c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: "other", Model: "vendor/upstream-model", Weight: 1})
	})
	const users, turns = 12, 6
	byA, byB := map[string]int{}, map[string]int{}
	for u := range users {
		user := "o-user-" + strconv.Itoa(u)
		for session := range 2 {
			conv := user + "/chat-" + strconv.Itoa(session)
			msgs := []string{`{"role":"user","content":"hello"}`}
			for turn := range turns {
				if turn == turns-1 {
					msgs[len(msgs)-1] = `{"role":"user","content":"is X1 paid?"}`
				}
				beforeA, beforeB := len(a.requests()), len(b.requests())
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(false, "", msgs...),
					map[string]string{"X-WeChat-OpenID": user, "X-Paygate-Session": "chat-" + strconv.Itoa(session)})
				body := readAll(t, resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s turn %d: %d %s", conv, turn, resp.StatusCode, body)
				}
				byA[conv] += len(a.requests()) - beforeA
				byB[conv] += len(b.requests()) - beforeB
				text := "From b."
				if strings.Contains(body, "From a.") {
					text = "From a."
				}
				msgs = append(msgs, `{"role":"assistant","content":"`+text+`"}`, `{"role":"user","content":"and then?"}`)
			}
		}
	}
	convs, onA := 0, 0
	for u := range users {
		for session := range 2 {
			conv := "o-user-" + strconv.Itoa(u) + "/chat-" + strconv.Itoa(session)
			convs++
			switch {
			case byA[conv]+byB[conv] != turns+1:
				t.Errorf("conversation %s: %d upstream requests; want %d (a payment turn of two rounds)", conv, byA[conv]+byB[conv], turns+1)
			case byB[conv] == 0:
				onA++
			case byA[conv] != 0:
				t.Errorf("conversation %s: %d of its requests reached provider fake, %d provider other; want all on one", conv, byA[conv], byB[conv])
			}
		}
	}
	if onA == 0 || onA == convs {
		t.Errorf("%d of %d conversations on provider fake; want them spread over both targets (weights 1 and 1)", onA, convs)
	}
}

// TestWeightedStrategyKeepsPlainConversationsOnOneTarget: the requests
// paygate forwards without a payment turn (a chat completion of a bot
// without the payment tools, a Responses API call, a legacy completion)
// keep a conversation (the client, the end user and the session) on the
// target it drew too, as README's models[].strategy says of "weighted";
// and a target that is down fails over to the other within the
// conversation.
func TestWeightedStrategyKeepsPlainConversationsOnOneTarget(t *testing.T) {
	for _, path := range []string{"/v1/chat/completions", "/v1/responses", "/v1/completions"} {
		t.Run(strings.TrimPrefix(path, "/v1/"), func(t *testing.T) {
			ok := func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`))
			}
			var down atomic.Bool
			a := newFakeProvider(t, ok)
			b := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				if down.Load() {
					http.Error(w, `{"error":{"message":"overloaded","type":"server_error"}}`, http.StatusInternalServerError)
					return
				}
				ok(w, r)
			})
			cfg := testConfig(t, a.URL, func(c *config.Config) {
				p := c.Providers[0]
				p.Name, p.BaseURL = "other", b.URL+"/v1"
				c.Providers = append(c.Providers, p)
				c.Models[0].Strategy = "weighted"
				c.Models[0].Targets = append(c.Models[0].Targets, config.Target{Provider: "other", Model: "vendor/upstream-model", Weight: 1})
			})
			url, _ := newTestProxy(t, cfg)
			body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
			if path != "/v1/chat/completions" {
				body = `{"model":"gpt-test","input":"hi"}`
			}
			const users, turns = 16, 5
			onA := 0
			for u := range users {
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-" + strconv.Itoa(u), "X-Paygate-Session": "chat"}
				beforeA, beforeB := len(a.requests()), len(b.requests())
				for range turns {
					resp := post(t, url, path, body, hdr)
					if b := readAll(t, resp.Body); resp.StatusCode != http.StatusOK {
						t.Fatalf("user %d: %d %s", u, resp.StatusCode, b)
					}
				}
				byA, byB := len(a.requests())-beforeA, len(b.requests())-beforeB
				switch {
				case byB == 0:
					onA++
				case byA != 0:
					t.Errorf("user %d: %d of its requests reached provider fake, %d provider other; want all on one", u, byA, byB)
				}
			}
			if onA == 0 || onA == users {
				t.Fatalf("%d of %d conversations on provider fake; want them spread over both targets (weights 1 and 1)", onA, users)
			}
			// The other provider down: every conversation is still answered,
			// those that drew it by fake.
			down.Store(true)
			for u := range users {
				resp := post(t, url, path, body, map[string]string{"X-WeChat-OpenID": "o-user-" + strconv.Itoa(u), "X-Paygate-Session": "chat"})
				if b := readAll(t, resp.Body); resp.StatusCode != http.StatusOK {
					t.Errorf("user %d with provider other down: %d %s; want fake's answer", u, resp.StatusCode, b)
				}
			}
		})
	}
}
