package config

import (
	"strings"
	"testing"
)

// TestValuesThatDoNotParseDoNotHideTheRest: a value that does not parse (a
// bad decimal, a bad duration, a word for a number) used to end the load
// with the values' errors, so a problem validation finds (a written 0 on an
// earlier line, say) showed only once they were fixed. One load reports
// them all, in the file's order, each at its line; a value that does not
// parse is not reported a second time as missing or 0.
func TestValuesThatDoNotParseDoNotHideTheRest(t *testing.T) {
	src := `failover:
  max_attempts: 0
server:
  shutdown_timeout: 5 sec
  max_body_bytes: lots
providers:
  - name: p
    base_url: "http://127.0.0.1:1/v1"
    timeouts: {idle: 5 sec}
models:
  - {name: m, targets: [{provider: p, model: x}]}
payments:
  catalog:
    - {sku: a, name: A, price: "4x.99"}
log:
  level: loud
`
	_, err := Parse([]byte(src), "c.yaml", envMap(nil))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		"c.yaml:2: failover.max_attempts: at least 1 (0 would mean the default, 4)",
		`c.yaml:4: server.shutdown_timeout: "5 sec" is not a duration (use e.g. "500ms", "30s", "10m")`,
		"c.yaml:5: server.max_body_bytes: cannot unmarshal !!str `lots` into int64",
		`c.yaml:9: providers[0].timeouts.idle: "5 sec" is not a duration (use e.g. "500ms", "30s", "10m")`,
		`c.yaml:14: payments.catalog[0].price: "4x.99": not a decimal amount (use e.g. "49.99")`,
		`c.yaml:16: log.level: "loud": want debug, info, warn or error`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
