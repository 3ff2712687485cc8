package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"
)

// TestOrderOfAFailedTurnReachesTheNextTurn: the round after create_order
// finds no provider (every attempt a 500), stream and non-stream. The
// order stands at the simulator, once; the bot gets an error (an error
// event after the first round's text, never [DONE]; a 502) that hands it
// the order's order_created with its payment parameters (streaming on a
// chunk before the error event); and the user's next message, answered,
// carries it again, once (SPEC 3, 5: a failure after bytes reached the
// client ends the stream with an error; nothing of a failed turn is
// counted as delivered).
func TestOrderOfAFailedTurnReachesTheNextTurn(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "stream", false: "non-stream"}[stream], func(t *testing.T) {
			var failing atomic.Bool
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				body := string(b)
				stream := strings.Contains(body, `"stream":true`)
				switch {
				case strings.Contains(body, `"role":"tool"`) && failing.Load():
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusInternalServerError)
					_, _ = io.WriteString(w, `{"error":{"message":"upstream overloaded","type":"server_error"}}`)
				case strings.Contains(body, `"content":"buy premium"`) && !strings.Contains(body, `"role":"tool"`):
					failing.Store(true)
					writeRound(w, stream, "Ordering. ", `[{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`)
				default:
					writeRound(w, stream, "Here you go.", "")
				}
			}))
			t.Cleanup(up.Close)
			url, a := paymentApp(t, up.URL, "")
			const user = "oUser-failed-turn"
			streamMember := ""
			if stream {
				streamMember = `"stream":true,`
			}
			resp := postAs(t, url, e2eClientKey, user, `{"model":"gpt-4o",`+streamMember+`"messages":[{"role":"user","content":"buy premium"}]}`)
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if stream {
				if resp.StatusCode != 200 || !strings.Contains(string(raw), "Ordering. ") || !strings.Contains(string(raw), `data: {"error":`) ||
					strings.Contains(string(raw), "[DONE]") {
					t.Errorf("first turn: %d %s; want the first round's text, then an error event, no [DONE]", resp.StatusCode, raw)
				}
			} else if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("first turn: %d %s; want a 502", resp.StatusCode, raw)
			}
			if n := a.sim.OrderCount(); n != 1 {
				t.Fatalf("%d orders at the simulator; want 1", n)
			}
			failed := parseTurn(resp.StatusCode, stream, raw)
			if got := failed.actions("order_created"); len(got) != 1 || got[0].Get("order.order_no").Str != lastOrderNo(t, a.sim) ||
				got[0].Get("request_payment.package").Str == "" {
				t.Errorf("first turn: paygate %s; want the order's order_created with its payment parameters (%s)", failed.paygate.Raw, raw)
			}
			failing.Store(false)
			for i, want := range []int{1, 0} {
				next := postChat(t, url, e2eClientKey, user, `{"model":"gpt-4o","messages":[{"role":"user","content":"did it work?"}]}`)
				var created []gjson.Result
				next.Get("paygate.actions").ForEach(func(_, act gjson.Result) bool {
					if act.Get("type").Str == "order_created" {
						created = append(created, act)
					}
					return true
				})
				if len(created) != want || want == 1 && created[0].Get("request_payment.package").Str == "" {
					t.Errorf("turn %d after the failure: paygate %s; want %d order_created with payment parameters", i+2, next.Get("paygate").Raw, want)
				}
			}
		})
	}
}

// writeRound answers one round with text and tool calls (a raw tool_calls
// array, "" for none), streamed or as a chat.completion.
func writeRound(w http.ResponseWriter, stream bool, text, calls string) {
	finish := "stop"
	if calls != "" {
		finish = "tool_calls"
	}
	q := `"` + text + `"`
	if !stream {
		msg := `{"role":"assistant","content":` + q
		if calls != "" {
			msg += `,"tool_calls":` + calls
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":`+msg+`},"finish_reason":"`+finish+`"}]}`)
		return
	}
	head := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	w.Header().Set("Content-Type", "text/event-stream")
	_, _ = io.WriteString(w, head+`{"role":"assistant","content":`+q+`},"finish_reason":null}]}`+"\n\n")
	if calls != "" {
		_, _ = io.WriteString(w, head+`{"tool_calls":`+calls+`},"finish_reason":null}]}`+"\n\n")
	}
	_, _ = io.WriteString(w, head+`{},"finish_reason":"`+finish+`"}]}`+"\n\ndata: [DONE]\n\n")
}

// TestNodeFailedTurnHandsItsOrder: the Node openai SDK, as a bot uses it,
// sends a non-stream turn whose round after create_order finds no provider
// (every attempt a 500). The SDK raises the 502 and keeps only the body's
// error object (err.error), and that is where the bot finds the order
// create_order made, with its payment parameters: e.error.paygate.actions.
// Beside the error object, where it was, the SDK dropped it. With the
// SDK's own retries of the 502, the last error hands the same order, and
// WeChat Pay holds that one. Streamed, the bot's loop gets it on the chunk
// before the error event the SDK raises.
func TestNodeFailedTurnHandsItsOrder(t *testing.T) {
	for _, tc := range []struct{ mode, retries string }{{"nonstream-error", "0"}, {"nonstream-error", "2"}, {"stream-error", "0"}} {
		stream := tc.mode == "stream-error"
		t.Run(tc.mode+", retries "+tc.retries, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if strings.Contains(string(b), `"role":"tool"`) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusInternalServerError)
					_, _ = io.WriteString(w, `{"error":{"message":"upstream overloaded","type":"server_error"}}`)
					return
				}
				writeRound(w, stream, "Ordering. ", `[{"index":0,"id":"call_c","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]`)
			}))
			t.Cleanup(up.Close)
			url, a := paymentApp(t, up.URL, "")
			out := nodeChat(t, url, tc.mode, "PAYGATE_RETRIES="+tc.retries)
			res := gjson.ParseBytes(out)
			if res.Get("code").Str != "upstream_server_error" || !stream && res.Get("status").Int() != http.StatusBadGateway {
				t.Fatalf("node saw %s; want the SDK's error for upstream_server_error (non-stream a 502)", out)
			}
			if n := a.sim.OrderCount(); n != 1 {
				t.Errorf("%d orders at the simulator; want 1", n)
			}
			acts := res.Get("paygate.actions").Array()
			if len(acts) != 1 || acts[0].Get("type").Str != "order_created" || acts[0].Get("order.order_no").Str != lastOrderNo(t, a.sim) ||
				acts[0].Get("order.status").Str != "awaiting_payment" || acts[0].Get("request_payment.paySign").Str == "" {
				t.Errorf("node read paygate %s; want the order_created of order %s with its payment parameters (%s)",
					res.Get("paygate").Raw, lastOrderNo(t, a.sim), out)
			}
		})
	}
}
