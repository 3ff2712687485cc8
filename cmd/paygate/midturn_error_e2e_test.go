package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"
)

// TestMidTurnUpstreamErrorCarriesItsCode: when the round after a payment
// call fails at every provider, the stream (whose first bytes the bot
// already has) ends with an error event that names the cause in its code,
// as the same failure before the first byte does; it said code null, so a
// bot could not branch on it.
func TestMidTurnUpstreamErrorCarriesItsCode(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"role":"tool"`) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":{"message":"model overloaded","type":"server_error"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range purchaseScript(string(b)).chunks {
			_, _ = io.WriteString(w, "data: "+c+"\n\n")
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	url, _ := paymentApp(t, up.URL, "")
	stream, err := userClient(url).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Stream: true,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "I want premium for a month"}},
	})
	if err != nil {
		t.Fatalf("stream open: %v", err)
	}
	defer stream.Close()
	for {
		_, err = stream.Recv()
		if err != nil {
			break
		}
	}
	var ae *openai.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("the stream ended with %v; want an error event", err)
	}
	if ae.Code != "upstream_server_error" {
		t.Errorf("error event code %v (message %q); want upstream_server_error, as before the first byte", ae.Code, ae.Message)
	}
}
