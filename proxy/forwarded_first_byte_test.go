package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/paygate/paygate/config"
)

// TestForwardedAnswerCutBeforeItsFirstByteFailsOver: a provider that
// sends the head of an answer paygate pipes (speech's audio, a file's
// content) and then drops the connection before the first byte of its
// body has sent the bot nothing, and the next target answers. paygate
// wrote the head on at once and aborted the connection at the cut:
// go-openai's CreateSpeech failed with a bare EOF (no status, no error
// JSON), the Node SDK retried on its own (the speech generated and billed
// again, on the same provider), and the second target, which would have
// answered, was never asked. The body's first bytes are now awaited
// before the head goes on, as an event stream's first event is.
func TestForwardedAnswerCutBeforeItsFirstByteFailsOver(t *testing.T) {
	const audio = "ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfbmp3-frames"
	for _, tc := range []struct {
		name, path, contentType string
		call                    func(t *testing.T, c *openai.Client) (string, http.Header, error)
	}{
		{"speech", "/v1/audio/speech", "audio/mpeg", func(t *testing.T, c *openai.Client) (string, http.Header, error) {
			r, err := c.CreateSpeech(context.Background(), openai.CreateSpeechRequest{Model: "gpt-test", Input: "hi", Voice: openai.VoiceAlloy})
			if err != nil {
				return "", nil, err
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			return string(b), r.Header(), err
		}},
		{"file content", "/v1/files/file-1/content", "application/octet-stream", func(t *testing.T, c *openai.Client) (string, http.Header, error) {
			r, err := c.GetFileContent(context.Background(), "file-1")
			if err != nil {
				return "", nil, err
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			return string(b), r.Header(), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cut := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.Header().Set("Content-Length", "4096")
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // the connection lost before the body
			})
			good := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				_, _ = io.WriteString(w, audio)
			})
			cfg := testConfig(t, cut.URL, func(c *config.Config) {
				second := c.Providers[0]
				second.Name, second.BaseURL = "second", good.URL+"/v1"
				c.Providers = append(c.Providers, second)
				for i := range c.Models {
					c.Models[i].Targets = append(c.Models[i].Targets, config.Target{Provider: "second", Model: c.Models[i].Targets[0].Model})
				}
			})
			proxyURL, _ := newTestProxy(t, cfg)
			got, h, err := tc.call(t, sdkClient(proxyURL))
			if err != nil {
				t.Fatalf("%v; want the second target's answer", err)
			}
			if got != audio || h.Get("Content-Type") != tc.contentType || h.Get("X-Paygate-Provider") != "second" {
				t.Errorf("%q, Content-Type %q, provider %q; want the second target's bytes as sent, %q, second",
					got, h.Get("Content-Type"), h.Get("X-Paygate-Provider"), tc.contentType)
			}
			if n := len(good.requests()); n != 1 {
				t.Errorf("the second target got %d requests; want 1", n)
			}
			for _, r := range cut.requests() {
				if !strings.HasSuffix(r.Path, tc.path) {
					t.Errorf("the first target got %s; want %s", r.Path, tc.path)
				}
			}
		})
	}
}
