package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Announcements (payment_confirmed, an order's payment parameters) are
// marked delivered only by the answer that carries them: a turn that fails
// hands them to the next one (SPEC 2.3).

// announceScript answers a purchase as purchaseScript does and anything
// else with a short text, streamed or whole.
func announceScript(body string) scriptRound {
	last := gjson.Get(body, "messages.@reverse.0")
	if last.Get("role").Str == "tool" || strings.Contains(last.Get("content").Str, "premium") {
		return purchaseScript(body)
	}
	const head = `{"id":"chatcmpl-A","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	return scriptRound{
		chunks: []string{
			head + `{"index":0,"delta":{"role":"assistant","content":"Noted."},"finish_reason":null}]}`,
			head + `{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		},
		whole: `{"id":"chatcmpl-A","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Noted."},"finish_reason":"stop"}]}`,
	}
}

// upstreamFault is what announceProvider does instead of answering a
// request: nothing (it answers), a 400, or a stream cut after its first
// chunk.
type upstreamFault int

const (
	noFault upstreamFault = iota
	fault400
	faultCut
)

// announceProvider serves announceScript, with the fault fault picks for
// each request body.
func announceProvider(t *testing.T, fault func(body string) upstreamFault) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		round := announceScript(body)
		switch fault(body) {
		case fault400:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"flagged by the content filter","type":"invalid_request_error","code":"content_filter"}}`)
			return
		case faultCut:
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+round.chunks[0]+"\n\n")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		if !strings.Contains(body, `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, round.whole)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range round.chunks {
			_, _ = io.WriteString(w, "data: "+c+"\n\n")
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	return up
}

// turnResult is what the bot got from one turn: the status, the paygate
// object (of the chat.completion or of a chunk), and, streaming, whether an
// error event ended the stream.
type turnResult struct {
	status   int
	paygate  gjson.Result
	errEvent bool
	raw      string
}

// errorPaygate is the paygate object of an error answer (one not begun
// when the turn failed): what the turn's payment calls did before it
// failed, in the error object, which the SDKs hand the bot.
func errorPaygate(b []byte) gjson.Result { return gjson.GetBytes(b, "error.paygate") }

// failed reports a turn that did not end with an answer.
func (r turnResult) failed() bool { return r.status != http.StatusOK || r.errEvent }

// actions returns the paygate actions of type typ.
func (r turnResult) actions(typ string) []gjson.Result {
	return r.paygate.Get(`actions.#(type=="` + typ + `")#`).Array()
}

// userTurn sends the user's message as a chat request, streamed or not, and
// reads the whole answer.
func userTurn(t *testing.T, url string, stream bool, content string) turnResult {
	t.Helper()
	body := fmt.Sprintf(`{"model":"gpt-4o","stream":%v,"messages":[{"role":"user","content":%q}]}`, stream, content)
	resp := postAs(t, url, e2eClientKey, testOpenID, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return parseTurn(resp.StatusCode, stream, b)
}

func parseTurn(status int, stream bool, b []byte) turnResult {
	res := turnResult{status: status, raw: string(b)}
	if status != http.StatusOK {
		res.paygate = errorPaygate(b)
		return res
	}
	if !stream {
		res.paygate = gjson.GetBytes(b, "paygate")
		return res
	}
	for _, line := range strings.Split(string(b), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if gjson.Get(data, "error").Exists() {
			res.errEvent = true
		}
		if p := gjson.Get(data, "paygate"); p.Exists() {
			res.paygate = p
		}
	}
	return res
}

// checkAnnounced fails the test unless r carries exactly one action of typ
// for order orderNo.
func checkAnnounced(t *testing.T, r turnResult, typ, orderNo string) gjson.Result {
	t.Helper()
	if r.failed() {
		t.Fatalf("turn failed: %d %s", r.status, r.raw)
	}
	got := r.actions(typ)
	if len(got) != 1 || got[0].Get("order.order_no").Str != orderNo {
		t.Fatalf("paygate %s; want one %s for %s", r.paygate.Raw, typ, orderNo)
	}
	return got[0]
}

// checkQuiet fails the test unless r succeeded and announced nothing.
func checkQuiet(t *testing.T, r turnResult) {
	t.Helper()
	if r.failed() {
		t.Fatalf("turn failed: %d %s", r.status, r.raw)
	}
	if r.paygate.Get("actions.#").Int() != 0 {
		t.Errorf("paygate %s; want nothing announced again", r.paygate.Raw)
	}
}

func forEachMode(t *testing.T, f func(t *testing.T, stream bool)) {
	for _, stream := range []bool{false, true} {
		name := "nonstream"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) { f(t, stream) })
	}
}

// TestAnnouncementsOnceOnSuccess: an order's payment parameters and its
// payment confirmation each reach the bot once, in the turn where they
// happen, and the following turns do not repeat them.
func TestAnnouncementsOnceOnSuccess(t *testing.T) {
	forEachMode(t, func(t *testing.T, stream bool) {
		up := announceProvider(t, func(string) upstreamFault { return noFault })
		url, a := paymentApp(t, up.URL, "")
		r := userTurn(t, url, stream, "I want premium")
		orderNo := lastOrderNo(t, a.sim)
		if checkAnnounced(t, r, "order_created", orderNo).Get("request_payment.paySign").Str == "" {
			t.Errorf("order_created without request_payment: %s", r.paygate.Raw)
		}
		checkQuiet(t, userTurn(t, url, stream, "So?"))
		if d, err := a.sim.Pay(context.Background(), orderNo); err != nil || !d.Acked {
			t.Fatalf("pay: %+v %v", d, err)
		}
		checkAnnounced(t, userTurn(t, url, stream, "Did it go through?"), "payment_confirmed", orderNo)
		checkQuiet(t, userTurn(t, url, stream, "Thanks"))
	})
}

// TestPaymentConfirmedSurvivesFailedTurn: the turn after a payment fails
// (the provider answers 400, or the stream is cut after its first byte
// with no provider left to recover it); the next turn tells the bot.
func TestPaymentConfirmedSurvivesFailedTurn(t *testing.T) {
	cases := []struct {
		name   string
		stream bool
		fault  upstreamFault
	}{
		{"nonstream-400", false, fault400},
		{"stream-400", true, fault400},
		{"stream-cut", true, faultCut},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fail atomic.Bool
			up := announceProvider(t, func(string) upstreamFault {
				if fail.Load() {
					return tc.fault
				}
				return noFault
			})
			url, a := paymentApp(t, up.URL, "")
			userTurn(t, url, tc.stream, "I want premium")
			orderNo := lastOrderNo(t, a.sim)
			if d, err := a.sim.Pay(context.Background(), orderNo); err != nil || !d.Acked {
				t.Fatalf("pay: %+v %v", d, err)
			}
			fail.Store(true)
			if r := userTurn(t, url, tc.stream, "Did it go through?"); !r.failed() {
				t.Fatalf("want the turn to fail: %d %s", r.status, r.raw)
			} else if r.paygate.Exists() {
				// Its error hands only what its own payment calls did
				// (none): the news waits for an answer that succeeds.
				t.Errorf("failed turn carries paygate %s; the payment's news belongs to the next answer", r.paygate.Raw)
			}
			fail.Store(false)
			checkAnnounced(t, userTurn(t, url, tc.stream, "Did it go through?"), "payment_confirmed", orderNo)
			checkQuiet(t, userTurn(t, url, tc.stream, "Thanks"))
		})
	}
}

// TestOrderCreatedSurvivesFailedContinuation: create_order runs, the round
// that was to put its result into words fails (400); the failed turn's
// error hands the bot the order with its payment parameters, and, as an
// error is not counted as its delivery, so does the next turn, once.
func TestOrderCreatedSurvivesFailedContinuation(t *testing.T) {
	forEachMode(t, func(t *testing.T, stream bool) {
		up := announceProvider(t, func(body string) upstreamFault {
			if strings.Contains(body, `"role":"tool"`) {
				return fault400
			}
			return noFault
		})
		url, a := paymentApp(t, up.URL, "")
		r := userTurn(t, url, stream, "I want premium")
		if !r.failed() {
			t.Fatalf("want the turn to fail: %d %s", r.status, r.raw)
		}
		orderNo := lastOrderNo(t, a.sim)
		if got := r.actions("order_created"); len(r.paygate.Get("actions").Array()) != 1 || len(got) != 1 ||
			got[0].Get("order.order_no").Str != orderNo || got[0].Get("request_payment.paySign").Str == "" {
			t.Errorf("failed turn carries paygate %s; want its one order_created, %s with its payment parameters", r.paygate.Raw, orderNo)
		}
		if checkAnnounced(t, userTurn(t, url, stream, "So?"), "order_created", orderNo).Get("request_payment.paySign").Str == "" {
			t.Errorf("order_created without request_payment")
		}
		checkQuiet(t, userTurn(t, url, stream, "So?"))
	})
}

// TestPaymentConfirmedSurvivesClientGone: the bot hangs up in the middle of
// the streamed turn after a payment; the next turn tells it.
func TestPaymentConfirmedSurvivesClientGone(t *testing.T) {
	var hold atomic.Bool
	upstreamGone := make(chan struct{})
	script := announceProvider(t, func(string) upstreamFault { return noFault })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hold.Load() {
			forward(w, r, script.URL)
			return
		}
		// The first chunk, then nothing until paygate gives up on the
		// round because its client left.
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: "+announceScript("").chunks[0]+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(upstreamGone)
	}))
	t.Cleanup(up.Close)
	url, a := paymentApp(t, up.URL, "")
	userTurn(t, url, false, "I want premium")
	orderNo := lastOrderNo(t, a.sim)
	if d, err := a.sim.Pay(context.Background(), orderNo); err != nil || !d.Acked {
		t.Fatalf("pay: %+v %v", d, err)
	}

	hold.Store(true)
	resp := postAs(t, url, e2eClientKey, testOpenID, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Did it go through?"}]}`)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v; want the first chunk", line, err)
	}
	resp.Body.Close() // the bot hangs up
	select {
	case <-upstreamGone:
	case <-time.After(10 * time.Second):
		t.Fatal("paygate kept the upstream round of a client that left")
	}
	hold.Store(false)
	checkAnnounced(t, userTurn(t, url, false, "Did it go through?"), "payment_confirmed", orderNo)
}

// TestPaymentConfirmedOnceWhenTurnsRace: two turns of one user in flight at
// once, both after a payment: exactly one of them announces it.
func TestPaymentConfirmedOnceWhenTurnsRace(t *testing.T) {
	forEachMode(t, func(t *testing.T, stream bool) {
		var gate atomic.Bool
		var arrived atomic.Int32
		both := make(chan struct{})
		script := announceProvider(t, func(string) upstreamFault { return noFault })
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if gate.Load() {
				// Both turns have loaded their state before either answers.
				if arrived.Add(1) == 2 {
					close(both)
				}
				select {
				case <-both:
				case <-r.Context().Done():
					return
				}
			}
			forward(w, r, script.URL)
		}))
		t.Cleanup(up.Close)
		url, a := paymentApp(t, up.URL, "")
		userTurn(t, url, stream, "I want premium")
		orderNo := lastOrderNo(t, a.sim)
		if d, err := a.sim.Pay(context.Background(), orderNo); err != nil || !d.Acked {
			t.Fatalf("pay: %+v %v", d, err)
		}

		gate.Store(true)
		type answer struct {
			res turnResult
			err error
		}
		answers := make(chan answer, 2)
		for i := range 2 {
			go func() {
				body := fmt.Sprintf(`{"model":"gpt-4o","stream":%v,"messages":[{"role":"user","content":"Paid? (%d)"}]}`, stream, i)
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e2eClientKey)
				req.Header.Set("X-WeChat-OpenID", testOpenID)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					answers <- answer{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				answers <- answer{parseTurn(resp.StatusCode, stream, b), err}
			}()
		}
		n := 0
		for range 2 {
			ans := <-answers
			if ans.err != nil {
				t.Fatal(ans.err)
			}
			if ans.res.failed() {
				t.Fatalf("turn failed: %d %s", ans.res.status, ans.res.raw)
			}
			n += len(ans.res.actions("payment_confirmed"))
		}
		if n != 1 {
			t.Errorf("payment_confirmed announced %d times by two racing turns; want once", n)
		}
		gate.Store(false)
		checkQuiet(t, userTurn(t, url, stream, "Thanks"))
	})
}

// forward passes r on to the provider at base and copies its answer back.
func forward(w http.ResponseWriter, r *http.Request, base string) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.Path, r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	_, _ = io.Copy(w, resp.Body)
}
