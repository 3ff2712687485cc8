package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/paygate/paygate/proxy/h1/h1test"
	openai "github.com/sashabaranov/go-openai"
)

// toolRound renders a streamed round whose chunks carry the given tool
// calls (name and raw arguments JSON), each whole in one delta.
func toolRound(id string, calls ...[2]string) scriptRound {
	head := `{"id":"` + id + `","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	r := scriptRound{chunks: []string{head + `{"index":0,"delta":{"role":"assistant","content":"On it. "},"finish_reason":null}]}`}}
	for i, c := range calls {
		args := strings.ReplaceAll(c[1], `"`, `\"`)
		r.chunks = append(r.chunks, head+fmt.Sprintf(`{"index":0,"delta":{"tool_calls":[{"index":%d,"id":"call_%d","type":"function","function":{"name":"%s","arguments":"%s"}}]},"finish_reason":null}]}`, i, i, c[0], args))
	}
	r.chunks = append(r.chunks, head+`{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`)
	return r
}

func textRound(id, text string) scriptRound {
	head := `{"id":"` + id + `","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	return scriptRound{chunks: []string{
		head + `{"index":0,"delta":{"role":"assistant","content":"` + text + `"},"finish_reason":null}]}`,
		head + `{"index":0,"delta":{},"finish_reason":"stop"}]}`,
	}}
}

func TestBudget(t *testing.T) {
	tests := []struct {
		name       string
		extra      string
		script     func(n int, body string) scriptRound
		wantOrders int
		wantRounds int
		wantText   string
		check      func(t *testing.T, bodies []string)
	}{
		{
			name: "two create_order calls in one round: only the lowest index runs",
			script: func(n int, body string) scriptRound {
				if n == 0 {
					return toolRound("c1", [2]string{"create_order", `{"sku":"premium-monthly"}`}, [2]string{"create_order", `{"sku":"premium-yearly"}`})
				}
				return textRound("c2", "Done.")
			},
			wantOrders: 1, wantRounds: 2, wantText: "On it. Done.",
			check: func(t *testing.T, bodies []string) {
				if !strings.Contains(bodies[1], `\"status\":\"not_executed\"`) || !strings.Contains(bodies[1], `"tool_choice":"none"`) {
					t.Errorf("the second call must be refused and the next round run with tool_choice none: %s", bodies[1])
				}
			},
		},
		{
			name: "unknown SKU: nothing executed, clarifying round with tool_choice none",
			script: func(n int, body string) scriptRound {
				if n == 0 {
					return toolRound("c1", [2]string{"create_order", `{"sku":"gold-bar"}`})
				}
				return textRound("c2", "Which plan do you mean?")
			},
			wantOrders: 0, wantRounds: 2, wantText: "On it. Which plan do you mean?",
			check: func(t *testing.T, bodies []string) {
				if !strings.Contains(bodies[1], `needs_clarification`) || !strings.Contains(bodies[1], `"tool_choice":"none"`) {
					t.Errorf("round 2 must carry the clarification result and tool_choice none: %s", bodies[1])
				}
			},
		},
		{
			name: "missing argument: nothing executed",
			script: func(n int, body string) scriptRound {
				if n == 0 {
					return toolRound("c1", [2]string{"create_order", `{"quantity":2}`})
				}
				return textRound("c2", "Which plan?")
			},
			wantOrders: 0, wantRounds: 2, wantText: "On it. Which plan?",
		},
		{
			name: "quantity out of range: nothing executed",
			script: func(n int, body string) scriptRound {
				if n == 0 {
					return toolRound("c1", [2]string{"create_order", `{"sku":"premium-monthly","quantity":13}`})
				}
				return textRound("c2", "At most 12.")
			},
			wantOrders: 0, wantRounds: 2, wantText: "On it. At most 12.",
		},
		{
			name: "an argument given twice: nothing executed, the next round asks the user",
			script: func(n int, body string) scriptRound {
				if n == 0 {
					return toolRound("c1", [2]string{"create_order", `{"sku":"premium-monthly","quantity":1,"quantity":12}`})
				}
				return textRound("c2", "One month or twelve?")
			},
			wantOrders: 0, wantRounds: 2, wantText: "On it. One month or twelve?",
			check: func(t *testing.T, bodies []string) {
				if !strings.Contains(bodies[1], `needs_clarification`) || !strings.Contains(bodies[1], `"tool_choice":"none"`) {
					t.Errorf("round 2 must carry the clarification result and tool_choice none: %s", bodies[1])
				}
			},
		},
		{
			name: "a model that keeps calling tools ends within max_rounds with the clarification text",
			script: func(n int, body string) scriptRound {
				return toolRound(fmt.Sprintf("c%d", n), [2]string{"create_order", `{"sku":"nope"}`})
			},
			wantOrders: 0, wantRounds: 3,
			wantText: "On it. On it. On it. Could you tell me exactly which plan and how many you want?",
		},
		{
			name: "a valid create_order in the last round does not run: no round is left to say so",
			script: func(n int, body string) scriptRound {
				if n < 2 {
					return toolRound(fmt.Sprintf("c%d", n), [2]string{"query_order", `{"order_no":"PG-unknown"}`})
				}
				return toolRound("c2", [2]string{"create_order", `{"sku":"premium-monthly"}`})
			},
			wantOrders: 0, wantRounds: 3,
			wantText: "On it. On it. On it. Could you tell me exactly which plan and how many you want?",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			up := newScriptedProvider(t, func(body string) scriptRound { r := tc.script(n, body); n++; return r })
			url, a := paymentApp(t, up.URL, tc.extra)
			text, err := streamText(t, userClient(url), "buy")
			if err != nil {
				t.Fatal(err)
			}
			if text != tc.wantText {
				t.Errorf("client text %q; want %q", text, tc.wantText)
			}
			bodies := up.requests()
			if len(bodies) != tc.wantRounds {
				t.Errorf("upstream rounds %d; want %d", len(bodies), tc.wantRounds)
			}
			if got := a.sim.OrderCount(); got != tc.wantOrders {
				t.Errorf("orders at the simulator %d; want %d", got, tc.wantOrders)
			}
			if tc.check != nil && len(bodies) > 1 {
				tc.check(t, bodies)
			}
		})
	}
}

// TestNoBuffering: the upstream sends one text delta and waits until the
// client has it before sending a payment call. A proxy that held a round
// back whole would deadlock here.
func TestNoBuffering(t *testing.T) {
	got := make(chan struct{})
	round := 0
	head := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		round++
		w.Header().Set("Content-Type", "text/event-stream")
		if round > 1 {
			_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{"content":"paid soon"},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
			return
		}
		_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{"role":"assistant","content":"first words "},"finish_reason":null}]}`+"\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-got:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: "+head+`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"create_order","arguments":"{\"sku\":\"premium-monthly\"}"}}]},"finish_reason":"tool_calls"}]}`+"\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	url, a := paymentApp(t, up.URL, "")
	stream, err := userClient(url).CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Stream: true, Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "buy"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	first, err := stream.Recv()
	if err != nil || first.Choices[0].Delta.Content != "first words " {
		t.Fatalf("first chunk %+v, %v", first, err)
	}
	close(got) // only now may the upstream go on
	var rest strings.Builder
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) > 0 {
			rest.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if rest.String() != "paid soon" || a.sim.OrderCount() != 1 {
		t.Errorf("rest %q orders %d", rest.String(), a.sim.OrderCount())
	}
}

// TestStreamBurstLeavesTogether: events that reach paygate in one read leave
// in one write (TestNoBuffering shows a lone event is not held back). The
// upstream writes a whole answer of 22 events at once; counting the writes on
// paygate's side of the client connection shows how many it spent.
func TestStreamBurstLeavesTogether(t *testing.T) {
	head := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	var burst, want strings.Builder
	burst.WriteString("data: " + head + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
	for i := range 20 {
		w := fmt.Sprintf("w%d ", i)
		want.WriteString(w)
		burst.WriteString("data: " + head + `{"index":0,"delta":{"content":"` + w + `"},"finish_reason":null}]}` + "\n\n")
	}
	burst.WriteString("data: " + head + `{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, burst.String())
	}))
	defer up.Close()
	_, a := paymentApp(t, up.URL, "")
	srv := h1test.NewUnstartedServer()
	writes := &writeCounter{Listener: srv.Listener}
	srv.Listener = writes
	srv.Start(a.server.Handler())
	defer srv.Close()

	for _, tc := range []struct {
		name   string
		client *openai.Client
	}{
		{"payment turn", userClient(srv.URL)},
		{"plain relay", plainClient(srv.URL)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := writes.n.Load()
			got, err := streamText(t, tc.client, "hi")
			if err != nil || got != want.String() {
				t.Fatalf("text %q, %v; want %q", got, err, want.String())
			}
			// The first token at once, the rest of the burst in one write,
			// then what closes the stream ([DONE] with the chunked
			// terminator, after the finish chunk): one write per event
			// would be 23 or more.
			if n := writes.n.Load() - before; n > 3 {
				t.Errorf("paygate wrote the 22 events in %d writes; want at most 3", n)
			}
			first := writes.firstWith("w0 ")
			if first == "" || strings.Contains(first, "w19 ") {
				t.Errorf("the first token did not leave ahead of the burst; its write: %q", first)
			}
			if last := writes.firstWith("[DONE]"); !strings.HasSuffix(last, "data: [DONE]\n\n\r\n0\r\n\r\n") {
				t.Errorf("[DONE] did not leave with the end of the response; its write: %q", last)
			}
			writes.reset()
		})
	}
}

func plainClient(url string) *openai.Client {
	c := openai.DefaultConfig(e2eClientKey)
	c.BaseURL = url + "/v1"
	return openai.NewClientWithConfig(c)
}

// writeCounter counts, and keeps, the writes on the connections it accepts.
type writeCounter struct {
	net.Listener
	n      atomic.Int64
	mu     sync.Mutex
	writes []string
}

func (l *writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, l: l}, nil
}

// firstWith returns the first write kept that contains s.
func (l *writeCounter) firstWith(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.writes {
		if strings.Contains(w, s) {
			return w
		}
	}
	return ""
}

func (l *writeCounter) reset() {
	l.mu.Lock()
	l.writes = nil
	l.mu.Unlock()
}

type countedConn struct {
	net.Conn
	l *writeCounter
}

// SyscallConn hands the socket to the bots' listener's disconnect watcher.
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

func (c *countedConn) Write(b []byte) (int, error) {
	c.l.n.Add(1)
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, string(b))
	c.l.mu.Unlock()
	return c.Conn.Write(b)
}

// TestBudgetLastRoundNonStream: as in TestBudget's last row, on the
// non-stream path: a create_order in the round that spends max_rounds is
// not executed, and the answer is the clarification with no tool call.
func TestBudgetLastRoundNonStream(t *testing.T) {
	call := func(id, name, args string) scriptRound {
		return scriptRound{whole: `{"id":"` + id + `","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_` + id + `","type":"function","function":{"name":"` + name + `","arguments":` + strconv.Quote(args) + `}}]},"finish_reason":"tool_calls"}]}`}
	}
	n := 0
	up := newScriptedProvider(t, func(body string) scriptRound {
		defer func() { n++ }()
		if n < 2 {
			return call(fmt.Sprintf("q%d", n), "query_order", `{"order_no":"PG-unknown"}`)
		}
		return call("c2", "create_order", `{"sku":"premium-monthly"}`)
	})
	url, a := paymentApp(t, up.URL, "")
	ans := chatJSON(t, url, `{"model":"gpt-4o","messages":[{"role":"user","content":"buy"}]}`)
	if got := ans.Get("choices.0.message.content").Str; got != "Could you tell me exactly which plan and how many you want?" {
		t.Errorf("content %q; want the clarification", got)
	}
	if ans.Get("choices.0.message.tool_calls").Exists() || ans.Get("paygate.actions.#").Int() > 0 {
		t.Errorf("a tool call or an action reached the bot: %s", ans.Raw)
	}
	if got := len(up.requests()); got != 3 {
		t.Errorf("upstream rounds %d; want 3", got)
	}
	if got := a.sim.OrderCount(); got != 0 {
		t.Errorf("orders at the simulator %d; want 0", got)
	}
}
