package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/config"
)

// TestPprofProfilesContention: with server.pprof the mutex and block
// profiles hold what the process waited on, because an operator profiling
// a burst (payment turns waiting on the store's one writer) reads them to
// find where time goes, and with the runtime's rates left at 0 both came
// back empty whatever waited.
func TestPprofProfilesContention(t *testing.T) {
	const token = "admin-token-0123456789abcdef"
	src := `
server: {pprof: true}
admin: {token: ` + token + `}
store: {path: "` + filepath.Join(t.TempDir(), "p.db") + `"}
`
	cfg, err := config.Parse([]byte(src), "p.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, io.Discard, "http://127.0.0.1:1/wechatpay/notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	t.Cleanup(func() { runtime.SetMutexProfileFraction(0); runtime.SetBlockProfileRate(0) })
	srv := httptest.NewServer(a.adminHandler())
	t.Cleanup(srv.Close)
	profile := func(name string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/debug/pprof/"+name+"?debug=1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s profile: status %d: %s", name, resp.StatusCode, b)
		}
		return string(b)
	}

	if p := profile("mutex"); strings.Contains(p, "sampling period=0\n") || !strings.Contains(p, "sampling period=") {
		t.Errorf("mutex profile samples nothing: %q", firstLines(p, 3))
	}

	// One wait on a channel longer than pprofBlockRate: the block profile
	// records every such wait, and this one names its waiting function.
	ch := make(chan struct{})
	waited := make(chan time.Duration)
	go func() {
		for {
			start := time.Now()
			if _, ok := <-ch; !ok {
				return
			}
			waited <- time.Since(start)
		}
	}()
	for {
		time.Sleep(4 * pprofBlockRate) // the wait to be profiled, not a synchronisation
		ch <- struct{}{}
		if <-waited >= 2*pprofBlockRate {
			break
		}
	}
	close(ch)
	if p := profile("block"); !strings.Contains(p, "TestPprofProfilesContention") {
		t.Errorf("block profile misses a %v channel wait: %q", 2*pprofBlockRate, firstLines(p, 3))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
