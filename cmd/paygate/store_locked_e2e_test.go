package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// TestSecondServeOnOneStoreFileFailsFast: a second `serve` on the embedded
// file a running paygate holds (two containers on one volume, a supervisor
// starting a new process before the old one exited) exits 1 with a JSON
// ERROR line naming the file and the lock, instead of waiting for it; the
// first one goes on serving, drains and exits 0, and its file verifies.
func TestSecondServeOnOneStoreFileFailsFast(t *testing.T) {
	cfg := signalConfig(t, "http://127.0.0.1:9", "")
	first, lines, base := startPaygate(t, cfg)
	go func() {
		for range lines { // keep the pipe drained until exit
		}
	}()

	// The guard only stops a second process that waits for the lock
	// forever; the store's own lock timeout is a second.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, os.Args[0], "serve", "-config", cfg)
	second.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1")
	var stderr strings.Builder
	second.Stderr = &stderr
	err := second.Run()
	if ctx.Err() != nil {
		t.Fatalf("a second serve on the same store file did not exit: it waits for the lock; log:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("a second serve on the same store file: %v; want exit 1; log:\n%s", err, stderr.String())
	}
	lines2 := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines2[len(lines2)-1]
	e := gjson.Get(last, "err").Str
	if gjson.Get(last, "level").Str != "ERROR" || !strings.Contains(e, "locked by another process") ||
		!strings.Contains(e, filepath.Join(filepath.Dir(cfg), "p.db")) {
		t.Fatalf("why the second serve stopped: %q; want an ERROR line naming the store file as locked by another process", last)
	}

	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("the first paygate after the second one's try: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the first paygate's /readyz after the second one's try: %d; want 200", resp.StatusCode)
	}
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("the first paygate's exit after SIGTERM: %v; want 0", err)
	}
	verify := exec.Command(os.Args[0], "audit", "verify", "-config", cfg)
	verify.Env = append(os.Environ(), "PAYGATE_TEST_RUN_MAIN=1")
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("audit verify of the store both opened: %v\n%s", err, out)
	}
}
