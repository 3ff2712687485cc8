package failover

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/internal/heaptest"

	"github.com/tidwall/gjson"
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
	to.FirstByte, to.FirstToken, to.Idle, to.Total = config.Duration(time.Minute), config.Duration(time.Minute), config.Duration(time.Minute), config.Duration(time.Minute)
}

// TestPictureInEventsAnsweringANonStreamRequest: an image model that
// answers a non-stream request with events (a provider that ignores
// "stream": false) puts its picture in one of them, tens of MiB; the
// events are assembled into the chat completion (completionBuilder). Each
// step copied the picture: the event parsed (gjson.ParseBytes), the list
// of pictures joined and bracketed (listJSON), encoding/json compacting it
// and writing it out, its buffer then kept in a pool for a couple of
// collections: about 285 MiB allocated for a 30 MiB picture, 60 MiB of it
// live at once beyond the body, where a sidecar's memory is limited
// (deploy/: 256 MiB). The answer is the picture's and nothing is held
// beside it once assembled; the peak, sampled while the body is read and
// assembled, is bounded generously: the body, grown by append while read,
// and the sse Reader's line buffer, grown so too, each take up to twice the
// picture for a moment.
func TestPictureInEventsAnsweringANonStreamRequest(t *testing.T) {
	const size = 30 << 20
	const kept = 2 << 20
	pic := strings.Repeat("A", size)
	image := `{"type":"image_url","image_url":{"url":"data:image/png;base64,` + pic + `"}}`
	picture := "data: " + choicesChunk(`{"index":0,"delta":{"role":"assistant","content":"Here it is","images":[`+image+`]},"finish_reason":null}`) + "\n\n"
	script := func(c *fconn, _ int) {
		c.sse()
		for rest := picture; rest != ""; { // in pieces: the fake's copies are not measured
			n := min(len(rest), 1<<20)
			c.chunk(rest[:n])
			rest = rest[n:]
		}
		c.event(choicesChunk(`{"index":0,"delta":{},"finish_reason":"stop"}`))
		c.done()
	}
	e := newEnv(t, map[string]func(c *fconn, n int){"a": script}, []string{"a"}, raisePictureTimeouts)
	base := heaptest.Live()
	var peak uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
				peak = max(peak, heaptest.Live())
			}
		}
	}()
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Method: "POST", Path: "/chat/completions", Body: chatBody(false),
		ContentType: "application/json", Accept: "text/event-stream"})
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	after := int64(heaptest.Live()-base) - int64(len(resp.Body))
	held := int64(peak) - int64(base)
	t.Logf("a %d MiB picture assembled: %.1f MiB held at most (sampled), %.2f MiB beside the answer after", size>>20,
		float64(held)/(1<<20), float64(after)/(1<<20))
	if g := gjson.GetBytes(resp.Body, "choices.0.message.images").Raw; g != "["+image+"]" {
		t.Errorf("message.images has %d bytes; want the picture's %d", len(g), len(image)+2)
	}
	if g := gjson.GetBytes(resp.Body, "choices.0.message.content").Str; g != "Here it is" {
		t.Errorf("message.content %q; want Here it is", g)
	}
	if after > kept {
		t.Errorf("%d bytes held beside the assembled answer; want at most %d", after, kept)
	}
	if held > 4*size {
		t.Errorf("%d bytes held at most while a %d-byte picture was read and assembled; want at most 4 times the picture", held, size)
	}
	runtime.KeepAlive(pic)
	runtime.KeepAlive(picture)
}

// TestPictureEventTakenFromTheBody: an event of tens of MiB answering a
// non-stream request is taken into the builder from the body it was read
// from (bodyText), not copied: a copy held the picture once more while the
// answer was assembled. TestPictureInEventsAnsweringANonStreamRequest's
// peak is the body's read, so it passed with the copy.
func TestPictureEventTakenFromTheBody(t *testing.T) {
	const size = 30 << 20
	event := choicesChunk(`{"index":0,"delta":{"images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` +
		strings.Repeat("A", size) + `"}}]},"finish_reason":null}`)
	data := []byte(": keep-alive\n\ndata: " + event + "\n\n")
	ev := []byte(event) // as the sse Reader gives it, in its own buffer
	b := completionBuilder{limit: 2 * size}
	from := 0
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := b.add(bodyText(data, &from, ev), false)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("%d bytes allocated taking in a %d-byte event; want it taken from the body", n, len(ev))
	}
	if want := len(data) - len("\n\n"); from != want {
		t.Errorf("the next search starts at %d; want %d, past the event", from, want)
	}
}
