package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestNodeUploadOverLimitIs413: the Node openai SDK uploading a file over
// server.max_body_bytes (40 MB to the default 8 MiB) reads paygate's 413
// and its reason, and no provider gets the upload. paygate refused the
// body before reading it, but the server closed the connection 500 ms
// after its answer while the SDK was still sending (over a second for
// 40 MB), so the SDK's write failed ("write EPIPE"): it reported
// "Connection error.", with no word of the limit, and with its default two
// retries sent the 40 MB twice more. The SDK retries nothing here: a retry,
// its form already built, sent its body within the 500 ms and read the
// 413, so the test passed on the defect it names; its first attempt must
// read the 413.
func TestNodeUploadOverLimitIs413(t *testing.T) {
	var seen atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"file","id":"file-1","filename":"x.jsonl","purpose":"batch","bytes":3}`))
	}))
	t.Cleanup(up.Close)
	url := e2eApp(t, up.URL)
	out := nodeChat(t, url, "files-create", "PAYGATE_FILE_BYTES="+strconv.Itoa(40<<20), "PAYGATE_RETRIES=0")
	var res struct {
		Error  string
		Status *int
		Cause  *string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if res.Status == nil || *res.Status != http.StatusRequestEntityTooLarge || !strings.Contains(res.Error, "server.max_body_bytes") {
		t.Errorf("the SDK got %s; want the 413 that names server.max_body_bytes", out)
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("the provider got %d requests; want none", n)
	}
}
