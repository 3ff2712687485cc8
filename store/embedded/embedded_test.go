package embedded

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// crashChild is the child half of TestSurvivesSIGKILL: it writes orders in a
// loop and prints each order number after its commit returned, until killed.
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
		o := storetest.NewOrder(no, "shop", "crash", time.Now())
		if err := d.CreateOrder(ctx, o, store.Event{ID: "ev-" + no, Kind: "webhook"}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Fprintln(w, no)
		_ = w.Flush()
	}
}

// TestSurvivesSIGKILL kills a writer mid-loop; every write it acknowledged
// must be in the file, and the file must open cleanly.
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
	sc := bufio.NewScanner(out)
	var acked []string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("child: %s", line)
		}
		if !strings.HasPrefix(line, "CRASH-") {
			continue
		}
		acked = append(acked, line)
		if len(acked) == 300 {
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
	if len(acked) < 300 {
		t.Fatalf("child acknowledged %d writes before dying; want at least 300", len(acked))
	}

	d, err := Open(path, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open after SIGKILL: %v", err)
	}
	defer d.Close()
	ctx := context.Background()
	for _, no := range acked {
		if _, err := d.GetOrder(ctx, no); err != nil {
			t.Fatalf("acknowledged order %s lost: %v", no, err)
		}
	}
	stats, err := d.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Pending < len(acked) {
		t.Errorf("outbox: %d events; want at least the %d acknowledged", stats.Pending, len(acked))
	}
	_ = d.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("consistency check after SIGKILL: %v", err)
		}
		return nil
	})
	t.Logf("child acknowledged %d writes before SIGKILL", len(acked))
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
