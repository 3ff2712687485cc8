package main

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/store/testdrivers"
)

// TestTermDuringPrepay: paygate is stopped (SIGTERM, a routine deploy)
// while a turn's create_order is at WeChat Pay, which opened the order.
// Answered within the drain, the turn ends as usual: the bot is told the
// order is awaiting payment, and the store says so too. Answered only after
// the drain's deadline, the bot is told no payment outcome (the process
// could record none), and after the restart its retry gets the one order
// WeChat Pay opened, payable (with the embedded store at once: its file
// has no other writer; on Redis the `creating` order waits out its grace,
// as a killed replica's does, TestReplicaKilledWithItsPrepayAtWeChatPay).
// Either way WeChat Pay holds one order, paid once, and the audit chain
// verifies.
func TestTermDuringPrepay(t *testing.T) {
	for _, driver := range testdrivers.Names(t) {
		for _, tt := range []struct {
			name    string
			drained bool // WeChat Pay answers during the drain
		}{{"answered in the drain", true}, {"answered past the drain", false}} {
			if !tt.drained && driver != "embedded" {
				continue
			}
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				// Each waits on its own simulator, provider, store and
				// paygate process (a drain, a restart): side by side.
				t.Parallel()
				cs := newCrashSim(t)
				up := newScriptedProvider(t, buyScript())
				n := newCrashNode(t, cs, webhookStoreYAML(t, driver), up.URL, "", "")
				if !tt.drained {
					// The case waits the drain out with the prepay held:
					// 2 s of it prove what 10 s did, as in
					// TestDrainDeadlineEndsATurnAtItsPaymentCall.
					src, err := os.ReadFile(n.cfg)
					if err != nil {
						t.Fatal(err)
					}
					writeFile(t, n.cfg, strings.Replace(string(src), "shutdown_timeout: 10s", "shutdown_timeout: 2s", 1))
				}
				n.start()
				user := "oUser-term-prepay-" + driver
				release := cs.hold("prepay")
				type answer struct {
					code int
					ans  gjson.Result
					err  error
				}
				done := make(chan answer, 1)
				go func() {
					code, ans, err := n.chat(user, "premium please")
					done <- answer{code, ans, err}
				}()
				cs.awaitHeld(t, "prepay")
				if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				n.waitLog("the drain", func(l string) bool { return strings.HasPrefix(gjson.Get(l, "msg").Str, "shutting down") })
				if tt.drained {
					release()
				}
				a := <-done
				if err := n.awaitExit("SIGTERM"); err != nil {
					t.Fatalf("SIGTERM: %v; want a clean exit", err)
				}
				release()
				act := a.ans.Get(`paygate.actions.#(type=="order_created")`)
				told := act.Get("order.order_no").Str
				if tt.drained {
					if a.err != nil || a.code != http.StatusOK || act.Get("order.status").Str != "awaiting_payment" ||
						!strings.HasPrefix(act.Get("request_payment.package").Str, "prepay_id=") {
						t.Fatalf("turn answered in the drain: %d %v %s; want the order awaiting payment, with its payment parameters", a.code, a.err, a.ans.Raw)
					}
				} else if act.Get("order.status").Str == "awaiting_payment" || act.Get("request_payment.package").Exists() {
					t.Fatalf("turn answered past the drain: %d %s; told an order is payable that the stopped process did not record", a.code, a.ans.Raw)
				}
				if got := cs.OrderCount(); got != 1 {
					t.Fatalf("WeChat Pay holds %d orders after the stop; want 1", got)
				}

				n.start()
				if tt.drained {
					o := gjson.Get(n.adminGet("/admin/api/orders?limit=10"), `orders.#(order_no=="`+told+`")`)
					if o.Get("status").Str != "awaiting_payment" {
						t.Fatalf("after the restart the order the bot was told of is %s; want it recorded awaiting_payment", o.Raw)
					}
				}
				st, ans, err := n.chat(user, "premium please")
				act = ans.Get(`paygate.actions.#(type=="order_created")`)
				no := act.Get("order.order_no").Str
				if err != nil || st != http.StatusOK || act.Get("order.status").Str != "awaiting_payment" ||
					!strings.HasPrefix(act.Get("request_payment.package").Str, "prepay_id=") {
					t.Fatalf("retry after the restart: %d %v %s; want the order, awaiting payment, with its payment parameters", st, err, ans.Raw)
				}
				if told != "" && no != told {
					t.Fatalf("the retry answered order %s; the bot was told of %s", no, told)
				}
				if _, ok := cs.Order(no); !ok || cs.OrderCount() != 1 {
					t.Fatalf("the retry answered %s; WeChat Pay holds %d orders (found it: %v); want that one alone", no, cs.OrderCount(), ok)
				}
				if d, err := cs.Pay(t.Context(), no); err != nil || !d.Acked {
					t.Fatalf("pay %s: %+v %v", no, d, err)
				}
				n.kill()
				if code, out := n.auditVerify(); code != 0 {
					t.Fatalf("audit verify: exit %d: %s", code, out)
				}
			})
		}
	}
}

// TestCrashDuringApprovalPrepay: paygate (embedded store) is killed while
// a manager's approval of a held order prepays it, on its way to WeChat
// Pay (which never sees it) or at WeChat Pay (which opened the order).
// After the restart the manager's second click is told the order was
// decided, and the user's next turn gets the order, under its one number,
// payable at once: WeChat Pay holds it once, it is paid once, and the
// audit chain verifies.
func TestCrashDuringApprovalPrepay(t *testing.T) {
	for _, tt := range []struct {
		name   string
		before bool
	}{{"before WeChat Pay", true}, {"at WeChat Pay", false}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // its own simulator, provider, store file and paygate process
			cs := newCrashSim(t)
			up := newScriptedProvider(t, buyScript())
			n := newCrashNode(t, cs, webhookStoreYAML(t, "embedded"), up.URL, "", `  rules: {approval_above: "1.00"}`+"\n")
			n.start()
			const user = "oUser-crash-approval"
			_, ans, err := n.chat(user, "premium please")
			held := ans.Get("paygate.actions.0.order.order_no").Str
			if err != nil || ans.Get("paygate.actions.0.type").Str != "approval_required" || held == "" {
				t.Fatalf("no order held for approval: %v %s", err, ans.Raw)
			}
			cs.mu.Lock()
			cs.before["prepay"] = tt.before
			cs.mu.Unlock()
			release := cs.hold("prepay")
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = adminPost(n, "/admin/api/approvals/"+held+"/approve")
			}()
			cs.awaitHeld(t, "prepay")
			n.kill()
			cs.awaitCut(t, "prepay")
			release()
			<-done
			cs.mu.Lock()
			cs.before["prepay"] = false
			cs.mu.Unlock()

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
			if d, err := cs.Pay(t.Context(), held); err != nil || !d.Acked {
				t.Fatalf("pay %s: %+v %v", held, d, err)
			}
			n.kill()
			if code, out := n.auditVerify(); code != 0 {
				t.Fatalf("audit verify: exit %d: %s", code, out)
			}
		})
	}
}
