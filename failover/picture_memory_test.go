package failover

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/heaptest"
)

// TestPictureOpeningAStreamNotHeldAfterItIsReturned: an image model asked
// for the picture alone streams it as its first chunk (a base64 data URL of
// tens of MiB in one event), the answer's first token. Response kept that
// event (cur) after Next returned it, until Buffered read another event
// ahead in its place, possibly never: the picture was held once more for
// the rest of the stream, though the sse Reader lets go of it once it is
// consumed, and a sidecar's memory is limited (deploy/: 256 MiB). The bound is
// generous: the transports' buffers, the test's garbage collected before
// each measure.
func TestPictureOpeningAStreamNotHeldAfterItIsReturned(t *testing.T) {
	const size = 30 << 20
	const kept = 2 << 20
	pic := strings.Repeat("A", size)
	picture := choicesChunk(`{"index":0,"delta":{"role":"assistant","content":"","images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + pic + `"}}]},"finish_reason":null}`)
	script := func(c *fconn, _ int) {
		c.sse()
		c.event(picture)
		c.event(contentChunk("Here it is"))
		c.event(finishChunk())
		c.done()
	}
	e := newEnv(t, map[string]func(c *fconn, n int){"a": script}, []string{"a"}, raisePictureTimeouts)
	base := heaptest.Live()
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(true),
		Stream: true, ContentType: "application/json", Accept: "text/event-stream"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	ev, err := resp.Next()
	if err != nil || len(ev.Data) != len(picture) {
		t.Fatalf("got %d bytes, %v; want the picture's event of %d", len(ev.Data), err, len(picture))
	}
	if ev, err = resp.Next(); err != nil || !strings.Contains(string(ev.Data), "Here it is") {
		t.Fatalf("the event after the picture: %.200s, %v", ev.Data, err)
	}
	after := int64(heaptest.Live() - base)
	t.Logf("a %d MiB picture: %.2f MiB held once the event after it was read", size>>20, float64(after)/(1<<20))
	if after > kept {
		t.Errorf("%d bytes held once the event after the picture was read; want at most %d", after, kept)
	}
	runtime.KeepAlive(pic)
	runtime.KeepAlive(picture)
}

// raisePictureTimeouts gives provider a the time to send a picture of tens
// of MiB on a loaded machine under -race: its timeouts are not under test.
func raisePictureTimeouts(c *config.Config) {
	to := &c.Providers[0].Timeouts
	to.FirstToken, to.Idle, to.Total = config.Duration(time.Minute), config.Duration(time.Minute), config.Duration(time.Minute)
}
