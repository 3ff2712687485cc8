package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// audioRound answers one round of an audio-output model (gpt-4o-audio:
// the words in audio.transcript, content null) whose speech is id, data
// and transcript, with the tool calls calls ("" for none), streamed or
// not.
func audioRound(stream bool, id, data, transcript, calls string) http.HandlerFunc {
	finish := "stop"
	if calls != "" {
		finish = "tool_calls"
	}
	if stream {
		events := []string{
			roundChunk + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}` + "\n\n",
			roundChunk + `[{"index":0,"delta":{"audio":{"id":"` + id + `","transcript":"` + transcript + `"}},"finish_reason":null}]}` + "\n\n",
			roundChunk + `[{"index":0,"delta":{"audio":{"id":"` + id + `","data":"` + data + `","expires_at":1700003600}},"finish_reason":null}]}` + "\n\n",
		}
		if calls != "" {
			events = append(events, roundChunk+`[{"index":0,"delta":{"tool_calls":`+calls+`},"finish_reason":null}]}`+"\n\n")
		}
		return sseHandler(append(events, roundChunk+`[{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`+"\n\n", "data: [DONE]\n\n")...)
	}
	msg := `{"role":"assistant","content":null,"refusal":null,"audio":{"id":"` + id + `","data":"` + data + `","expires_at":1700003600,"transcript":"` + transcript + `"}`
	if calls != "" {
		msg += `,"tool_calls":` + calls
	}
	return jsonHandler(200, `{"id":"c0","object":"chat.completion","created":1,"model":"gpt-4o-audio-preview","choices":[{"index":0,"message":`+msg+`},"finish_reason":"`+finish+`"}]}`)
}

// TestAudioOutputAcrossPaymentRounds: a bot that asked for speech
// (modalities ["text","audio"]) gets each round's speech as the README
// says: streamed, every round's delta.audio as it came, each under its
// round's id, in order; not streamed, the last round's audio whole (its
// id, data, transcript and expiry), and nothing of a payment round's
// (audio data of two rounds is not one file a bot can play: two WAV
// headers).
func TestAudioOutputAcrossPaymentRounds(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run("stream="+strconv.FormatBool(stream), func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(
				audioRound(stream, "audio_1", "UklGRjEx", "Ordering premium.", createOrderCall),
				audioRound(stream, "audio_2", "UklGRjIy", "Your order is ready.", "")))
			tools := &recordingTools{}
			url := toolsProxy(t, fp.URL, tools, nil)
			members := `"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"},`
			resp := post(t, url, "/v1/chat/completions", chatBody(stream, members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			if resp.StatusCode != 200 || len(tools.executed()) != 1 {
				t.Fatalf("status %d, executed %v; want one create_order and an answer:\n%s", resp.StatusCode, tools.executed(), body)
			}
			if !stream {
				audio := gjson.Get(body, "choices.0.message.audio")
				if audio.Raw != `{"id":"audio_2","data":"UklGRjIy","expires_at":1700003600,"transcript":"Your order is ready."}` {
					t.Errorf("the answer's audio is %s; want the last round's whole", audio.Raw)
				}
				if strings.Contains(body, "audio_1") || strings.Contains(body, "Ordering premium.") {
					t.Errorf("the answer carries the payment round's speech:\n%s", body)
				}
				return
			}
			var ids, said []string
			for _, c := range streamChunks(body) {
				a := gjson.Get(c, "choices.0.delta.audio")
				if !a.Exists() {
					continue
				}
				ids = append(ids, a.Get("id").Str)
				said = append(said, a.Get("transcript").Str)
			}
			if strings.Join(ids, " ") != "audio_1 audio_1 audio_2 audio_2" || strings.Join(said, "") != "Ordering premium.Your order is ready." {
				t.Errorf("the bot read audio deltas of ids %q saying %q; want each round's, in order", ids, said)
			}
		})
	}
}

// TestAudioOutputWhenRoundsAreSpent: a turn whose rounds are spent ends
// with paygate's clarification as its text (as the refusal, for a
// json_schema bot), and the last round, whose calls did not run, is a
// payment round: its speech ("Ordering premium.") is not in the answer,
// as the README says of a payment round's speech, so a voice bot does not
// play words about an order the turn did not make in place of the
// question.
func TestAudioOutputWhenRoundsAreSpent(t *testing.T) {
	const schema = `"response_format":{"type":"json_schema","json_schema":{"name":"reply","strict":true,"schema":{"type":"object","properties":{"reply":{"type":"string"}},"required":["reply"],"additionalProperties":false}}},`
	for name, format := range map[string]string{"text": "", "json_schema": schema} {
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, audioRound(false, "audio_1", "UklGRjEx", "Ordering premium.", createOrderCall))
			url := toolsProxy(t, fp.URL, &recordingTools{}, nil)
			members := format + `"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"},`
			resp := post(t, url, "/v1/chat/completions", chatBody(false, members), map[string]string{"X-WeChat-OpenID": "o-user-1"})
			body := readAll(t, resp.Body)
			msg := gjson.Get(body, "choices.0.message")
			if resp.StatusCode != 200 || !strings.Contains(msg.Get("content").Str+msg.Get("refusal").Str, config.DefaultClarification) {
				t.Fatalf("status %d; want the clarification:\n%s", resp.StatusCode, body)
			}
			if msg.Get("audio").Exists() || strings.Contains(body, "Ordering premium.") {
				t.Errorf("the answer carries the payment round's speech %s beside the clarification:\n%s", msg.Get("audio").Raw, body)
			}
		})
	}
}
