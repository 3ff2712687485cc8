package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestSummedUsageStaysJSON: a turn of two rounds hands the bot one usage
// summed member by member, and a member whose sum passes float64's range
// (each round's "cost" a valid 1e308, from a relay that fills it so) was
// written as +Inf, which is no JSON: the non-stream answer, order and
// payment parameters with it, and the stream's usage chunk no longer
// parsed. The sum stops at the largest float64 instead.
func TestSummedUsageStaysJSON(t *testing.T) {
	const usage = `{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"cost":1e308}`
	for _, tc := range []struct {
		name, req string
		usage     func(*testing.T, *http.Response) string // the usage as sent, or "" after a failure
	}{
		{"non-stream", `{"model":"gpt-test","messages":[{"role":"user","content":"is X1 paid?"}]}`,
			func(t *testing.T, r *http.Response) string {
				b := readAll(t, r.Body)
				if !json.Valid([]byte(b)) {
					t.Errorf("the answer is not JSON: %s", b)
					return ""
				}
				return gjson.Get(b, "usage").Raw
			}},
		{"stream", `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"is X1 paid?"}]}`,
			func(t *testing.T, r *http.Response) string {
				b := readAll(t, r.Body)
				for _, line := range strings.Split(b, "\n") {
					d, ok := strings.CutPrefix(line, "data: ")
					if !ok || d == "[DONE]" {
						continue
					}
					if !json.Valid([]byte(d)) {
						t.Errorf("an event is not JSON: %s", d)
						return ""
					}
					if u := gjson.Get(d, "usage"); u.IsObject() {
						return u.Raw
					}
				}
				t.Errorf("no usage chunk in %s", b)
				return ""
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, queryThenAnswer(tc.name == "stream", usage, usage))
			s, ledger, _ := ledgerProxy(t, testConfig(t, fp.URL, nil), nil, queryTools{})
			t.Cleanup(ledger.Close)
			srv := h1test.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			u := tc.usage(t, post(t, srv.URL, "/v1/chat/completions", tc.req, map[string]string{"X-WeChat-OpenID": "o-user-1"}))
			if n := len(fp.requests()); n != 2 {
				t.Fatalf("%d upstream rounds; want 2", n)
			}
			if u == "" {
				return
			}
			if got := gjson.Get(u, "prompt_tokens").Int(); got != 20 {
				t.Errorf("usage.prompt_tokens %d; want 20 (usage %s)", got, u)
			}
			if c := gjson.Get(u, "cost"); c.Type != gjson.Number || c.Float() < 1e308 {
				t.Errorf("usage.cost %s; want the largest float64, the sum stopped there (usage %s)", c.Raw, u)
			}
		})
	}
}
