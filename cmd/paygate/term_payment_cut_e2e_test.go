package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tidwall/gjson"
)

// TestDrainDeadlineEndsATurnAtItsPaymentCall: paygate is stopped (SIGTERM)
// while a turn's create_order is at WeChat Pay, which answers only after
// the drain's deadline. The turn is ended as any other the deadline ends:
// a stream with the server_shutdown error event and a proper end, an
// answer not begun with a 503 server_shutdown; the payment call was left
// to run on. The handler waited for the call instead, past the deadline,
// and the connection was closed under it: the bot read a cut stream
// (unexpected EOF) or a lost connection, not why. After the restart the
// bot's retry gets the one order WeChat Pay opened, payable.
func TestDrainDeadlineEndsATurnAtItsPaymentCall(t *testing.T) {
	for _, stream := range []bool{true, false} {
		name := map[bool]string{true: "stream", false: "non-stream"}[stream]
		t.Run(name, func(t *testing.T) {
			// Each waits out a 2 s drain on its own simulator, provider,
			// store file and paygate process: side by side.
			t.Parallel()
			cs := newCrashSim(t)
			up := newScriptedProvider(t, purchaseScript)
			n := newCrashNode(t, cs, `store: {path: "`+filepath.Join(t.TempDir(), "p.db")+`"}`, up.URL, "", "")
			src, err := os.ReadFile(n.cfg)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, n.cfg, strings.Replace(string(src), "shutdown_timeout: 10s", "shutdown_timeout: 2s", 1))
			n.start()
			user := "oUser-term-cut-" + name
			release := cs.hold("prepay")
			defer release()
			type answer struct {
				code        int
				ctype, body string
				err         error
			}
			done := make(chan answer, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodPost, "http://"+n.addr+"/v1/chat/completions",
					strings.NewReader(`{"model":"gpt-4o","stream":`+map[bool]string{true: "true", false: "false"}[stream]+`,"messages":[{"role":"user","content":"premium please"}]}`))
				req.Header.Set("Authorization", "Bearer "+e2eClientKey)
				req.Header.Set("X-WeChat-OpenID", user)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- answer{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				done <- answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b), err}
			}()
			cs.awaitHeld(t, "prepay")
			if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			a := <-done
			if err := n.awaitExit("SIGTERM"); err != nil {
				t.Fatalf("SIGTERM: %v; want a clean exit", err)
			}
			if a.err != nil {
				t.Fatalf("the turn at its payment call when the drain deadline came: %v (read %q); want it ended with server_shutdown", a.err, a.body)
			}
			if stream {
				var last string
				sc := bufio.NewScanner(strings.NewReader(a.body))
				for sc.Scan() {
					if l, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
						last = l
					}
				}
				if gjson.Get(last, "error.code").Str != "server_shutdown" || strings.Contains(a.body, "[DONE]") {
					t.Fatalf("the stream at its payment call when the drain deadline came: %q; want it ended by a server_shutdown error event, without [DONE]", a.body)
				}
			} else if a.code != http.StatusServiceUnavailable || gjson.Get(a.body, "error.code").Str != "server_shutdown" {
				t.Fatalf("the answer at its payment call when the drain deadline came: %d %s; want a 503 server_shutdown", a.code, a.body)
			}
			if strings.Contains(a.body, "prepay_id=") {
				t.Fatalf("the cut turn handed payment parameters the stopped process did not record: %s", a.body)
			}
			release()

			n.start()
			st, ans, err := n.chat(user, "premium please")
			act := ans.Get(`paygate.actions.#(type=="order_created")`)
			no := act.Get("order.order_no").Str
			if err != nil || st != http.StatusOK || act.Get("order.status").Str != "awaiting_payment" ||
				!strings.HasPrefix(act.Get("request_payment.package").Str, "prepay_id=") {
				t.Fatalf("retry after the restart: %d %v %s; want the order, awaiting payment, with its payment parameters", st, err, ans.Raw)
			}
			if _, ok := cs.Order(no); !ok || cs.OrderCount() != 1 {
				t.Fatalf("the retry answered %s; WeChat Pay holds %d orders (found it: %v); want that one alone", no, cs.OrderCount(), ok)
			}
		})
	}
}

// TestDrainDeadlineAnswersAnApprovalAtItsPrepay: paygate is stopped
// (SIGTERM) while a manager's approval of a held order prepays it at
// WeChat Pay, which answers only after the drain's deadline. The approval
// was made (the order left the queue, creating) and the operator is told
// so, and why its outcome is not known, as the turn at its payment call is
// told: a 503 server_shutdown in the admin API's error format with the
// order as it stands. The handler waited for the prepay instead, past the
// deadline, and the connection was closed under it: the console read a
// lost connection, not what happened. After the restart the manager's
// second click is told the order was decided, and the user's next turn
// gets the one order WeChat Pay opened, payable.
func TestDrainDeadlineAnswersAnApprovalAtItsPrepay(t *testing.T) {
	cs := newCrashSim(t)
	up := newScriptedProvider(t, buyScript())
	n := newCrashNode(t, cs, `store: {path: "`+filepath.Join(t.TempDir(), "p.db")+`"}`, up.URL, "", `  rules: {approval_above: "1.00"}`+"\n")
	src, err := os.ReadFile(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.cfg, strings.Replace(string(src), "shutdown_timeout: 10s", "shutdown_timeout: 2s", 1))
	n.start()
	const user = "oUser-term-approval"
	_, ans, err := n.chat(user, "premium please")
	held := ans.Get("paygate.actions.0.order.order_no").Str
	if err != nil || ans.Get("paygate.actions.0.type").Str != "approval_required" || held == "" {
		t.Fatalf("no order held for approval: %v %s", err, ans.Raw)
	}
	release := cs.hold("prepay")
	defer release()
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		code, body := adminPost(n, "/admin/api/approvals/"+held+"/approve")
		done <- answer{code, body}
	}()
	cs.awaitHeld(t, "prepay")
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if err := n.awaitExit("SIGTERM"); err != nil {
		t.Fatalf("SIGTERM: %v; want a clean exit", err)
	}
	body := gjson.Parse(a.body)
	if a.code != http.StatusServiceUnavailable || body.Get("code").Str != "server_shutdown" ||
		!strings.HasPrefix(body.Get("error").Str, "approved, but ") || !strings.Contains(body.Get("error").Str, "reconciler") {
		t.Fatalf("the approval at its prepay when the drain deadline came: %d %s; want a 503 server_shutdown saying it was approved and the reconciler settles it", a.code, a.body)
	}
	if body.Get("order.order_no").Str != held || body.Get("order.status").Str != "creating" {
		t.Errorf("the answer's order %s; want %s as it stands, creating", body.Get("order").Raw, held)
	}
	release()

	n.start()
	if code, b := adminPost(n, "/admin/api/approvals/"+held+"/approve"); code != http.StatusConflict {
		t.Errorf("approve again after the restart: %d %s; want 409, decided", code, b)
	}
	st, ans, err := n.chat(user, "premium please")
	act := ans.Get(`paygate.actions.#(type=="order_created")`)
	if err != nil || st != http.StatusOK || act.Get("order.order_no").Str != held || act.Get("order.status").Str != "awaiting_payment" ||
		!strings.HasPrefix(act.Get("request_payment.package").Str, "prepay_id=") {
		t.Fatalf("turn after the restart: %d %v %s; want %s, awaiting payment, with its payment parameters", st, err, ans.Raw, held)
	}
	if _, ok := cs.Order(held); !ok || cs.OrderCount() != 1 {
		t.Fatalf("WeChat Pay holds %d orders (%s among them: %v); want that one alone", cs.OrderCount(), held, ok)
	}
}
