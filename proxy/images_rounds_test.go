package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/internal/jsonstr"
)

// pictureRound answers one round as an image model through OpenRouter
// (google/gemini-2.5-flash-image) does: its text, then each of pics as a
// picture, {"type":"image_url","image_url":{"url":"data:…"},"index":i},
// numbered from 0 in the round, its tool calls (createOrderCall's shape,
// "" for none) and its finish; streamed, each picture in a delta of its
// own, or as a chat.completion's message.images.
func pictureRound(stream bool, text, calls, finish string, pics ...string) http.HandlerFunc {
	var imgs []string
	for i, p := range pics {
		imgs = append(imgs, fmt.Sprintf(`{"type":"image_url","image_url":{"url":"data:image/png;base64,%s"},"index":%d}`, p, i))
	}
	q := string(jsonstr.Append(nil, text))
	events := []string{roundChunk + `[{"index":0,"delta":{"role":"assistant","content":` + q + `},"finish_reason":null}]}` + "\n\n"}
	for _, img := range imgs {
		events = append(events, roundChunk+`[{"index":0,"delta":{"role":"assistant","content":"","images":[`+img+`]},"finish_reason":null}]}`+"\n\n")
	}
	return endedRound(stream, events, `{"role":"assistant","content":`+q+`,"images":[`+strings.Join(imgs, ",")+`]`, calls, finish)
}

// picturesByIndex is the pictures of images entries as an SDK's stream
// helper joins them (openai-python's accumulate_delta): by index, their
// urls concatenated; entries without an index each a picture of its own.
func picturesByIndex(entries []gjson.Result) []string {
	var out []string
	for _, e := range entries {
		url := strings.TrimPrefix(e.Get("image_url.url").Str, "data:image/png;base64,")
		ix := e.Get("index")
		if !ix.Exists() {
			out = append(out, url)
			continue
		}
		for len(out) <= int(ix.Int()) {
			out = append(out, "")
		}
		out[ix.Int()] += url
	}
	return out
}

// TestStreamedPicturesIndexedAcrossRounds: a later round's pictures
// (delta.images) reach the bot under indexes after the earlier rounds',
// as its reasoning_details blocks and its own tool calls do: each round
// numbers its pictures from 0, and a stream helper that joins the entries
// of one index glued round 2's picture onto round 1's, one data URL that
// is no picture.
func TestStreamedPicturesIndexedAcrossRounds(t *testing.T) {
	fp := newFakeProvider(t, roundByRound(
		pictureRound(true, "Here is your plan card. ", createOrderCall, "tool_calls", "CARD", "BADGE"),
		pictureRound(true, "And your receipt.", "", "stop", "RECEIPT"),
	))
	url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
	body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(true, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
	var entries []gjson.Result
	for _, c := range streamChunks(body) {
		entries = append(entries, gjson.Get(c, "choices.0.delta.images").Array()...)
	}
	if got, want := picturesByIndex(entries), []string{"CARD", "BADGE", "RECEIPT"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the bot's pictures, joined by index: %q; want %q\n%s", got, want, body)
	}
}

// TestNonStreamAnswerKeepsEveryRoundsPictures: the one chat.completion of
// a turn with a payment round carries every round's pictures
// (message.images), the earlier rounds' first, numbered after them, as a
// streaming bot reads them: it kept the last round's alone, and the
// picture the model drew before its payment call was lost. Whether the
// provider answers with JSON or, ignoring "stream": false, with events.
func TestNonStreamAnswerKeepsEveryRoundsPictures(t *testing.T) {
	for _, events := range []bool{false, true} {
		t.Run(fmt.Sprint("events=", events), func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(
				pictureRound(events, "Here is your plan card. ", createOrderCall, "tool_calls", "CARD", "BADGE"),
				pictureRound(events, "And your receipt.", "", "stop", "RECEIPT"),
			))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			body := readAll(t, post(t, url, "/v1/chat/completions", chatBody(false, ""), map[string]string{"X-WeChat-OpenID": "o-user-1"}).Body)
			var got []string
			for _, e := range gjson.Get(body, "choices.0.message.images").Array() {
				got = append(got, e.Get("index").Raw+" "+strings.TrimPrefix(e.Get("image_url.url").Str, "data:image/png;base64,"))
			}
			if want := []string{"0 CARD", "1 BADGE", "2 RECEIPT"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("the answer's pictures (index and data) %q; want %q\n%s", got, want, body)
			}
		})
	}
}
