package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// TestSDKOpenIDInTextHashed: a go-openai bot that names its user by the
// OpenID in "user", in its system prompt and as each message's name, on a
// chat completion streamed and not and on embeddings: the provider gets
// the user's hash, the one "user" carries, in every place (SPEC 2.2), and
// the SDK reads paygate's answers as it reads OpenAI's.
func TestSDKOpenIDInTextHashed(t *testing.T) {
	const openID = "oSDK5-openid_7a8b9c0d1e2f3g4"
	hash := expectedUserHash("shop-bot", openID)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path == "/v1/embeddings":
			jsonHandler(200, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"vendor/embed","usage":{"prompt_tokens":1,"total_tokens":1}}`)(w, r)
		case gjson.GetBytes(b, "stream").Bool():
			sseHandler(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`+"\n\n",
				`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`+"\n\n",
				"data: [DONE]\n\n")(w, r)
		default:
			jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)(w, r)
		}
	})
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	c := sdkClient(proxyURL)
	ctx := context.Background()
	req := openai.ChatCompletionRequest{
		Model: "gpt-test",
		User:  openID,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: "You are serving user " + openID + "."},
			{Role: openai.ChatMessageRoleUser, Name: openID, Content: "hello, I am " + openID},
		},
	}
	if r, err := c.CreateChatCompletion(ctx, req); err != nil || r.Choices[0].Message.Content != "hi" {
		t.Fatalf("CreateChatCompletion: %+v, %v", r, err)
	}
	req.Stream = true
	s, err := c.CreateChatCompletionStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := s.Recv(); err != nil {
			break
		}
	}
	s.Close()
	if _, err := c.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{Model: "embed-test", User: openID, Input: []string{"profile of " + openID}}); err != nil {
		t.Fatal(err)
	}
	seen := fp.requests()
	if len(seen) != 3 {
		t.Fatalf("%d upstream requests; want 3", len(seen))
	}
	for i, r := range seen {
		all := r.Path + "\n" + strings.Join(headerLines(r.Header), "\n") + "\n" + string(r.Body)
		if strings.Contains(all, openID) {
			t.Errorf("upstream request %d carries the OpenID:\n%s", i, all)
		}
		if u := gjson.GetBytes(r.Body, "user").Str; u != hash {
			t.Errorf("upstream request %d: user %q; want %s", i, u, hash)
		}
		if i == 2 {
			if in := gjson.GetBytes(r.Body, "input.0").Str; in != "profile of "+hash {
				t.Errorf("embedding input %q; want the hash in the OpenID's place", in)
			}
			continue
		}
		if got := gjson.GetBytes(r.Body, "messages.0.content").Str; got != "You are serving user "+hash+"." {
			t.Errorf("upstream request %d: system prompt %q", i, got)
		}
		if got := gjson.GetBytes(r.Body, "messages.1.name").Str; got != hash {
			t.Errorf("upstream request %d: name %q; want %s", i, got, hash)
		}
	}
}

// headerLines is h as "Name: value" lines.
func headerLines(h http.Header) []string {
	var out []string
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, k+": "+v)
		}
	}
	return out
}

// TestOpenIDInForwardedHeaders: of the bot's headers a provider gets
// Accept, and on the /v1 paths the body's Content-Type. An Accept holding
// the end user's OpenID is not sent (the provider answers its default);
// a Content-Type holding it is a 400 that reaches no provider, since its
// parameters (a form's boundary) frame the body. Under keep both go as
// sent. The UnionID an X-WX-UNIONID header names (WeChat Cloud hosting's,
// beside X-WX-OPENID) is taken so too: it reached the provider in both.
func TestOpenIDInForwardedHeaders(t *testing.T) {
	const openID = "oHDR6-openid_7a8b9c0d1e2f3g4"
	const unionID = "oHDU3-unionid_9z8y7x6w5v4u3t"
	chat := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	embed := `{"model":"embed-test","input":"x"}`
	for _, tc := range []struct {
		name, mode, path, body, id string
		header                     map[string]string
		status                     int
	}{
		{"chat Accept", "hash", "/v1/chat/completions", chat, openID, map[string]string{"Accept": "application/json; who=" + openID}, 200},
		{"embeddings Accept", "drop", "/v1/embeddings", embed, openID, map[string]string{"Accept": "application/json, " + openID}, 200},
		{"embeddings Content-Type", "hash", "/v1/embeddings", embed, openID, map[string]string{"Content-Type": "application/json; who=" + openID}, 400},
		{"keep", "keep", "/v1/embeddings", embed, openID, map[string]string{"Accept": "application/json; who=" + openID, "Content-Type": "application/json; who=" + openID}, 200},
		{"UnionID chat Accept", "hash", "/v1/chat/completions", chat, unionID, map[string]string{"X-WX-UNIONID": unionID, "Accept": "application/json; who=" + unionID}, 200},
		{"UnionID embeddings Accept", "drop", "/v1/embeddings", embed, unionID, map[string]string{"X-WX-UNIONID": unionID, "Accept": "application/json, " + unionID}, 200},
		{"UnionID embeddings Content-Type", "hash", "/v1/embeddings", embed, unionID, map[string]string{"X-WX-UNIONID": unionID, "Content-Type": "application/json; who=" + unionID}, 400},
		{"UnionID keep", "keep", "/v1/embeddings", embed, unionID, map[string]string{"X-WX-UNIONID": unionID, "Accept": "application/json; who=" + unionID}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/embeddings" {
					jsonHandler(200, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"vendor/embed","usage":{"prompt_tokens":1,"total_tokens":1}}`)(w, r)
					return
				}
				jsonHandler(200, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)(w, r)
			})
			proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, func(c *config.Config) { c.Privacy.ForwardUser = tc.mode }))
			hdr := map[string]string{"X-WeChat-OpenID": openID, "Content-Type": "application/json"}
			for k, v := range tc.header {
				hdr[k] = v
			}
			resp := post(t, proxyURL, tc.path, tc.body, hdr)
			if body := readAll(t, resp.Body); resp.StatusCode != tc.status {
				t.Fatalf("status %d %s; want %d", resp.StatusCode, body, tc.status)
			}
			seen := fp.requests()
			if tc.status != 200 {
				if len(seen) != 0 {
					t.Errorf("%d upstream requests; want none", len(seen))
				}
				return
			}
			if len(seen) != 1 {
				t.Fatalf("%d upstream requests; want 1", len(seen))
			}
			lines := strings.Join(headerLines(seen[0].Header), "\n")
			if has := strings.Contains(lines, tc.id); has != (tc.mode == "keep") {
				t.Errorf("the id in the upstream headers: %v under %s:\n%s", has, tc.mode, lines)
			}
		})
	}
}
