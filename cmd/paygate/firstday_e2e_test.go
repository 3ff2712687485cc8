package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/logging/logtest"
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
	// The Node SDK, as the bot's catch sees the error: its status, code
	// and message (String(err)).
	for _, base := range []string{url, url + "/v1/v1", url + "/v1/chat/completions"} {
		var res struct {
			Error  string `json:"error"`
			Status int    `json:"status"`
			Code   string `json:"code"`
		}
		out := nodeChat(t, url, "nonstream-error", "PAYGATE_URL="+base)
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if res.Status != http.StatusNotFound || res.Code != "unknown_url" || !strings.Contains(res.Error, "base URL") {
			t.Errorf("Node SDK, base URL %s: %s; want 404 unknown_url naming the base URL", base, out)
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("the provider was asked %d times; want 0", n)
	}
	// A base URL with a trailing slash is served: go-openai joins it into
	// /v1//chat/completions, which the router redirects (307) and the Go
	// client follows with the body.
	cfg := openai.DefaultConfig(e2eClientKey)
	cfg.BaseURL = url + "/v1/"
	r, err := openai.NewClientWithConfig(cfg).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
	})
	if err != nil || r.ID == "" || len(up.requests()) != 1 {
		t.Errorf("base URL %s/v1/: %v %+v, the provider asked %d times; want an answer, asked once", url, err, r, len(up.requests()))
	}
}

type firstdayAnswer struct {
	status int
	header http.Header
	body   string
}

// firstdayPost posts body with the e2e client key, JSON's Content-Type
// and the headers hdr ("-Name" leaves that header out).
func firstdayPost(t *testing.T, target, body string, hdr map[string]string) firstdayAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eClientKey)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if name, ok := strings.CutPrefix(k, "-"); ok {
			req.Header.Del(name) // "-Name": not sent
			continue
		}
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

// TestSignedOutChatLoggedOnce: a bot developer's first integration that
// names no end user as paygate reads one gets chat without the payment
// tools, and nothing said so: no line, no header, 200s. The usual
// mistakes: no user at all, the OpenID in a header of another name
// (X-OpenID), the body's user as an object, the OpenID in metadata (see
// TestMetadataOpenIDOfUnnamedUserNotForwarded). The log says so once for each client and cause, at INFO (a
// healthy turn writes no line), naming what was sent where paygate reads
// the user; a bot that sends the header empty for a visitor it did not
// sign in chose so, and gets no line.
func TestSignedOutChatLoggedOnce(t *testing.T) {
	up := newScriptedProvider(t, weatherScript)
	logs := &logtest.Buffer{}
	url, _ := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`, logs)
	const oid = "o-user-firstday-000000000002"
	said := func() []string {
		var causes []string
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Level, Client, Cause string }
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "payment tools not offered: the chat request names no end user") {
				if rec.Level != "INFO" || rec.Client != "bot" {
					t.Errorf("line %s: want INFO naming the client bot", line)
				}
				causes = append(causes, rec.Cause)
			}
		}
		return causes
	}
	for i, tc := range []struct {
		hdr     map[string]string
		members string
		want    string // the cause logged by this request, "" for none
	}{
		{nil, ``, "no X-WeChat-OpenID header and no user"},
		{nil, ``, ""},
		{map[string]string{"X-OpenID": oid}, ``, "header X-Openid is not read as the end user: paygate reads X-WeChat-OpenID"},
		{map[string]string{"X-OpenID": oid}, ``, ""},
		{map[string]string{"X-Wechat-Open-Id": oid}, ``, ""}, // the same cause: said once
		{nil, `"user":{"openid":"` + oid + `"},`, `the body's "user" is an object, not a string`},
		{nil, `"metadata":{"openid":"` + oid + `"},`, `metadata.openid names no paying user`},
		{map[string]string{"X-WeChat-OpenID": ""}, ``, ""},
		{map[string]string{"X-WeChat-OpenID": oid}, ``, ""},
	} {
		before := said()
		ans := firstdayChat(t, url, tc.hdr, tc.members)
		if ans.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, ans.status, ans.body)
		}
		after := said()
		switch {
		case tc.want == "" && len(after) != len(before):
			t.Errorf("request %d logged %q; want no line", i, after[len(before):])
		case tc.want != "" && (len(after) != len(before)+1 || !strings.Contains(after[len(after)-1], tc.want)):
			t.Errorf("request %d logged %q; want one line whose cause says %q", i, after[len(before):], tc.want)
		}
	}
	if strings.Contains(logs.String(), oid) {
		t.Errorf("the log holds the OpenID:\n%s", logs.String())
	}
}

func firstdayChat(t *testing.T, url string, hdr map[string]string, members string) firstdayAnswer {
	t.Helper()
	return firstdayPost(t, url+"/v1/chat/completions", `{"model":"gpt-4o",`+members+`"messages":[{"role":"user","content":"What's the weather?"}]}`, hdr)
}

// TestWrongKeyNeitherForwardedNorLogged: the keys a first integration
// sends where the client key goes. The provider's own key as the bot's
// (copied from the provider's dashboard), or the client key in Azure's
// api-key header, is a 401 invalid_api_key in OpenAI's shape; the provider
// is not asked, and the key is in no log line, at debug level too. The
// scheme in lower case (`bearer`) is the client key as any other.
func TestWrongKeyNeitherForwardedNorLogged(t *testing.T) {
	up := newScriptedProvider(t, weatherScript)
	logs := &logtest.Buffer{}
	const providerKey = "sk-or-v1-firstday-provider-key-0123456789"
	url, _ := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
log: {level: debug}
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: `+providerKey+`}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
`, logs)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
		says string // in the 401's message
	}{
		{"the provider's key", map[string]string{"Authorization": "Bearer " + providerKey}, http.StatusUnauthorized, "Incorrect API key provided. Use a paygate client key"},
		// The Azure SDKs send the key in api-key alone: the message
		// names the header paygate reads it from.
		{"Azure's api-key header", map[string]string{"-Authorization": "", "Api-Key": e2eClientKey}, http.StatusUnauthorized, "not in api-key"},
		{"no key", map[string]string{"-Authorization": ""}, http.StatusUnauthorized, "didn't provide an API key"},
		{"bearer in lower case", map[string]string{"Authorization": "bearer " + e2eClientKey}, http.StatusOK, ""},
	} {
		ans := firstdayPost(t, url+"/v1/chat/completions", body, tc.hdr)
		if ans.status != tc.want {
			t.Errorf("%s: %d %s; want %d", tc.name, ans.status, ans.body, tc.want)
		}
		if tc.want == http.StatusUnauthorized && (!strings.Contains(ans.body, `"code":"invalid_api_key"`) || !strings.Contains(ans.body, tc.says)) {
			t.Errorf("%s: %s; want OpenAI's invalid_api_key saying %q", tc.name, ans.body, tc.says)
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("the provider was asked %d times; want once, for the lower-case scheme", n)
	}
	if strings.Contains(logs.String(), providerKey) || strings.Contains(logs.String(), "firstday-provider") {
		t.Errorf("the log holds the provider's key:\n%s", logs.String())
	}
}

// TestMetadataOpenIDOfUnnamedUserNotForwarded: a bot that names its user
// in metadata alone ({"openid": …}, {"wx_open_id": …}), not in the header
// or user, sent the OpenID to the provider as it was, in metadata and
// wherever else the request held it (its system prompt): paygate did not
// know it named the user (SPEC 2.2: the OpenID never reaches a provider).
// Such a value is taken as the end user toward the provider, hashed as a
// named user's is, though it names no paying user: the turn still gets no
// payment tools.
func TestMetadataOpenIDOfUnnamedUserNotForwarded(t *testing.T) {
	up := newScriptedProvider(t, weatherScript)
	url, _ := paymentApp(t, up.URL, "")
	const oid = "o-user-firstday-000000000003"
	for i, members := range []string{
		`"metadata":{"openid":"` + oid + `"},`,
		`"metadata":{"shop":"s1","openid_issuer":"https://open.weixin.qq.com","wx_open_id":"` + oid + `"},`,
	} {
		ans := firstdayPost(t, url+"/v1/chat/completions", `{"model":"gpt-4o",`+members+
			`"messages":[{"role":"system","content":"You serve user `+oid+`."},{"role":"user","content":"hi"}]}`, nil)
		if ans.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, ans.status, ans.body)
		}
		reqs := up.requests()
		got := reqs[len(reqs)-1]
		if strings.Contains(got, oid) {
			t.Errorf("request %d: the provider got the OpenID: %s", i, got)
		}
		if strings.Contains(members, "openid_issuer") && !strings.Contains(got, `"openid_issuer":"https://open.weixin.qq.com"`) {
			t.Errorf("request %d: a metadata key that goes on past OpenID was taken for the user: %s", i, got)
		}
		if strings.Contains(got, `"tools"`) {
			t.Errorf("request %d: the provider was offered tools, as for a paying user: %s", i, got)
		}
	}
}

// TestMetadataOpenIDOfUnnamedUserOnForwardedPaths: the bot that names its
// user in metadata alone does so on every path: a Response (which OpenAI
// stores by default) tagged {"openid": …}, and the stored completions'
// filter ?metadata[openid]=… that finds the chats it so tagged. Since a
// chat's metadata OpenID is hashed toward the provider, these were
// forwarded with the OpenID as sent: the provider got it, and the filter
// found none of the bot's stored chats, which carry the hash. Each takes
// the value as the end user toward the provider, as chat does.
func TestMetadataOpenIDOfUnnamedUserOnForwardedPaths(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string // each request's URI and body
	)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.RequestURI+" "+string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/chat/completions"):
			_, _ = io.WriteString(w, weatherScript(string(b)).whole)
		case r.Method == http.MethodPost:
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","output":[]}`)
		default:
			_, _ = io.WriteString(w, `{"object":"list","data":[],"has_more":false}`)
		}
	}))
	t.Cleanup(up.Close)
	url, _ := serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
privacy: {hash_key: firstday-hash-key-0123456789abcdef}
providers:
  - {name: fake, base_url: "`+up.URL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
`, io.Discard)
	const oid = "o-user-firstday-000000000005"
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1]
	}
	ans := firstdayPost(t, url+"/v1/chat/completions", `{"model":"gpt-4o","store":true,"metadata":{"openid":"`+oid+`"},"messages":[{"role":"user","content":"hi"}]}`, nil)
	if ans.status != http.StatusOK {
		t.Fatalf("chat: %d %s", ans.status, ans.body)
	}
	_, chatBody, _ := strings.Cut(last(), " ")
	hash := gjson.Get(chatBody, "metadata.openid").Str
	if hash == "" || hash == oid {
		t.Fatalf("the stored chat's metadata.openid: %q; want the user's hash", hash)
	}
	for _, tc := range []struct {
		method, path, body string
	}{
		{http.MethodPost, "/v1/responses", `{"model":"gpt-4o","input":"hi","metadata":{"shop":"s1","wx_open_id":"` + oid + `"}}`},
		{http.MethodGet, "/v1/chat/completions?limit=10&metadata%5Bopenid%5D=" + oid, ``},
		{http.MethodGet, "/v1/chat/completions?metadata[OpenID]=" + oid, ``},
	} {
		req, err := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e2eClientKey)
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := last()
		if resp.StatusCode != http.StatusOK || strings.Contains(got, oid) || !strings.Contains(got, hash) {
			t.Errorf("%s %s: %d, the provider got %s; want 200, the user's hash %s in the OpenID's place", tc.method, tc.path, resp.StatusCode, got, hash)
		}
	}
}
