package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestStreamedImageChunkOverFourMiB: an image model behind an
// OpenAI-compatible API (OpenRouter's Gemini image models) streams its
// picture as a base64 data URL in one chunk, several MiB of one event. The
// SDKs read such an event whatever its size, and a non-stream answer may
// hold 32 MiB, but the stream reader refused any event over 4 MiB as
// malformed: the bot's stream ended with upstream_malformed_response after
// the text, the picture lost.
func TestStreamedImageChunkOverFourMiB(t *testing.T) {
	const head = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{`
	pic := strings.Repeat("A", 5<<20)
	fp := newFakeProvider(t, sseHandler(
		"data: "+head+`"role":"assistant","content":"Here it is"},"finish_reason":null}]}`+"\n\n",
		"data: "+head+`"images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`+pic+`"}}]},"finish_reason":null}]}`+"\n\n",
		"data: "+head+`},"finish_reason":"stop"}]}`+"\n\n",
		"data: [DONE]\n\n"))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"draw"}]}`, nil)
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `"error"`) || !strings.Contains(body, pic) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		if len(body) > 500 {
			body = body[:500] + "…"
		}
		t.Errorf("got %d %s; want 200 with the whole image, [DONE] and no error", resp.StatusCode, body)
	}
	if n := len(fp.requests()); n != 1 {
		t.Errorf("provider asked %d times; want once", n)
	}
}

// TestStreamedImageBeforeAnyText: an image model asked for the picture
// alone (modalities ["image"]) streams it as the first chunk with content
// "", before any text. The picture is the answer begun, but only text,
// reasoning, a refusal, tool calls or audio counted as its first token:
// held as a chunk before it, the picture passed the 1 MiB of such chunks
// held and the stream failed over as malformed, the image generated and
// billed again by each attempt, and the bot got a 502.
func TestStreamedImageBeforeAnyText(t *testing.T) {
	const head = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{`
	pic := strings.Repeat("A", 2<<20)
	fp := newFakeProvider(t, sseHandler(
		"data: "+head+`"role":"assistant","content":"","images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`+pic+`"}}]},"finish_reason":null}]}`+"\n\n",
		"data: "+head+`},"finish_reason":"stop"}]}`+"\n\n",
		"data: [DONE]\n\n"))
	url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"modalities":["image"],"messages":[{"role":"user","content":"draw"}]}`, nil)
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `"error"`) || !strings.Contains(body, pic) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		if len(body) > 500 {
			body = body[:500] + "…"
		}
		t.Errorf("got %d %s; want 200 with the whole image, [DONE] and no error", resp.StatusCode, body)
	}
	if n := len(fp.requests()); n != 1 {
		t.Errorf("provider asked %d times; want once", n)
	}
}
