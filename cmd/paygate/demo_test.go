package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestDemo runs `paygate demo` and checks what its fakes saw over HTTP: the
// purchase took two model rounds, WeChat Pay got one prepay and one refund,
// paygate acknowledged one payment notification, and the transcript names
// the order.
func TestDemo(t *testing.T) {
	var out strings.Builder
	res, err := runDemo(context.Background(), &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	transcript := out.String()
	if res.orderNo == "" || !strings.Contains(transcript, res.orderNo) {
		t.Errorf("transcript does not name the order %q", res.orderNo)
	}
	bodies := res.upstream.requestBodies()
	purchaseRounds := 0
	for _, b := range bodies {
		if strings.Contains(gjson.Get(b, "messages.0.content").Str, "premium") && gjson.Get(b, "messages.#").Int() <= 3 {
			purchaseRounds++
		}
	}
	if purchaseRounds != 2 {
		t.Errorf("the purchase took %d model rounds; want 2 (the tool call, then the words)", purchaseRounds)
	}
	prepays, refunds := 0, 0
	for _, rl := range res.app.sim.Requests() {
		switch rl.Op {
		case "prepay-jsapi", "prepay-native":
			prepays++
		case "refund":
			refunds++
		}
	}
	if prepays != 1 || refunds != 1 {
		t.Errorf("WeChat Pay saw %d prepays and %d refunds; want 1 and 1", prepays, refunds)
	}
	payNotes := 0
	for _, d := range res.app.sim.Deliveries() {
		if d.OutTradeNo == res.orderNo && strings.HasPrefix(d.EventType, "TRANSACTION") && d.Acked {
			payNotes++
		}
	}
	if payNotes != 1 {
		t.Errorf("%d acknowledged payment notifications; want 1", payNotes)
	}
	for _, want := range []string{"order_created", "payment_confirmed", "refund_proposed", "order.paid", "refund.succeeded", "— paid"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
}

// TestDemoSignalRemovesItsDir: `paygate demo` interrupted (Ctrl-C's SIGINT,
// or SIGTERM) while it plays removes the temp dir it made for its store,
// and ends as that signal ends a program; it was killed at once, the dir
// (paygate-demo-*, its store file inside) left behind for each run.
func TestDemoSignalRemovesItsDir(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(os.Args[0], "demo")
			// Its model holds the first round until the demo gives it up.
			cmd.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1", "PAYGATE_TEST_DEMO_HOLD=1", "TMPDIR="+tmp)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			lines := scanLines(stdout)
			waitLine(t, lines, "its first question", func(l string) bool { return strings.HasPrefix(l, "user:") })
			if dirs, _ := filepath.Glob(filepath.Join(tmp, "paygate-demo-*")); len(dirs) != 1 {
				t.Fatalf("the demo's dirs under TMPDIR while it plays: %v; want one", dirs)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			go func() {
				for range lines { // keep the pipe drained until exit
				}
			}()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err = <-exited:
			case <-time.After(20 * time.Second):
				t.Fatalf("the demo still runs 20s after %v", sig)
			}
			var ee *exec.ExitError
			ws, ok := syscall.WaitStatus(0), false
			if errors.As(err, &ee) {
				ws, ok = ee.Sys().(syscall.WaitStatus)
			}
			if !ok || !ws.Signaled() || ws.Signal() != sig {
				t.Errorf("exit after %v: %v; want ended by it", sig, err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left under TMPDIR after %v: %v; want the demo's dir removed", sig, left)
			}
		})
	}
}

// TestDemoSaysWhyItCannotStart: a demo that cannot make its store's temp
// dir (TMPDIR naming a folder that is not there) exits 1 saying what it
// was making and where; it said only "demo: stat /nonexistent: no such
// file or directory", which names neither the demo's dir nor TMPDIR.
func TestDemoSaysWhyItCannotStart(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone")
	t.Setenv("TMPDIR", missing)
	var stdout, stderr strings.Builder
	if code := run([]string{"demo"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
	want := "demo: making its store's temp dir under " + missing + " (TMPDIR): "
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr %q; want it to start with %q", stderr.String(), want)
	}
}

// TestDemoIntoAClosedPipeRemovesItsDir: `paygate demo | head -3` ends the
// demo when head goes away, as it ends any program, and the demo removes
// its temp dir first; killed by the broken pipe's SIGPIPE at its next
// write, it left the dir and its store file under TMPDIR for each run. Its
// standard output here is a pipe whose reader is gone before it writes a
// line: its first line, written once the dir is made, breaks it. It still
// ends as SIGPIPE ends a program (status 141), with no word on stderr.
func TestDemoIntoAClosedPipeRemovesItsDir(t *testing.T) {
	tmp := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "demo")
	cmd.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1", "TMPDIR="+tmp)
	cmd.Stdout = w
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	w.Close()
	r.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-time.After(60 * time.Second):
		t.Fatal("the demo still runs 60s after its reader went away")
	}
	var ee *exec.ExitError
	ws, ok := syscall.WaitStatus(0), false
	if errors.As(err, &ee) {
		ws, ok = ee.Sys().(syscall.WaitStatus)
	}
	// Go's runtime ignores a SIGPIPE raised rather than met in a write,
	// so dieOf exits 141 (128+SIGPIPE): what a shell reports, and
	// pipefail sees, for a program the signal ended.
	if !ok || !(ws.Signaled() && ws.Signal() == syscall.SIGPIPE || ws.Exited() && ws.ExitStatus() == 128+int(syscall.SIGPIPE)) {
		t.Errorf("exit with its reader gone: %v; want ended by SIGPIPE or status 141, as a program in a pipeline is", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left under TMPDIR: %v; want the demo's dir removed", left)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q; want nothing", stderr.String())
	}
}

// TestDemoGoesOnAfterASIGPIPENotFromItsOutput: only its own output's
// reader gone ends the demo as a pipeline's program. It took any SIGPIPE
// for that, and Go delivers every one to a program that asks for it,
// whichever descriptor broke: a socket of its proxy, model or merchant
// reset mid-write ended a demo whose output was read, silently, status
// 141. Its model here writes to a broken socket in the first round; the
// demo plays to its end.
func TestDemoGoesOnAfterASIGPIPENotFromItsOutput(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "demo")
	cmd.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1", "PAYGATE_TEST_DEMO_SOCKET_EPIPE=1", "TMPDIR="+tmp)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("demo whose model met a broken socket: %v; want exit 0 (stderr %q)", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "refund.succeeded") {
		t.Errorf("transcript lacks the refund's webhook, the demo's last step:\n%s", stdout.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left under TMPDIR: %v; want the demo's dir removed", left)
	}
}
