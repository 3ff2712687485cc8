package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
)

// failingWrites is a StateStore whose exchange writes fail while fail is
// set; every other call reaches the store.
type failingWrites struct {
	StateStore
	fail bool
}

func (s *failingWrites) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if s.fail {
		return fmt.Errorf("%w: test", store.ErrUnavailable)
	}
	return s.StateStore.PutExchange(ctx, key, data, ttl)
}

// TestRoundWhoseExchangeCannotBeKeptIsWithdrawn: a turn that ran a
// money-moving call and hands the bot its own calls keeps the payment
// exchange for the bot's follow-up, whose budget (max_payment_calls) and
// clarification hold are read from it. When that write failed (a store
// blip), the bot got its calls as if all was well, and its follow-up ran
// as a fresh message of the user's: the model's next create_order made a
// second payment for one message. Such an answer is withdrawn with an
// error that says why and asks no SDK to replay it; a turn whose lost
// exchange held no money call (a query_order) answers as before.
func TestRoundWhoseExchangeCannotBeKeptIsWithdrawn(t *testing.T) {
	const (
		buy     = `{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}`
		query   = `{"index":0,"id":"call_0","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"O1\"}"}}`
		weather = `{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}`
		alone   = `{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}`
	)
	tests := []struct {
		name     string
		rounds   func(stream bool) []http.HandlerFunc
		withdraw bool
	}{
		{"order beside the bot's call", func(stream bool) []http.HandlerFunc {
			return []http.HandlerFunc{callsRound(stream, `[`+buy+`,`+weather+`]`)}
		}, true},
		{"order, then the bot's call", func(stream bool) []http.HandlerFunc {
			return []http.HandlerFunc{callsRound(stream, `[`+buy+`]`), callsRound(stream, `[`+alone+`]`)}
		}, true},
		{"query beside the bot's call", func(stream bool) []http.HandlerFunc {
			return []http.HandlerFunc{callsRound(stream, `[`+query+`,`+weather+`]`)}
		}, false},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			name := tc.name + "/non-stream"
			if stream {
				name = tc.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				fp := newFakeProvider(t, roundByRound(tc.rounds(stream)...))
				st := &failingWrites{StateStore: &memState{}, fail: true}
				url := paymentProxy(t, fp.URL, nil, &recordingTools{}, st, nil)
				msgs := `{"role":"user","content":"buy premium and tell me the weather"}`
				resp := post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs), map[string]string{"X-WeChat-OpenID": "o-user-1"})
				body := readAll(t, resp.Body)
				var errObj gjson.Result
				if stream {
					for _, c := range streamChunks(body) {
						if e := gjson.Get(c, "error"); e.Exists() {
							errObj = e
						}
					}
				} else {
					errObj = gjson.Get(body, "error")
				}
				if !tc.withdraw {
					if errObj.Exists() || resp.StatusCode != http.StatusOK {
						t.Fatalf("an answer whose lost exchange held no money call: %d %s; want the bot's calls", resp.StatusCode, body)
					}
					if got := botCallIDs(stream, body); len(got) != 1 || got[0] != "call_1" {
						t.Errorf("the bot got calls %q; want its call_1 (%s)", got, body)
					}
					return
				}
				if code := errObj.Get("code").Str; code != "payment_round_not_recorded" {
					t.Fatalf("error code %q; want payment_round_not_recorded, the answer withdrawn (%d %s)", code, resp.StatusCode, body)
				}
				if stream {
					if strings.Contains(body, "[DONE]") || strings.Contains(body, `"finish_reason":"tool_calls"`) {
						t.Errorf("the stream ends as a complete answer after its error: %s", body)
					}
					return
				}
				if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("X-Should-Retry") != "false" {
					t.Errorf("status %d, x-should-retry %q; want 500 and false: an SDK must not replay the user's message on its own",
						resp.StatusCode, resp.Header.Get("X-Should-Retry"))
				}
				if gjson.Get(body, "choices").Exists() {
					t.Errorf("the withdrawn answer carries choices: %s", body)
				}
			})
		}
	}
}

// TestBotThatRunsAWithdrawnAnswersCallsGetsItsExchangeHere: a bot that
// reads a stream's chunks for their choices alone runs its calls from an
// answer paygate withdrew (the error event has none) and sends the
// follow-up. On the replica that ran the round, the exchange the store
// could not take is kept in memory for that follow-up: it comes back in
// place, and the model's second create_order is refused for the message's
// spent budget, not run as a fresh message's first.
func TestBotThatRunsAWithdrawnAnswersCallsGetsItsExchangeHere(t *testing.T) {
	const mixed = `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]`
	const yearly = `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-yearly\"}"}}]`
	for _, stream := range []bool{false, true} {
		name := "non-stream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, roundByRound(callsRound(stream, mixed), callsRound(stream, yearly), textRound(stream, "Done.")))
			tools := &recordingTools{}
			st := &failingWrites{StateStore: &memState{}, fail: true}
			url := paymentProxy(t, fp.URL, nil, tools, st, nil)
			hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
			msgs := []string{`{"role":"user","content":"buy premium and tell me the weather"}`}
			readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)

			st.fail = false // the blip is over; the bot follows up anyway
			msgs = append(msgs, `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}`,
				`{"role":"tool","tool_call_id":"call_1","content":"sunny"}`)
			readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
			n := 0
			for _, c := range tools.executed() {
				if strings.HasPrefix(c, "create_order ") {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d create_order calls run for one message of the user's; want 1", n)
			}
			reqs := fp.requests()
			if len(reqs) < 2 || !strings.Contains(string(reqs[1].Body), `premium-monthly`) {
				t.Errorf("the follow-up went upstream without the round's payment exchange: %s", reqs[len(reqs)-1].Body)
			}
		})
	}
}

// TestUnkeptExchangesBounded: the in-process record of exchanges the store
// failed to take holds each for unkeptTTL and at most unkeptMax keys, the
// oldest going first, so a store that fails every write cannot grow it
// without end.
func TestUnkeptExchangesBounded(t *testing.T) {
	var u unkeptExchanges
	now := time.Unix(1_700_000_000, 0)
	u.put([]string{"first"}, []byte("a"), now)
	u.put([]string{"first"}, []byte("b"), now) // put again: one key, the latest data
	for i := range unkeptMax - 1 {
		u.put([]string{fmt.Sprint("k", i)}, []byte("x"), now)
	}
	tests := []struct {
		name string
		key  string
		at   time.Time
		want string
	}{
		{"held", "first", now, "b"},
		{"held until its ttl", "first", now.Add(unkeptTTL - time.Second), "b"},
		{"gone after its ttl", "first", now.Add(unkeptTTL), ""},
		{"never held", "other", now, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(u.get(tc.key, tc.at)); got != tc.want {
				t.Errorf("get(%q) = %q; want %q", tc.key, got, tc.want)
			}
		})
	}
	u.put([]string{"one more"}, []byte("y"), now)
	if got := u.get("first", now); got != nil || len(u.m) != unkeptMax || string(u.get("one more", now)) != "y" {
		t.Errorf("over unkeptMax: the oldest held %q, %d keys; want it gone, %d keys, the newest held", got, len(u.m), unkeptMax)
	}
}

// TestUnkeptExchangesBoundedInBytes: the exchanges held while the store
// fails its writes are bounded in bytes too, the oldest going first. An
// exchange carries its rounds' text and reasoning (a reasoning model's
// runs to a hundred kilobytes and more a round), so unkeptMax keys alone
// let a store outage on a busy bot hold gigabytes, and the sidecar ran out
// of memory in the outage the record is for. One larger than the whole
// bound is not held at all.
func TestUnkeptExchangesBoundedInBytes(t *testing.T) {
	var u unkeptExchanges
	now := time.Unix(1_700_000_000, 0)
	big := make([]byte, 1<<20)
	n := unkeptMaxBytes/len(big) + 1
	for i := range n {
		u.put([]string{fmt.Sprint("k", i)}, big, now)
	}
	if got := u.get("k0", now); got != nil {
		t.Errorf("the oldest of %d exchanges of 1 MiB held; want it gone, at most %d bytes held", n, unkeptMaxBytes)
	}
	if got := u.get(fmt.Sprint("k", n-1), now); got == nil {
		t.Errorf("the newest exchange not held")
	}
	held := 0
	for _, e := range u.m {
		held += len(e.data)
	}
	if held > unkeptMaxBytes {
		t.Errorf("%d bytes held; want at most %d", held, unkeptMaxBytes)
	}
	u.put([]string{"huge"}, make([]byte, unkeptMaxBytes+1), now)
	if u.get("huge", now) != nil || u.get(fmt.Sprint("k", n-1), now) == nil {
		t.Errorf("an exchange over the whole bound held, or the others dropped for it")
	}
}
