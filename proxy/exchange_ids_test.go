package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/testdrivers"
)

// messageShape is a conversation as "role:names" per message: an assistant
// message's call names in order, a tool result's call id's name.
func messageShape(body []byte) []string {
	names := map[string]string{}
	var out []string
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		var ns []string
		m.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
			names[c.Get("id").Str] = c.Get("function.name").Str
			ns = append(ns, c.Get("function.name").Str)
			return true
		})
		if id := m.Get("tool_call_id"); id.Exists() {
			ns = append(ns, names[id.Str])
		}
		out = append(out, m.Get("role").Str+":"+strings.Join(ns, ","))
		return true
	})
	return out
}

// TestExchangesOfTurnsWithTheSameCallIDs: a provider that numbers its ids
// per answer (vLLM, some DashScope and Gemini-compatible endpoints) gives
// the bot's call of every turn the same id (call_1 beside a payment call
// call_0). Each turn's payment exchange was kept under the bot's call id
// alone, so the second turn's replaced the first's: the first turn's
// create_order vanished from every later request (the bot's calls
// differing), or both went (the same call twice: the one exchange matched
// two messages, which restores it into neither). Both come back, each in
// its own turn's place, the same bytes on every request; on both drivers.
func TestExchangesOfTurnsWithTheSameCallIDs(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		for _, stream := range []bool{false, true} {
			for _, city := range []string{"BJ", "SH"} {
				name := driver + "/" + map[bool]string{false: "non-stream", true: "stream"}[stream] + "/second-city-" + city
				t.Run(name, func(t *testing.T) {
					st := &legacyWrites{StateStore: testdrivers.Open(t, driver, nil)}
					runTwoMixedTurns(t, st, stream, city, nil)
				})
			}
		}
	}
}

// TestExchangeKeptByAnEarlierPaygateIsRestored: a paygate upgraded in place
// finds the exchanges its earlier version kept under the bot's call id
// alone, beside the ones it keeps by place, each in its own turn's place.
func TestExchangeKeptByAnEarlierPaygateIsRestored(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		for _, city := range []string{"BJ", "SH"} {
			t.Run(driver+"/second-city-"+city, func(t *testing.T) {
				st := &legacyWrites{StateStore: testdrivers.Open(t, driver, nil), on: true}
				runTwoMixedTurns(t, st, false, city, func(turn int) { st.on = false })
				if st.legacy != 1 {
					t.Fatalf("the first turn kept %d exchanges under the call id alone; want 1", st.legacy)
				}
			})
		}
	}
}

// TestExchangesRestoredTogetherNameTheirPaymentCallsApart: the second
// turn's request went upstream without the first's exchange (its read
// failed: the store was briefly unavailable), so nothing made its payment
// call's id differ from the first's, both call_0 as the provider numbers
// them; the third request, both restored, named call_0 twice, which
// strict providers refuse (400) on every retry of the bot's.
func TestExchangesRestoredTogetherNameTheirPaymentCallsApart(t *testing.T) {
	for _, city := range []string{"BJ", "SH"} {
		t.Run("second-city-"+city, func(t *testing.T) {
			st := &failingReads{StateStore: &memState{}}
			runTwoMixedTurns(t, st, false, city, func(turn int) { st.fail = turn == 2 })
		})
	}
}

// failingReads is a StateStore whose exchange reads fail while fail is set.
type failingReads struct {
	StateStore
	fail bool
}

func (s *failingReads) GetExchange(ctx context.Context, key string) ([]byte, error) {
	if s.fail {
		return nil, fmt.Errorf("%w: test", store.ErrUnavailable)
	}
	return s.StateStore.GetExchange(ctx, key)
}

// legacyWrites is a StateStore that, while on, keeps exchanges under the
// key paygate used before exchanges had places: the bot's call id alone.
type legacyWrites struct {
	StateStore
	on     bool
	legacy int
}

func (s *legacyWrites) PutExchange(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if s.on {
		i := strings.Index(key, "\x00calls:")
		if i < 0 {
			return fmt.Errorf("exchange key %q names no calls", key)
		}
		if strings.Contains(key[i:], "\x00after:") {
			return nil // the exact key: the earlier paygate wrote one key
		}
		key = key[:i]
		s.legacy++
	}
	return s.StateStore.PutExchange(ctx, key, data, ttl)
}

// runTwoMixedTurns runs two turns whose upstream answers a payment call
// call_0 beside the bot's get_weather call_1 (Shanghai's, then city's),
// then a third request carrying both turns, twice, calling before (when
// not nil) with the number of the turn about to run, 2 and 3: both go
// upstream with their exchanges in their places, the same bytes both
// times.
func runTwoMixedTurns(t *testing.T, st StateStore, stream bool, city string, before func(turn int)) {
	t.Helper()
	weather := func(id, city string) string {
		return `{"index":1,"id":"` + id + `","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"` + city + `\"}"}}`
	}
	first := `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` + weather("call_1", "SH") + `]`
	second := `[{"index":0,"id":"call_0","type":"function","function":{"name":"query_order","arguments":"{\"order_no\":\"O1\"}"}},` + weather("call_1", city) + `]`
	fp := newFakeProvider(t, roundByRound(callsRound(stream, first), callsRound(stream, second), textRound(stream, "Done.")))
	url := paymentProxy(t, fp.URL, nil, &recordingTools{}, st, nil)
	hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
	asst := func(city string) string {
		return `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"` + city + `\"}"}}]}`
	}
	msgs := []string{`{"role":"user","content":"buy"}`}
	readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
	if before != nil {
		before(2)
	}
	msgs = append(msgs, asst("SH"), `{"role":"tool","tool_call_id":"call_1","content":"sunny"}`, `{"role":"user","content":"paid?"}`)
	body := readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
	if got := botCallIDs(stream, body); len(got) != 1 || got[0] != "call_1" {
		t.Fatalf("the bot's second turn got calls %q; want call_1 (%s)", got, body)
	}
	msgs = append(msgs, asst(city), `{"role":"tool","tool_call_id":"call_1","content":"rain"}`)
	if before != nil {
		before(3)
	}
	third := chatBodyWith(stream, weatherTool, msgs...)
	readAll(t, post(t, url, "/v1/chat/completions", third, hdr).Body)
	readAll(t, post(t, url, "/v1/chat/completions", third, hdr).Body)
	reqs := fp.requests()
	last := reqs[len(reqs)-1].Body
	want := []string{"user:", "assistant:create_order,get_weather", "tool:create_order", "tool:get_weather", "user:",
		"assistant:query_order,get_weather", "tool:query_order", "tool:get_weather"}
	if got := messageShape(last); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the third request's messages are\n%q\nwant\n%q\n(%s)", got, want, gjson.GetBytes(last, "messages").Raw)
	}
	checkPaymentIDs(t, last)
	if prev := reqs[len(reqs)-2].Body; string(prev) != string(last) {
		t.Errorf("the same request restored twice went upstream as two bodies:\n%s\n%s", prev, last)
	}
}

// checkPaymentIDs fails t unless each payment call of the upstream request
// body has an id no other call names, and every assistant message with
// tool_calls is followed by one result per call, in its order. The bot's
// own calls may share ids across its turns: its provider gave them so.
func checkPaymentIDs(t *testing.T, body []byte) {
	t.Helper()
	count := map[string]int{}
	gjson.GetBytes(body, "messages.#.tool_calls.#.id").ForEach(func(_, ids gjson.Result) bool {
		ids.ForEach(func(_, id gjson.Result) bool { count[id.Str]++; return true })
		return true
	})
	var pending []string
	ok := true
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		switch m.Get("role").Str {
		case "assistant":
			ok = ok && len(pending) == 0
			pending = nil
			m.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
				if c.Get("function.name").Str != "get_weather" && count[c.Get("id").Str] != 1 {
					ok = false
				}
				pending = append(pending, c.Get("id").Str)
				return true
			})
		case "tool":
			if len(pending) == 0 || m.Get("tool_call_id").Str != pending[0] {
				ok = false
			} else {
				pending = pending[1:]
			}
		}
		return true
	})
	if !ok || len(pending) > 0 {
		t.Errorf("upstream messages %s; want each payment call named once in the request and every call answered once, in order", gjson.GetBytes(body, "messages").Raw)
	}
}

// TestExchangeKeptIsFoundByAnEarlierPaygate: in a rolling deploy on one
// Redis (or a rollback of the embedded file), the bot's next request after
// a turn this paygate served may reach a paygate of the earlier version,
// which reads a kept exchange under the bot's call id alone
// (exchangeKey). This one kept it by place only, so the earlier one sent
// the request upstream without the turn's create_order and its result: the
// model no longer saw the order it had made. It is kept under the id alone
// as well, and read so, on both drivers.
func TestExchangeKeptIsFoundByAnEarlierPaygate(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		for _, stream := range []bool{false, true} {
			t.Run(driver+"/"+map[bool]string{false: "non-stream", true: "stream"}[stream], func(t *testing.T) {
				st := &legacyReads{StateStore: testdrivers.Open(t, driver, nil)}
				first := `[{"index":0,"id":"call_0","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}},` +
					`{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]`
				fp := newFakeProvider(t, roundByRound(callsRound(stream, first), textRound(stream, "Done.")))
				url := paymentProxy(t, fp.URL, nil, &recordingTools{}, st, nil)
				hdr := map[string]string{"X-WeChat-OpenID": "o-user-1"}
				msgs := []string{`{"role":"user","content":"buy"}`}
				readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
				st.on = true // the next request reaches the earlier paygate
				msgs = append(msgs, `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SH\"}"}}]}`,
					`{"role":"tool","tool_call_id":"call_1","content":"sunny"}`)
				readAll(t, post(t, url, "/v1/chat/completions", chatBodyWith(stream, weatherTool, msgs...), hdr).Body)
				reqs := fp.requests()
				last := reqs[len(reqs)-1].Body
				want := []string{"user:", "assistant:create_order,get_weather", "tool:create_order", "tool:get_weather"}
				if got := messageShape(last); strings.Join(got, " ") != strings.Join(want, " ") {
					t.Fatalf("the request an earlier paygate served went upstream with\n%q\nwant\n%q\n(%s)", got, want, gjson.GetBytes(last, "messages").Raw)
				}
			})
		}
	}
}

// legacyReads is a StateStore that, while on, reads exchanges as a paygate
// of the version before exchanges had places did: under the bot's call id
// alone, no other key found.
type legacyReads struct {
	StateStore
	on bool
}

func (s *legacyReads) GetExchange(ctx context.Context, key string) ([]byte, error) {
	if s.on && strings.Contains(key, "\x00calls:") {
		return nil, store.ErrNotFound
	}
	return s.StateStore.GetExchange(ctx, key)
}
