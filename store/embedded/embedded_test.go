package embedded

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

func openTest(t testing.TB, clock *storetest.Clock) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "paygate.db"), Options{Now: clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB, clock *storetest.Clock) store.Store { return openTest(t, clock) })
}

func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer first.Close()

	done := make(chan error, 1)
	go func() {
		second, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
		if second != nil {
			_ = second.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrLocked) || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("second Open: got %v; want ErrLocked wrapping store.ErrUnavailable", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second Open hung instead of failing")
	}

	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	_ = again.Close()
}

func TestDurableAcrossReopen(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	path := filepath.Join(t.TempDir(), "reopen.db")
	d, err := Open(path, Options{Now: clock.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	o := storetest.NewOrder("R-1", "shop", "u1", clock.Now())
	if err := d.CreateOrder(ctx, o, store.Event{ID: "r-e1", Kind: "webhook"}); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	d, err = Open(path, Options{Now: clock.Now})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer d.Close()
	got, err := d.GetOrder(ctx, "R-1")
	if err != nil || got.Version != 1 {
		t.Fatalf("GetOrder after reopen: got %+v, %v", got, err)
	}
	evs, err := d.DueEvents(ctx, clock.Now(), 10)
	if err != nil || len(evs) != 1 || evs[0].ID != "r-e1" {
		t.Fatalf("outbox after reopen: got %+v, %v; want r-e1", evs, err)
	}
}

// TestSweep: expired records are deleted from the file, live ones and young
// tombstones stay.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	d := openTest(t, clock)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.PutExchange(ctx, "short", []byte("x"), time.Minute))
	must(d.PutExchange(ctx, "long", []byte("y"), time.Hour))
	_, err := d.SeenNotification(ctx, "n1", time.Minute)
	must(err)
	_, _, err = d.ClaimPurchase(ctx, "k1", "O1", time.Minute)
	must(err)
	_, err = d.IncrCounter(ctx, "c1", time.Minute)
	must(err)
	_, err = d.ClaimAnnouncement(ctx, "c1", "u1", "announced:", "O1", time.Minute)
	must(err)
	must(d.PutAuditText(ctx, 1, "c1", "u1", []byte("text"), clock.Now(), time.Minute))
	must(d.PutRefundProposal(ctx, &store.RefundProposal{RefundID: "rf", User: "u1"}, time.Minute))

	count := func(bucket []byte) int {
		n := 0
		_ = d.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucket).Stats().KeyN; return nil })
		return n
	}
	clock.Advance(2 * time.Minute)
	// Dead now: short exchange, notification, claim, counter, announcement
	// mark (and the earlier versions' counter it set), audit text (and its
	// user index), the expired proposal's entry in its user's index. The
	// claim generation, the long exchange and the refund tombstone stay.
	n, err := d.Sweep(ctx)
	must(err)
	if n != 8 {
		t.Errorf("swept %d records; want 8", n)
	}
	cases := []struct {
		name   string
		bucket []byte
		want   int
	}{
		{"exchanges", bExchanges, 1},
		{"notifications", bNotes, 0},
		{"claims", bClaims, 0},
		{"claim generations", bClaimGens, 1},
		{"counters", bCounters, 0},
		{"announcement marks", bAnnounced, 0},
		{"audit text", bAuditText, 0},
		{"audit text index", bAuditTextCU, 0},
		{"refund tombstone", bRefunds, 1},
		{"user's proposal index", bUserRefunds, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := count(tc.bucket); got != tc.want {
				t.Errorf("got %d records; want %d", got, tc.want)
			}
		})
	}
	clock.Advance(store.TombstoneTTL)
	_, err = d.Sweep(ctx)
	must(err)
	if got := count(bRefunds); got != 0 {
		t.Errorf("refund tombstone after its retention: %d records left", got)
	}
	if _, err := d.GetRefundProposal(ctx, "rf"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("swept proposal: got %v; want ErrNotFound", err)
	}
}

func TestSweeperStopsOnClose(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{SweepInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the sweeper did not stop")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

const crashEnv = "PAYGATE_EMBEDDED_CRASH_CHILD"

// TestMain turns the test binary into the crash child when asked to.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
	}
	if path := os.Getenv(lockEnv); path != "" {
		lockChild(path)
	}
	os.Exit(m.Run())
}

const lockEnv = "PAYGATE_EMBEDDED_LOCK_CHILD"

// lockChild opens path as a second process would (an `audit verify` next to a
// running server) and reports how that went.
func lockChild(path string) {
	d, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	switch {
	case errors.Is(err, ErrLocked) && errors.Is(err, store.ErrUnavailable):
		fmt.Println("LOCKED", err)
		os.Exit(0)
	case err != nil:
		fmt.Println("OTHER", err)
	default:
		_ = d.Close()
		fmt.Println("OPENED")
	}
	os.Exit(1)
}

// TestLockedBySecondProcess: a second process gets ErrLocked within its lock
// timeout instead of hanging.
func TestLockedBySecondProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "held.db")
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockEnv+"="+path)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "LOCKED") {
		t.Fatalf("second process: %v, output %q; want LOCKED", err, out)
	}
	if !strings.Contains(string(out), path) {
		t.Errorf("the error does not name the file: %q", out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the second process took %s to give up", took)
	}
}

// crashChild is the child half of TestSurvivesSIGKILL: it makes
// purchases' money writes in a loop (crashPurchase), and prints "step no"
// after each one's commit returned, until killed.
func crashChild(path string) {
	d, err := Open(path, Options{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	ctx := context.Background()
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		no := fmt.Sprintf("CRASH-%06d", i)
		crashPurchase(ctx, d, no, func(step string, err error) bool {
			if err != nil {
				fmt.Println("ERR", step, no, err)
				os.Exit(2)
			}
			fmt.Fprintln(w, step, no)
			_ = w.Flush()
			return true
		})
	}
}

// crashSteps are the steps of crashPurchase, in order.
var crashSteps = []string{"claim", "order", "paid", "seen", "acked"}

// crashPurchase makes purchase no's money writes in turn, and calls say
// with each one's step and error after its commit returned, until say
// returns false: the claim (claim), the order with its created event
// (order), WeChat Pay's notification applied, the order paid with its
// paid event (paid), the notification's id recorded (seen), the created
// event delivered (acked).
func crashPurchase(ctx context.Context, d *DB, no string, say func(step string, err error) bool) {
	c, created, err := d.ClaimPurchase(ctx, "claim-"+no, no, time.Hour)
	if err == nil && (!created || c.OrderNo != no) {
		err = fmt.Errorf("claim: got %+v created=%v", c, created)
	}
	if !say("claim", err) {
		return
	}
	o := storetest.NewOrder(no, "shop", "crash", time.Now())
	if !say("order", d.CreateOrder(ctx, o, store.Event{ID: "created-" + no, Kind: "webhook"})) {
		return
	}
	o.Status, o.PaidAt, o.TransactionID = store.StatusPaid, time.Now(), "tx-"+no
	if !say("paid", d.UpdateOrder(ctx, o, store.StatusAwaitingPayment, store.Event{ID: "paid-" + no, Kind: "webhook"})) {
		return
	}
	_, err = d.SeenNotification(ctx, "note-"+no, time.Hour)
	if !say("seen", err) {
		return
	}
	say("acked", d.AckEvent(ctx, no, "created-"+no))
}

// crashAcks is what the child acknowledged: the purchases it began, in
// order, and each one's steps.
type crashAcks struct {
	nos   []string
	steps map[string]map[string]bool // order no -> steps acknowledged
}

func (a *crashAcks) add(no, step string) {
	if a.steps == nil {
		a.steps = map[string]map[string]bool{}
	}
	if a.steps[no] == nil {
		a.steps[no] = map[string]bool{}
		a.nos = append(a.nos, no)
	}
	a.steps[no][step] = true
}

// TestSurvivesSIGKILL kills a writer in the middle of purchases' money
// writes: every write it acknowledged is in the file (no claim lost, so no
// second order for a purchase; no payment, notification id or undelivered
// event lost; no delivered event back), a write it had not is there whole
// or not at all (an order paid has its paid event), and the file opens
// cleanly.
func TestSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const purchases = 300
	steps := len(crashSteps)
	// The kill comes after one of the steps of the purchase after the
	// 300th (or before its first): the child is then in the middle of the
	// next step's write, or, the signal late, of one after it.
	killAt := purchases*steps + rand.IntN(steps)
	lines := 0
	sc := bufio.NewScanner(out)
	var acked crashAcks
	done := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("child: %s", line)
		}
		step, no, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(no, "CRASH-") {
			continue
		}
		acked.add(no, step)
		if step == "acked" {
			done++
		}
		if lines++; lines == killAt {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	werr := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v", werr)
	}
	if done < purchases {
		t.Fatalf("child completed %d purchases before dying; want at least %d", done, purchases)
	}

	d, err := Open(path, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open after SIGKILL: %v", err)
	}
	defer d.Close()
	for _, p := range checkCrash(d, &acked) {
		t.Error(p)
	}
	last := acked.nos[len(acked.nos)-1]
	t.Logf("child completed %d purchases before SIGKILL; the last it began, %s, reached %v", done, last, acked.steps[last])
}

// checkCrash holds the file d against what the child acknowledged, and
// reports what it finds wrong.
func checkCrash(d *DB, acked *crashAcks) (problems []string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ctx := context.Background()
	queued := map[string][]string{} // order no -> its undelivered events' ids, in order
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bOutbox).ForEach(func(_, v []byte) error {
			var e store.Event
			if err := unmarshal(v, &e); err != nil {
				return err
			}
			queued[e.Key] = append(queued[e.Key], e.ID)
			return nil
		})
	})
	if err != nil {
		fail("read the outbox: %v", err)
		return problems
	}
	// The orders the child began, and the next one, whose claim it may
	// have committed unacknowledged.
	next := fmt.Sprintf("CRASH-%06d", len(acked.nos))
	for _, no := range append(slices.Clip(acked.nos), next) {
		steps := acked.steps[no]
		c, created, err := d.ClaimPurchase(ctx, "claim-"+no, "SECOND-"+no, time.Hour)
		if err != nil {
			fail("claim %s again: %v", no, err)
			return problems
		}
		if steps["claim"] && (created || c.OrderNo != no) {
			fail("purchase %s claimed again after the restart: got %+v (created %v); want its claim, order %s: a second order for one purchase", no, c, created, no)
		}
		o, err := d.GetOrder(ctx, no)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if steps["order"] {
				fail("acknowledged order %s lost", no)
			}
			if len(queued[no]) > 0 {
				fail("order %s not in the file, but its events are queued: %v", no, queued[no])
			}
			continue
		case err != nil:
			fail("GetOrder %s: %v", no, err)
			return problems
		}
		paid := o.Status == store.StatusPaid
		if steps["paid"] && !paid {
			fail("order %s: %s; its payment was acknowledged", no, o.Status)
		}
		want := []string{"created-" + no}
		if paid {
			want = append(want, "paid-"+no)
		}
		if steps["acked"] {
			want = want[1:]
		}
		got := queued[no]
		ok := slices.Equal(got, want)
		if !ok && steps["seen"] && !steps["acked"] {
			// The kill came in the delivery's write: its commit may
			// have reached the file before the child said so.
			ok = slices.Equal(got, want[1:])
		}
		if !ok {
			fail("order %s (%s) has events %v queued; want %v", no, o.Status, got, want)
		}
		if steps["seen"] {
			if first, err := d.SeenNotification(ctx, "note-"+no, time.Hour); err != nil || first {
				fail("acknowledged notification id of %s: first=%v %v; want it recorded", no, first, err)
			}
		}
	}
	_ = d.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			fail("consistency check after SIGKILL: %v", err)
		}
		return nil
	})
	return problems
}

// TestCrashCheck: the kill lands anywhere in the child's steps, so
// checkCrash, on a file made here, takes each step's write committed but
// not yet acknowledged (the kill between its commit and its line: it is
// there whole), and reports each step's write acknowledged but not in the
// file.
func TestCrashCheck(t *testing.T) {
	ctx := context.Background()
	for i, step := range crashSteps {
		for _, committed := range []bool{true, false} {
			name := step + " committed, not acknowledged"
			if !committed {
				name = step + " acknowledged, not committed"
			}
			t.Run(name, func(t *testing.T) {
				d, err := Open(filepath.Join(t.TempDir(), "crash.db"), Options{SweepInterval: -1})
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				var acked crashAcks
				crashPurchase(ctx, d, "CRASH-000000", func(s string, err error) bool {
					if err != nil {
						t.Fatalf("%s: %v", s, err)
					}
					acked.add("CRASH-000000", s)
					return true
				})
				const no = "CRASH-000001"
				if committed || i > 0 {
					crashPurchase(ctx, d, no, func(s string, err error) bool {
						if err != nil {
							t.Fatalf("%s: %v", s, err)
						}
						if s == step { // committed, the child killed before its line
							return false
						}
						acked.add(no, s)
						return committed || s != crashSteps[i-1]
					})
				}
				if !committed {
					acked.add(no, step)
				}
				problems := checkCrash(d, &acked)
				if committed && len(problems) > 0 {
					t.Errorf("a write committed, not yet acknowledged, is reported: %q", problems)
				}
				if !committed && len(problems) == 0 {
					t.Errorf("a write acknowledged but not in the file is not reported")
				}
			})
		}
	}
}

func BenchmarkLoadUserState(b *testing.B) {
	d := openTest(b, storetest.NewClock())
	b.Run("orders=5", func(b *testing.B) { storetest.BenchLoadUserState(b, d, 5) })
	b.Run("orders=0", func(b *testing.B) { storetest.BenchLoadUserState(b, d, 0) })
}

func BenchmarkTransition(b *testing.B) {
	storetest.BenchTransition(b, openTest(b, storetest.NewClock()))
}

// TestKeyEncoding pins the on-disk key format: a file written by one version
// must be read by the next, so the encoding may get cheaper but never change.
func TestKeyEncoding(t *testing.T) {
	long := strings.Repeat("u", 200) // a two-byte uvarint length
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"enc", enc("ab"), []byte{2, 'a', 'b'}},
		{"enc empty", enc(""), []byte{0}},
		{"enc long", enc(long), append([]byte{0xc8, 0x01}, long...)},
		{"userPrefix", userPrefix("ab", "xyz"), []byte{2, 'a', 'b', 3, 'x', 'y', 'z'}},
		{"userPrefix long", userPrefix("c", long), append([]byte{1, 'c', 0xc8, 0x01}, long...)},
		{"join", join([]byte{1}, nil, []byte{2, 3}), []byte{1, 2, 3}},
	}
	for _, tc := range tests {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: got %x; want %x", tc.name, tc.got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = userPrefix("shop-bot", "o-openid-123") }); n != 1 {
		t.Errorf("userPrefix: %v allocations; want 1", n)
	}
}
