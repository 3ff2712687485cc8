package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

// TestMisjoinedBaseURLRefused: a bot developer's base URL that the SDK
// joins into a path other than /v1/chat/completions: /v1 given twice (a
// tool that appends /v1 itself), /chat/completions given already (the
// SDK appends it again), or the path with a trailing slash. Each was
// forwarded as any other /v1 path, to the provider, with no payment tools
// and no payment state for a signed-in user: the bot's chat answered
// (or got the provider's 404) and its users could never pay, with
// nothing saying why. Each is a 404 unknown_url, in OpenAI's error shape
// that go-openai hands the bot, naming the path to use, and no provider
// is asked.
func TestMisjoinedBaseURLRefused(t *testing.T) {
	up := newScriptedProvider(t, purchaseScript)
	url, _ := paymentApp(t, up.URL, "")
	for _, base := range []string{
		url + "/v1/v1",
		url + "/v1/chat/completions",
		url + "/v1/v1/chat/completions",
		url + "/v1/chat/completions/",
	} {
		cfg := openai.DefaultConfig(e2eClientKey)
		cfg.BaseURL = base
		client := openai.NewClientWithConfig(cfg)
		// go-openai trims no slash: ".../completions/" + "/chat/completions"
		// is a "//" path, which the router cleans, so the trailing slash
		// is sent raw below.
		_, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
			Model: "gpt-4o", User: "o-user-firstday-000000000001",
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "I want the monthly plan"}},
		})
		var apiErr *openai.APIError
		if !errors.As(err, &apiErr) {
			t.Errorf("base URL %s: %v; want OpenAI's error JSON", base, err)
			continue
		}
		if apiErr.HTTPStatusCode != http.StatusNotFound || apiErr.Code != "unknown_url" ||
			!strings.Contains(apiErr.Message, "/v1/chat/completions") || !strings.Contains(apiErr.Message, "base URL") {
			t.Errorf("base URL %s: %d %v %q; want 404 unknown_url naming /v1/chat/completions and the base URL", base, apiErr.HTTPStatusCode, apiErr.Code, apiErr.Message)
		}
	}
	resp := firstdayPost(t, url+"/v1/chat/completions/", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"X-WeChat-OpenID": "o-user-firstday-000000000001"})
	if resp.status != http.StatusNotFound || !strings.Contains(resp.body, `"unknown_url"`) || !strings.Contains(resp.body, "trailing slash") {
		t.Errorf("POST /v1/chat/completions/: %d %s; want 404 unknown_url saying the trailing slash", resp.status, resp.body)
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("the provider was asked %d times; want 0", n)
	}
}

type firstdayAnswer struct {
	status int
	header http.Header
	body   string
}

// firstdayPost posts body with the e2e client key, JSON's Content-Type
// and the headers hdr.
func firstdayPost(t *testing.T, target, body string, hdr map[string]string) firstdayAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return firstdayAnswer{resp.StatusCode, resp.Header, string(b)}
}
