package proxy

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

// sdkClient is a go-openai client of the test proxy.
func sdkClient(proxyURL string) *openai.Client {
	return botClient(proxyURL, false)
}

// botClient is a go-openai client of the proxy at proxyURL with the test
// client's key, signed in as the end user o-user-1 (X-WeChat-OpenID on
// every request) when user, as a payment bot's is.
func botClient(proxyURL string, user bool) *openai.Client {
	c := openai.DefaultConfig(testClientKey)
	c.BaseURL = proxyURL + "/v1"
	if user {
		c.HTTPClient = &http.Client{Transport: withOpenID{"o-user-1"}}
	}
	return openai.NewClientWithConfig(c)
}

// TestSDKForwardedCalls: go-openai reads what paygate answers on the paths
// other than chat completions: the config's models (listed and retrieved,
// an unknown one a 404 APIError), embeddings in base64 mapped to the
// target's upstream model, a transcription whose form field "model" is
// mapped, a file's binary content byte for byte, and a provider's 404 on a
// path paygate does not know.
func TestSDKForwardedCalls(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/embeddings":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPwAAAEA="}],"model":"vendor/embed","usage":{"prompt_tokens":1,"total_tokens":1}}`)
		case r.URL.Path == "/v1/audio/transcriptions":
			mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if mt != "multipart/form-data" {
				w.WriteHeader(400)
				return
			}
			mr := multipart.NewReader(r.Body, params["boundary"])
			model := ""
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				b, _ := io.ReadAll(p)
				if p.FormName() == "model" {
					model = string(b)
				}
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"text":"model `+model+`"}`)
		case r.URL.Path == "/v1/files/file-1/content":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.WriteString(w, "\x00\x01binary")
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":{"message":"no route `+r.URL.Path+`","type":"invalid_request_error"}}`)
		}
	})
	proxyURL, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	c := sdkClient(proxyURL)
	ctx := context.Background()
	ms, err := c.ListModels(ctx)
	if err != nil || len(ms.Models) != 2 || ms.Models[0].ID != "gpt-test" || ms.Models[1].ID != "embed-test" {
		t.Errorf("ListModels: %+v, %v; want gpt-test and embed-test", ms.Models, err)
	}
	if m, err := c.GetModel(ctx, "embed-test"); err != nil || m.ID != "embed-test" || m.Object != "model" {
		t.Errorf("GetModel(embed-test): %+v, %v", m, err)
	}
	var apiErr *openai.APIError
	if _, err := c.GetModel(ctx, "vendor/embed"); !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 {
		t.Errorf("GetModel of an upstream name: %v; want a 404 APIError", err)
	}
	e, err := c.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{Input: []string{"a"}, Model: "embed-test",
		EncodingFormat: openai.EmbeddingEncodingFormatBase64})
	if err != nil || len(e.Data) != 1 || len(e.Data[0].Embedding) != 2 || e.Data[0].Embedding[0] != 1 || e.Data[0].Embedding[1] != 2 {
		t.Errorf("CreateEmbeddings: %+v, %v; want [1 2]", e, err)
	}
	tr, err := c.CreateTranscription(ctx, openai.AudioRequest{Model: "embed-test", FilePath: "x.mp3", Reader: strings.NewReader("ID3audio")})
	if err != nil || tr.Text != "model vendor/embed" {
		t.Errorf("CreateTranscription: %+v, %v; want the form's model mapped to vendor/embed", tr, err)
	}
	rc, err := c.GetFileContent(ctx, "file-1")
	if err != nil {
		t.Fatalf("GetFileContent: %v", err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "\x00\x01binary" {
		t.Errorf("file content %q", b)
	}
	rc.Close()
	if _, err := c.RetrieveBatch(ctx, "batch_x"); !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 || !strings.Contains(apiErr.Message, "no route /v1/batches/batch_x") {
		t.Errorf("RetrieveBatch: %v; want the provider's 404 and reason", err)
	}
}
