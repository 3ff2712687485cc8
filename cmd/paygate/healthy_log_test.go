package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/logging/logtest"
)

// TestHealthyTurnsLogNothing: a healthy turn, streamed or not, writes no
// line at the default level (info): a line per request, or per chunk of a
// stream, floods the log an operator reads when paged. The provider's
// model has no price, which is said once for it (the first turns), not
// once per turn. The provider is a relay that slips a null in between its
// chunks, as some send keep-alives: no piece of an answer, nothing to say.
func TestHealthyTurnsLogNothing(t *testing.T) {
	up := newScriptedProvider(t, func(string) scriptRound {
		r := purchaseScript(`"role":"tool"`)
		r.chunks = append([]string{r.chunks[0], "null"}, r.chunks[1:]...)
		return r
	})
	logs := &logtest.Buffer{}
	url, _ := serveFake(t, up.URL, "", logs)
	turn := func(body string) {
		t.Helper()
		resp := postAs(t, url, e2eClientKey, testOpenID, body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "tap Pay to finish.") {
			t.Fatalf("%d: %s", resp.StatusCode, b)
		}
	}
	const (
		whole  = `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`
		stream = `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}`
	)
	turn(whole)
	turn(stream)
	before := logs.String()
	for range 3 {
		turn(whole)
		turn(stream)
	}
	if more := strings.TrimPrefix(logs.String(), before); more != "" {
		t.Errorf("six healthy turns wrote lines:\n%s", more)
	}
}

// serveFake serves paygate with one bot client, an embedded store of its
// own, and the provider at upURL as "fake" serving gpt-4o, the config
// ending with extra; its lines go to logs.
func serveFake(t *testing.T, upURL, extra string, logs io.Writer) (string, *app) {
	t.Helper()
	return serveConfig(t, `
clients: [{name: bot, key: `+e2eClientKey+`}]
store: {path: "`+filepath.Join(t.TempDir(), "paygate.db")+`"}
providers:
  - {name: fake, base_url: "`+upURL+`/v1", api_key: sk-upstream-secret}
models:
  - {name: gpt-4o, targets: [{provider: fake, model: openai/gpt-4o}]}
`+extra, logs)
}
