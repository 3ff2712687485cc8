package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// The fake upstream knows two models: benchModel answers at once (the streamed
// answer is written as fast as the connection takes it), slowModel streams one
// chunk every slowInterval so that many streams are open at the same time.
const (
	benchModel   = "bench"
	slowModel    = "bench-slow"
	fakeID       = "chatcmpl-bench9f3c2a"
	fakeCreated  = 1767225600
	fakeFP       = "fp_bench01"
	answerPrompt = 42
)

// answerWords is the streamed answer, one delta per element; the non-stream
// answer is their concatenation.
var answerWords = []string{
	"We", " offer", " a", " Premium", " tier", " at", " 49.99", " CNY", " per", " month", ":",
	" priority", " answers", " and", " longer", " conversations", ".", " Would", " you", " like", " it", "?",
}

// upstreamConfig shapes the fake provider's slow streams.
type upstreamConfig struct {
	SlowInterval time.Duration // pause before each content chunk of slowModel
	SlowChunks   int           // content chunks of a slowModel stream
}

// modelAnswers holds everything the fake upstream writes for one model,
// rendered once so that serving costs as little as a real provider's edge.
type modelAnswers struct {
	completion []byte   // chat.completion JSON
	role       []byte   // first SSE event: the assistant role
	deltas     [][]byte // one SSE event per content delta
	finish     []byte   // the event with finish_reason
	usage      []byte   // the usage event, sent when stream_options.include_usage
	// includeUsage is the stream as OpenAI sends it to a request with
	// stream_options.include_usage (paygate always asks for it): every
	// chunk before the usage event carries "usage":null.
	includeUsage *modelAnswers
}

// fakeUpstream is an OpenAI-compatible /v1/chat/completions endpoint speaking
// the real wire format: chat.completion JSON, or SSE chat.completion.chunk
// events closed by "data: [DONE]".
type fakeUpstream struct {
	cfg     upstreamConfig
	answers map[string]*modelAnswers
	bufs    sync.Pool
}

func newFakeUpstream(cfg upstreamConfig) (*fakeUpstream, error) {
	u := &fakeUpstream{cfg: cfg, answers: make(map[string]*modelAnswers)}
	u.bufs.New = func() any { return new(bytes.Buffer) }
	for _, m := range []string{benchModel, slowModel} {
		a, err := renderAnswers(m)
		if err != nil {
			return nil, fmt.Errorf("render answers for %s: %w", m, err)
		}
		u.answers[m] = a
	}
	return u, nil
}

type chunkDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     any        `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	Usage             *usage        `json:"usage,omitempty"`
}

func renderAnswers(model string) (*modelAnswers, error) {
	var text string
	for _, w := range answerWords {
		text += w
	}
	u := usage{PromptTokens: answerPrompt, CompletionTokens: len(answerWords), TotalTokens: answerPrompt + len(answerWords)}
	stop := "stop"
	completion, err := json.Marshal(map[string]any{
		"id":                 fakeID,
		"object":             "chat.completion",
		"created":            fakeCreated,
		"model":              model,
		"system_fingerprint": fakeFP,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": text, "refusal": nil},
			"logprobs":      nil,
			"finish_reason": stop,
		}},
		"usage": u,
	})
	if err != nil {
		return nil, err
	}
	event := func(c chunk) ([]byte, error) {
		c.ID, c.Object, c.Created, c.Model, c.SystemFingerprint = fakeID, "chat.completion.chunk", fakeCreated, model, fakeFP
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		return append(append([]byte("data: "), b...), '\n', '\n'), nil
	}
	a := &modelAnswers{completion: completion}
	if a.role, err = event(chunk{Choices: []chunkChoice{{Delta: chunkDelta{Role: "assistant"}}}}); err != nil {
		return nil, err
	}
	for _, w := range answerWords {
		e, err := event(chunk{Choices: []chunkChoice{{Delta: chunkDelta{Content: w}}}})
		if err != nil {
			return nil, err
		}
		a.deltas = append(a.deltas, e)
	}
	if a.finish, err = event(chunk{Choices: []chunkChoice{{FinishReason: &stop}}}); err != nil {
		return nil, err
	}
	if a.usage, err = event(chunk{Choices: []chunkChoice{}, Usage: &u}); err != nil {
		return nil, err
	}
	nullUsage := func(ev []byte) []byte {
		// "data: {…}\n\n" with `,"usage":null` before its last brace.
		n := len(ev) - len("}\n\n")
		return append(append(append([]byte(nil), ev[:n]...), `,"usage":null`...), ev[n:]...)
	}
	a.includeUsage = &modelAnswers{completion: completion, role: nullUsage(a.role), finish: nullUsage(a.finish), usage: a.usage}
	for _, d := range a.deltas {
		a.includeUsage.deltas = append(a.includeUsage.deltas, nullUsage(d))
	}
	return a, nil
}

var (
	doneEvent        = []byte("data: [DONE]\n\n")
	modelNotFoundErr = []byte(`{"error":{"message":"The model does not exist.","type":"invalid_request_error","param":"model","code":"model_not_found"}}`)
)

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.NotFound(w, r)
		return
	}
	buf := u.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer u.bufs.Put(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	body := buf.Bytes()
	res := gjson.GetManyBytes(body, "model", "stream", "stream_options.include_usage")
	a, ok := u.answers[res[0].String()]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(modelNotFoundErr)
		return
	}
	h := w.Header()
	h["X-Request-Id"] = []string{"req_bench"} // a provider header a proxy may pass or drop
	if !res[1].Bool() {
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(a.completion))}
		_, _ = w.Write(a.completion)
		return
	}
	if res[2].Bool() {
		a = a.includeUsage
	}
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(ev []byte) bool {
		if _, err := w.Write(ev); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(a.role) {
		return
	}
	if res[0].String() == slowModel {
		if !u.slowDeltas(r, a, send) {
			return
		}
	} else {
		for _, d := range a.deltas {
			if !send(d) {
				return
			}
		}
	}
	if !send(a.finish) {
		return
	}
	if res[2].Bool() && !send(a.usage) {
		return
	}
	send(doneEvent)
}

// slowDeltas writes SlowChunks content events, one per SlowInterval, and stops
// early when the client goes away.
func (u *fakeUpstream) slowDeltas(r *http.Request, a *modelAnswers, send func([]byte) bool) bool {
	t := time.NewTimer(u.cfg.SlowInterval)
	defer t.Stop()
	for i := 0; i < u.cfg.SlowChunks; i++ {
		select {
		case <-r.Context().Done():
			return false
		case <-t.C:
		}
		if !send(a.deltas[i%len(a.deltas)]) {
			return false
		}
		t.Reset(u.cfg.SlowInterval)
	}
	return true
}

// drainClose reads what is left of a body so the connection can be reused.
func drainClose(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, rc)
	_ = rc.Close()
}
