package failover

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

func smokeConfig(urls ...string) *config.Config {
	cfg := &config.Config{}
	m := config.Model{Name: "gpt", Strategy: "priority"}
	for i, u := range urls {
		name := string(rune('a' + i))
		cfg.Providers = append(cfg.Providers, config.Provider{Name: name, BaseURL: u, APIKey: "k-" + name,
			Timeouts: config.Timeouts{Connect: config.Duration(time.Second), FirstByte: config.Duration(time.Second),
				FirstToken: config.Duration(time.Second), Idle: config.Duration(time.Second), Total: config.Duration(5 * time.Second)}})
		m.Targets = append(m.Targets, config.Target{Provider: name, Model: "up-" + name})
	}
	cfg.Models = []config.Model{m}
	return cfg
}

func TestSmokeStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": keep\n\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	r, err := New(smokeConfig(srv.URL), Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.Open(context.Background(), &Request{Model: "gpt", Path: "/chat/completions", Body: []byte(`{"model":"gpt","stream":true}`), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	var n int
	for {
		ev, err := resp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		t.Logf("%s", ev.Data)
	}
	if n != 3 {
		t.Errorf("got %d events; want 3", n)
	}
}
