package failover_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
)

// A primary that is down and a fallback that streams: the caller sees only
// the fallback's answer, and which provider gave it.
func ExampleRouter_Open() {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":{"message":"bad gateway"}}`, http.StatusBadGateway)
	}))
	defer down.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()

	cfg, err := config.Parse([]byte(`
providers:
  - {name: primary, base_url: "`+down.URL+`", api_key: k1}
  - {name: fallback, base_url: "`+up.URL+`", api_key: k2}
models:
  - name: gpt-4o
    targets:
      - {provider: primary, model: openai/gpt-4o}
      - {provider: fallback, model: gpt-4o-2024-08-06}
`), "example.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := failover.New(cfg, failover.Options{
		// No real pause before the same-target retry in an example.
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	resp, err := r.Open(context.Background(), &failover.Request{
		Model: "gpt-4o", Path: "/chat/completions", Stream: true,
		Body: []byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Close()
	fmt.Println("answered by", resp.Provider, resp.Model, "after", resp.Attempts, "attempts")
	for {
		ev, err := resp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%q\n", gjson.GetBytes(ev.Data, "choices.0.delta.content").String())
	}
	// Output:
	// answered by fallback gpt-4o-2024-08-06 after 3 attempts
	// ""
	// "Hello"
	// ""
}
