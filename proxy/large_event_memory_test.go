package proxy

import (
	"bytes"
	"net/http"
	"runtime"
	"testing"

	"github.com/paygate/paygate/internal/heaptest"
)

// TestStreamedImageMemory: an image model's picture (a base64 data URL of
// tens of MiB in one event) is held once while the proxy relays it (twice
// in a payment turn's later round, whose chunks are rewritten under the
// turn's id: the event and its rewritten copy), and not at all once it is
// relayed, though the stream goes on. The sse Reader holds such an event once and lets go
// of it (sse's TestReaderLongEventMemory), but the plain path copied every
// event into its log of sent events (sentLog), and the turn's capture
// rewrote it into a buffer it kept for the next chunk: each held the
// picture once more to the stream's end, and a sidecar's memory is limited
// (deploy/kubernetes.yaml: 256 MiB). The upstream stops after the picture
// until the measures are taken, so the stream is still open; the bounds
// are generous (the transports' buffers, the test's garbage collected
// before each measure).
func TestStreamedImageMemory(t *testing.T) {
	const size = 30 << 20
	const kept = 2 << 20
	pic := bytes.Repeat([]byte("A"), size)
	for _, tc := range []struct {
		name  string
		turn  bool // a payment turn: the picture comes in the round after a create_order call
		chunk string
		held  int // the picture's copies at most while it is relayed
	}{
		{"plain stream", false, "c1", 1},
		{"payment turn's later round", true, "c0", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resume := make(chan struct{})
			head := []byte(`data: {"id":"` + tc.chunk + `","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{`)
			image := func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for _, b := range [][]byte{head, []byte(`"role":"assistant","content":"Here it is"},"finish_reason":null}]}` + "\n\n"),
					head, []byte(`"images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`), pic, []byte(`"}}]},"finish_reason":null}]}` + "\n\n")} {
					_, _ = w.Write(b)
				}
				w.(http.Flusher).Flush()
				<-resume
				_, _ = w.Write(append(head, `},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n"...))
			}
			var url, body string
			if tc.turn {
				fp := newFakeProvider(t, roundByRound(callsRound(true, `[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`), image))
				url, body = toolsProxy(t, fp.URL, &recordingTools{}, nil), chatBody(true, "")
			} else {
				fp := newFakeProvider(t, image)
				url, _ = newTestProxy(t, testConfig(t, fp.URL, nil))
				body = `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"draw"}]}`
			}
			base := heaptest.Live()
			resp := post(t, url, "/v1/chat/completions", body, map[string]string{"X-WeChat-OpenID": "o-user-1"})
			src := &heaptest.PeakReader{R: resp.Body}
			got := &imageEnd{}
			buf := make([]byte, 32<<10)
			for !got.seen {
				n, err := src.Read(buf)
				got.write(buf[:n])
				if err != nil {
					close(resume)
					t.Fatalf("the stream ended before the picture's end: %v", err)
				}
			}
			peak := max(src.Peak, heaptest.Live()) - base
			during := int64(heaptest.Live() - base)
			close(resume)
			rest := readAll(t, src)
			t.Logf("a %d MiB picture: %.1f MiB held at most while it was relayed, %.2f MiB after it with the stream open",
				size>>20, float64(peak)/(1<<20), float64(during)/(1<<20))
			if !bytes.HasSuffix([]byte(rest), []byte("data: [DONE]\n\n")) || got.size < size {
				t.Errorf("the picture's event had %d bytes, the stream ended %q; want the whole picture and [DONE]", got.size, rest)
			}
			if peak > uint64(size*(10*tc.held+3)/10) {
				t.Errorf("%d bytes held at most for a %d-byte picture; want at most %d.3 times the picture", peak, size, tc.held)
			}
			if during > kept {
				t.Errorf("%d bytes held once the picture was relayed, the stream still open; want at most %d", during, kept)
			}
			runtime.KeepAlive(pic)
		})
	}
}

// imageEnd follows a stream's bytes until the end of its first event over
// 1 MiB (seen), whose size it keeps.
type imageEnd struct {
	cur, size int
	last      byte
	seen      bool
}

func (e *imageEnd) write(b []byte) {
	for _, c := range b {
		if c == '\n' && e.last == '\n' {
			if e.cur > 1<<20 {
				e.size, e.seen = e.cur, true
			}
			e.cur = 0
		}
		e.cur++
		e.last = c
	}
}
