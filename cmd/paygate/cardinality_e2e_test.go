package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHostileValuesMakeNoSeries: every value a bot, a model, a provider or
// a sender of notifications chooses (model names, paths, methods, client
// keys, tool names the model invents, the model an answer names, a
// provider's error codes and types, a notification's event type and
// serial) stays out of the metrics' labels: an attacker who sends a
// thousand distinct ones must not make a thousand series. After a first
// batch that takes every kind of path once, a second batch of new values
// adds no series to the families those paths move, and no label anywhere
// holds one of the values.
func TestHostileValuesMakeNoSeries(t *testing.T) {
	const mark = "zqhostile"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := regexp.MustCompile(mark + `[0-9]+`).FindString(string(b) + r.URL.Path)
		if r.URL.Path != "/v1/chat/completions" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"error":{"message":"no %s","type":"type_%s","code":"code_%s"}}`, n, n, n)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-%s","object":"chat.completion","created":1,"model":"vendor/%s",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[`+
			`{"id":"call_%s","type":"function","function":{"name":"tool_%s","arguments":"{}"}}]},"finish_reason":"tool_calls"}],`+
			`"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`, n, n, n, n)
	}))
	t.Cleanup(up.Close)
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
payments:
  catalog:
    - {sku: premium-monthly, name: "Premium tier, 1 month", price: "49.99", max_quantity: 12}
`
	base, _ := serveConfig(t, src, io.Discard)

	do := func(method, path, key, body string, hdr map[string]string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	batch := func(from, to int) {
		for i := from; i < to; i++ {
			v := fmt.Sprintf("%s%d", mark, i)
			user := map[string]string{"X-WeChat-OpenID": "o" + v}
			tools := `,"tools":[{"type":"function","function":{"name":"tool_` + v + `","parameters":{"type":"object"}}}]`
			do(http.MethodPost, "/v1/chat/completions", e2eClientKey, `{"model":"gpt-4o","messages":[{"role":"user","content":"`+v+`"}]`+tools+`}`, user)
			do(http.MethodPost, "/v1/chat/completions", e2eClientKey, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"`+v+`"}]`+tools+`}`, user)
			do(http.MethodPost, "/v1/chat/completions", e2eClientKey, `{"model":"`+v+`","messages":[{"role":"user","content":"hi"}]}`, user)
			do(http.MethodPost, "/v1/chat/completions", "sk-"+v, `{"model":"gpt-4o","messages":[]}`, nil)
			do(http.MethodPost, "/v1/"+v+"/things", e2eClientKey, `{"model":"gpt-4o","input":"`+v+`"}`, nil)
			do(http.MethodGet, "/v1/files/"+v, e2eClientKey, "", nil)
			do("X"+strings.ToUpper(v), "/v1/chat/completions", e2eClientKey, "", nil)
			do(http.MethodGet, "/"+v, "", "", nil)
			do(http.MethodPost, "/v1/paygate/"+v, e2eClientKey, "{}", nil)
			do(http.MethodGet, "/v1/paygate/orders/"+v, e2eClientKey, "", user)
			do(http.MethodPost, "/v1/paygate/refunds/"+v+"/confirm", e2eClientKey, "{}", user)
			do(http.MethodPost, "/wechatpay/notify", "", `{"id":"`+v+`","event_type":"`+v+`","resource":{}}`, map[string]string{
				"Wechatpay-Serial": v, "Wechatpay-Signature": v, "Wechatpay-Timestamp": "1", "Wechatpay-Nonce": v})
		}
	}
	// Series per family, for the families the requests above move.
	families := regexp.MustCompile(`^(paygate_(requests|request_duration|upstream|tool_calls|llm|notifications|notify|budget|rule|state)[a-z_]*?)(_bucket|_sum|_count)?\{`)
	series := func() (map[string]int, string) {
		text := scrape(t, base)
		count := map[string]int{}
		sc := bufio.NewScanner(strings.NewReader(text))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := families.FindStringSubmatch(sc.Text()); m != nil {
				count[m[1]]++
			}
		}
		return count, text
	}
	batch(0, 3)
	before, _ := series()
	batch(3, 23)
	after, text := series()
	for name, n := range after {
		if n != before[name] {
			t.Errorf("%s: %d series after 20 more hostile values, %d before", name, n, before[name])
		}
	}

	if i := strings.Index(text, mark); i >= 0 {
		line := text[strings.LastIndex(text[:i], "\n")+1:]
		line, _, _ = strings.Cut(line, "\n")
		t.Errorf("a hostile value reached a label: %s", line)
	}
}
