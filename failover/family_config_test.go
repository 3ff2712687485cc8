package failover

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover/h1"
)

// TestFamilyResolvedAtNew: a target's adaptations come from the family
// the config names (the target's, else its provider's), and from the
// guess on base_url and model name only with none or auto. The guess
// missed an Azure deployment "prod-large", a vLLM served-model name, a
// gateway before api.mistral.ai (whose every stream Mistral refused for
// its stream_options) and openrouter/auto, and took the fine-tune
// "ft:gpt-4o-mini:acme:mistral-distill" for Mistral, whose assistant
// messages lost their audio, function_call, refusal and name.
func TestFamilyResolvedAtNew(t *testing.T) {
	for _, tc := range []struct {
		name, base, model      string
		provider, target       string // families as written ("": left out)
		mistral, api, deepseek bool
	}{
		{"guess: mistral.ai", "https://api.mistral.ai/v1", "some-new-model", "", "", true, true, false},
		{"guess: model name", "http://vllm:8000/v1", "mistralai/Devstral-Small-2507", "auto", "", true, false, false},
		{"guess: deepseek", "https://api.deepseek.com", "whatever", "", "", false, false, true},
		{"guess: none", "https://x.openai.azure.com/openai", "prod-large", "", "", false, false, false},
		{"azure deployment", "https://x.openai.azure.com/openai", "prod-large", "mistral", "", true, false, false},
		{"vllm served name", "http://vllm:8000/v1", "prod-chat", "", "mistral", true, false, false},
		{"gateway before mistral.ai", "https://gateway.ai.cloudflare.com/v1/acct/gw/mistral", "mistral-large-latest", "mistral_api", "", true, true, false},
		{"openrouter/auto", "https://openrouter.ai/api/v1", "openrouter/auto", "openai", "mistral", true, false, false},
		{"fine-tune named mistral", "https://api.openai.com/v1", "ft:gpt-4o-mini:acme:mistral-distill", "openai", "", false, false, false},
		{"openai on mistral.ai", "https://api.mistral.ai/v1", "mistral-small-latest", "openai", "", false, false, false},
		{"gateway before deepseek", "https://litellm.internal/v1", "reasoner", "deepseek_api", "", false, false, true},
		{"deepseek name elsewhere", "http://vllm:8000/v1", "deepseek-chat", "openai", "", false, false, false},
		{"target auto over provider", "https://api.mistral.ai/v1", "mistral-small-latest", "openai", "auto", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(map[string]string{"a": tc.base}, []string{"a"})
			cfg.Providers[0].Family = tc.provider
			cfg.Models[0].Targets[0].Model = tc.model
			cfg.Models[0].Targets[0].Family = tc.target
			r, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			tg := r.byName["gpt"].targets[0]
			if tg.mistral != tc.mistral || tg.mistralAPI != tc.api || tg.deepseek != tc.deepseek {
				t.Errorf("mistral=%v mistralAPI=%v deepseek=%v; want %v %v %v", tg.mistral, tg.mistralAPI, tg.deepseek, tc.mistral, tc.api, tc.deepseek)
			}
		})
	}
	for _, where := range []string{"provider", "target"} {
		cfg := testConfig(map[string]string{"a": "http://x/v1"}, []string{"a"})
		if where == "provider" {
			cfg.Providers[0].Family = "mistal"
		} else {
			cfg.Models[0].Targets[0].Family = "mistal"
		}
		if r, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)}); err == nil {
			_ = r.Close()
			t.Errorf("a %s's family \"mistal\" accepted; want an error", where)
		}
	}
}

// TestFamilyOnTheWire: what a provider gets with an explicit family, whose
// base_url and model name the guess read otherwise. A Cloudflare AI
// Gateway before api.mistral.ai got stream_options, refused with 422 on
// every stream; a fine-tune named …mistral… had its call ids remapped and
// its assistant's refusal, audio, name and function_call left out.
func TestFamilyOnTheWire(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		if gjson.GetBytes(b, "stream_options").Exists() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(422)
			_, _ = io.WriteString(w, `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","stream_options","include_usage"],"msg":"Extra inputs are not permitted","input":true}]},"type":"invalid_request_error","param":null,"code":null}`)
			return
		}
		if gjson.GetBytes(b, "stream").Bool() {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, `data: {"id":"m","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tokens":1}}`+"\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"m","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`)
	}))
	t.Cleanup(srv.Close)
	d := &net.Dialer{}
	tr := &h1.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, srv.Listener.Addr().String()) // every host, here
	}}
	open := func(t *testing.T, base, model, family string, stream bool, body string) (string, error) {
		t.Helper()
		cfg := testConfig(map[string]string{"a": base}, []string{"a"})
		cfg.Providers[0].Family = family
		cfg.Models[0].Targets[0].Model = model
		r, err := New(cfg, Options{Transport: tr, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: []byte(body), Stream: stream})
		if err == nil {
			resp.Close()
		}
		return got.Load().(string), err
	}

	t.Run("gateway before mistral.ai", func(t *testing.T) {
		body := `{"model":"gpt","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`
		sent, err := open(t, "http://gateway.ai.cloudflare.com/v1/acct/gw/mistral", "mistral-large-latest", config.FamilyMistralAPI, true, body)
		if err != nil {
			t.Fatalf("%v; want the stream (sent %s)", err, sent)
		}
		if gjson.Get(sent, "stream_options").Exists() {
			t.Errorf("sent %s; want no stream_options", sent)
		}
	})

	t.Run("fine-tune named mistral", func(t *testing.T) {
		msgs := `[{"role":"user","content":"hi"},` +
			`{"role":"assistant","name":"shop","content":null,"refusal":null,"audio":{"id":"audio_abc123"},"tool_calls":[{"id":"call_Ab12cD34eF56gH78iJ90kL12","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
			`{"role":"tool","tool_call_id":"call_Ab12cD34eF56gH78iJ90kL12","content":"ok"},` +
			`{"role":"assistant","content":null,"function_call":{"name":"g","arguments":"{}"}},` +
			`{"role":"function","name":"g","content":"ok"}]`
		for _, stream := range []bool{false, true} {
			body := `{"model":"gpt","stream":` + map[bool]string{false: "false", true: "true"}[stream] + `,"messages":` + msgs + `}`
			sent, err := open(t, "http://api.openai.com/v1", "ft:gpt-4o-mini:acme:mistral-distill", config.FamilyOpenAI, stream, body)
			if err != nil {
				t.Fatalf("stream=%v: %v", stream, err)
			}
			if got := gjson.Get(sent, "messages").Raw; got != msgs {
				t.Errorf("stream=%v: sent messages %s\nwant them as they came %s", stream, got, msgs)
			}
		}
	})
}
