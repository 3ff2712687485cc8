package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/store/storetest"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestUpstreamFailureLogCarriesRequestID: failover's "upstream attempt
// failed" line is written deep below the handler, which alone knew the
// request's id; it must carry the X-Request-Id the client was answered
// with, or an operator cannot tie the failure to the request.
func TestUpstreamFailureLogCarriesRequestID(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"message":"bad request","type":"invalid_request_error"}}`))
	})
	url, logs := newTestProxy(t, testConfig(t, fp.URL, nil))
	resp := post(t, url, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, nil)
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("no X-Request-Id")
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "upstream attempt failed" {
			found = true
			if rec["request_id"] != id {
				t.Errorf("request_id %v; want %q: %s", rec["request_id"], id, line)
			}
		}
	}
	if !found {
		t.Fatalf("no upstream attempt failed line: %s", logs.String())
	}
}

// TestUserOrdersLogCarriesRequestID: the order list's line about an
// awaiting_payment order whose payment parameters could not be made (WeChat
// Pay or the store did not answer) carries the X-Request-Id the bot was
// answered with, as every other line of a request does: without it an
// operator cannot tie the bot's report of an order it could not pay to the
// failure.
func TestUserOrdersLogCarriesRequestID(t *testing.T) {
	st := testdrivers.Open(t, "embedded", nil)
	o := storetest.NewOrder("PGLOGID0001", "shop-bot", "o-payer", time.Now())
	if err := st.CreateOrder(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	base, logs := userAPIServerLog(t, st)
	req, err := http.NewRequest(http.MethodGet, base+"/v1/paygate/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testClientKey)
	req.Header.Set(headerOpenID, "o-payer")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("%d (X-Request-Id %q): %s", resp.StatusCode, id, body)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "payment parameters unavailable" {
			found = true
			if rec["request_id"] != id {
				t.Errorf("request_id %v; want %q: %s", rec["request_id"], id, line)
			}
		}
	}
	if !found {
		t.Fatalf("no payment parameters unavailable line: %s", logs.String())
	}
}
