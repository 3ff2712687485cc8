package failover

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/failover/h1"
)

// TestEscapedHistoryAdapted: a bot's history that spells a word the
// adaptation looks for with a \u escape ("role":"\u0061ssistant", a
// "r\u0065fusal" key, a "th\u0069nking" part), which gjson and every
// provider read as the word itself, is adapted as the plain spelling is,
// sent through Router.Open to api.mistral.ai and to an OpenAI-schema
// server. The byte checks that spare most bodies the walk of the messages
// looked for the plain spelling only, so the body went out as it came and
// the provider refused it (Mistral 422 extra_forbidden for another
// provider's reasoning_content, OpenAI 400 for a thinking block, either
// 400 for a refusal without content).
func TestEscapedHistoryAdapted(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		// What the provider reads, as its parser decodes it.
		why := ""
		gjson.GetBytes(b, "messages").ForEach(func(_, m gjson.Result) bool {
			if m.Get("role").Str != "assistant" {
				return true
			}
			c := m.Get("content")
			switch {
			case m.Get("reasoning_content").Exists():
				why = "extra_forbidden reasoning_content"
			case m.Get("refusal").Type == gjson.String && c.Type == gjson.Null:
				why = "content or tool_calls must be set"
			case c.IsArray() && c.Get(`#(type=="thinking")`).Exists():
				why = "Invalid value: 'thinking'"
			case (c.Type == gjson.Null || !c.Exists()) && !m.Get("tool_calls").Exists():
				why = "Assistant message must have either content or tool_calls"
			}
			return why == ""
		})
		if why != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":{"message":"`+why+`","type":"invalid_request_error"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
	}))
	t.Cleanup(srv.Close)
	d := &net.Dialer{}
	tr := &h1.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}}
	const mistral, openai = "http://api.mistral.ai/v1", "http://openai.internal/v1"
	for _, tc := range []struct {
		name, base, assistant string
	}{
		{"Mistral: another provider's reasoning, the role escaped", mistral,
			`{"role":"\u0061ssistant","content":null,"reasoning_content":"hm","tool_calls":[{"id":"AbCdE1234","type":"function","function":{"name":"f","arguments":"{}"}}]}`},
		{"Mistral: a refusal, its key escaped", mistral,
			`{"role":"assistant","content":null,"r\u0065fusal":"Which plan?"}`},
		{"OpenAI: a refusal, its key escaped", openai,
			`{"role":"assistant","content":null,"r\u0065fusal":"Which plan?"}`},
		{"Mistral: the role escaped, a refusal", mistral,
			`{"role":"\u0061ssistant","content":null,"refusal":"Which plan?"}`},
		{"OpenAI: a thinking block, its type and key escaped", openai,
			`{"role":"assistant","content":[{"type":"th\u0069nking","th\u0069nking":[{"type":"text","text":"hm"}]},{"type":"text","text":"Paid."}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(map[string]string{"a": tc.base}, []string{"a"})
			cfg.Models[0].Targets[0].Model = "mistral-small-latest"
			if tc.base == openai {
				cfg.Models[0].Targets[0].Model = "gpt-4o"
			}
			r, err := New(cfg, Options{Transport: tr, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			body := `{"model":"gpt","messages":[{"role":"user","content":"buy"},` + tc.assistant + `,{"role":"user","content":"monthly"}]}`
			if strings.Contains(tc.assistant, "tool_calls") {
				body = strings.Replace(body, `,{"role":"user","content":"monthly"}`, `,{"role":"tool","tool_call_id":"AbCdE1234","content":"done"}`, 1)
			}
			resp, err := r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: []byte(body)})
			if err != nil {
				t.Fatalf("%v; want the answer (sent %s)", err, got.Load())
			}
			resp.Close()
		})
	}
}
