package failover

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/sse"
)

// errorNullChunks are chunks with "error" members and near misses: a null
// error at the top and in a choice as relays send them on every chunk,
// spaced, beside an error that is not null, beside "type"/"object" or a
// finish_reason "error", keys merely ending in "rror", escaped quotes.
var errorNullChunks = []string{
	`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null,"error":null}`,
	`{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null,"error":null}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop","error":null}],"error" : null}`,
	"{\"error\"\n:\tnull,\"choices\":[]}",
	`{"error":null}`, `{"error":null,"type":"error","message":"overloaded"}`, `{"error":null,"object":"error","message":"x","code":400}`,
	`{"error":null,"choices":[{"index":0,"delta":{},"finish_reason":"error"}]}`,
	`{"error":null,"choices":[{"index":0,"delta":{},"finish_reason":"network_error","native_finish_reason":"abort"}]}`,
	`{"error":null,"choices":[{"index":0,"delta":{},"finish_reason":"insufficient_system_resource"}]}`,
	`{"error":null,"choices":[{"index":0,"delta":{},"finish_reason":null,"error":{"message":"cut","code":502}}]}`,
	`{"error":{"message":"overloaded","type":"server_error"},"choices":[]}`, `{"error":{},"choices":[]}`, `{"error":"","id":"c"}`,
	`{"error":false,"choices":[]}`, `{"error":0,"choices":[]}`, `{"error":[],"id":"c"}`, `{"error":"boom"}`,
	`{"mirror":null,"choices":[]}`, `{"terror":"x"}`, `{"a\"error":null,"error":{"message":"m"}}`,
	`{"choices":[{"delta":{"content":"\"error\": null"}}],"error":null}`,
	`{"choices":[{"delta":{"content":"\"error\"}"}}],"error":null}`,
	`{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\"error\":null}"}}]}}],"error":null}`,
	`{"choices":[],"error":null,"usage":{"prompt_tokens":3}}`, `{"error":null,"error":{"message":"second"}}`,
	`{"error":{"message":"first"},"error":null}`, `{"nested":{"error":null},"error":{"code":"x"}}`,
}

// TestErrorNullIsNoError: a chunk whose every "error" member is null
// (OpenAI-compatible relays' "error":null on each chunk) is known to hold
// no error once the first token has passed (EventMayHoldError false), as
// a chunk without the member is: the relay then runs no error search of
// its own, nor failover its error object parse. One whose error is not
// null, or with "error" as a value, still may.
func TestErrorNullIsNoError(t *testing.T) {
	const c = `{"id":"c1","object":"chat.completion.chunk",`
	clean := map[string]bool{
		c + `"choices":[{"index":0,"delta":{"content":" a"},"finish_reason":null}],"usage":null,"error":null}`:        true,
		c + `"choices":[{"index":0,"delta":{"content":" b"},"finish_reason":null,"error":null}],"error" : null}`:      true,
		c + `"choices":[{"index":0,"delta":{"content":" c"},"finish_reason":null}],"error":{}}`:                       false,
		c + `"choices":[{"index":0,"delta":{"content":" d"},"finish_reason":null}],"error":null,"note":"error"}`:      false,
		c + `"choices":[{"index":0,"delta":{"content":" e"},"finish_reason":null}],"error":null,"note":"mirror"}`:     false,
		c + `"choices":[{"index":0,"delta":{"content":" f"},"finish_reason":null}],"error":null,"z":{"error":false}}`: false,
	}
	var order []string
	for ev := range clean {
		order = append(order, ev)
	}
	e := newEnv(t, map[string]func(c *fconn, n int){
		"a": always(func(fc *fconn) {
			fc.sse()
			fc.event(roleChunk())
			fc.event(contentChunk("Hello"))
			for _, ev := range order {
				fc.event(ev)
			}
			fc.event(finishChunk())
			fc.done()
		}),
	}, []string{"a"}, nil)
	resp, err := e.r.Open(t.Context(), &Request{Model: "gpt", Path: "/chat/completions", Body: chatBody(true), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	seen := 0
	for {
		ev, err := resp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want, ok := clean[string(ev.Data)]
		if !ok {
			continue
		}
		seen++
		if may := resp.EventMayHoldError(); may == want {
			t.Errorf("%s: EventMayHoldError %v; want %v", ev.Data, may, !want)
		}
	}
	if seen != len(clean) {
		t.Errorf("saw %d of the %d events", seen, len(clean))
	}
}

// TestErrorTailsNullChangesNothing holds the cleared mark to what the
// event's checks found with it: the same failure (or none) from
// eventErrorMarked, and nothing for DropEmptyError to drop.
func TestErrorTailsNullChangesNothing(t *testing.T) {
	cleared := 0
	for _, s := range errorNullChunks {
		if checkErrorTailsNull(t, []byte(s)) {
			cleared++
		}
	}
	if cleared < 8 {
		t.Errorf("%d chunks cleared; want the 8 or more whose every error is null", cleared)
	}
}

// FuzzErrorTailsNull: TestErrorTailsNullChangesNothing on any input.
func FuzzErrorTailsNull(f *testing.F) {
	for _, s := range errorNullChunks {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkErrorTailsNull(t, data) })
}

func checkErrorTailsNull(t *testing.T, data []byte) bool {
	t.Helper()
	m, ok := scanEvent(data)
	if !ok || m&markErrorTail == 0 || !errorTailsNull(data) {
		return false
	}
	ev := sse.Event{Data: data}
	with, without := eventErrorMarked(ev, m), eventErrorMarked(ev, m&^markErrorTail)
	if !reflect.DeepEqual(with, without) {
		t.Errorf("%s: eventErrorMarked %+v with markErrorTail, %+v without", data, with, without)
	}
	if out := interceptors.DropEmptyError(data); !bytes.Equal(out, data) {
		t.Errorf("%s: DropEmptyError made %s of a chunk cleared of markErrorTail", data, out)
	}
	return true
}
